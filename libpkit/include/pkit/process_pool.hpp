#pragma once

/// \file
/// `pkit::process_pool`: bounded parallelism, one process per task.

#include <pkit/errc.hpp>
#include <pkit/command.hpp>
#include <pkit/exit_status.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>
#include <pkit/process_options.hpp>
#include <pkit/spawn_error.hpp>
#include <pkit/target.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <sys/types.h>
#include <system_error>
#include <variant>
#include <vector>

namespace pkit {

namespace detail {
struct pool_task_state;
struct pool_state;
}  // namespace detail

/// A pool of `slots` concurrent processes, like process-kit's ProcessPool: each task runs
/// in a new process; `execute` blocks while all slots are busy, `submit` queues instead
/// (the task waits in state `ready`); a slot is released the moment its process exits
/// (on the reaper thread, without anyone joining), and the oldest queued task starts in
/// it right away.
///
/// Thread-safe: any thread may call any member, and task handles may be used from any
/// thread. On pkit's reaper thread — inside an `on_exit` or `on_ready` callback of any
/// process, the pool's tasks included — a call that would have to wait for an exit (which
/// only that thread can report) fails with `std::system_error` `errc::would_deadlock`
/// instead, and changes nothing: `execute` on a full pool, `task::join` of an unfinished
/// task, `close` or `terminate` while a task runs. The same calls that need no waiting
/// work there as anywhere.
class process_pool {
public:
  /// `ready`: submitted, waiting for a slot; `running`; `finished` (exited, or never
  /// started: see `task::failure()`).
  enum class task_state { ready, running, finished };

  /// A shared handle on one submitted task.
  class task {
  public:
    std::uint64_t id() const noexcept;
    task_state state() const;
    /// The pid while running.
    std::optional<pid_t> pid() const;
    /// The exit code (Python's convention) once finished.
    std::optional<int> exitcode() const;
    std::optional<exit_status> status() const;
    /// Why a submitted task never ran: its start failed, or the pool was terminated
    /// while it waited (`errc::pool_closed`).
    std::optional<spawn_failure> failure() const;
    /// Waits until the task's process has exited; returns its exit code. Throws
    /// `spawn_error` for a task that never ran (see `failure()`); `std::system_error`
    /// `errc::would_deadlock` when called on the reaper thread for a task not finished
    /// yet (a task's own `on_exit` may join it: it is finished by then).
    int join() const;
    /// As `join()`, giving up after `timeout`: then returns no value.
    std::optional<int> join(std::chrono::milliseconds timeout) const;

  private:
    friend class process_pool;
    explicit task(std::shared_ptr<detail::pool_task_state> s) noexcept : s_(std::move(s)) {}
    std::shared_ptr<detail::pool_task_state> s_;
  };

  using work = std::variant<callable_target, server_target, command>;

  /// `slots` == 0 means the number of CPUs. `options` apply to every task's process
  /// (its `on_exit`, if any, is called after the pool's own bookkeeping).
  explicit process_pool(std::size_t slots = 0, process_options options = {});
  process_pool(const process_pool&) = delete;
  process_pool& operator=(const process_pool&) = delete;
  /// Terminates whatever still runs (`terminate()`): a pool leaves no child behind.
  /// Call `close()` first to wait for the tasks instead. Destroyed on the reaper thread,
  /// where it cannot wait, it drops the queued tasks and kills (SIGKILL) the running ones
  /// without waiting; their exits still reach the task handles.
  ~process_pool();

  /// Starts `w` in a new process once a slot is free, blocking until then. Throws
  /// `std::system_error` with `errc::pool_closed` after close/terminate, or the start
  /// error (`spawn_error`); a failed start gives its slot back. On the reaper thread, a
  /// full pool fails with `errc::would_deadlock`.
  task execute(work w);
  /// Like `execute(w)`, and returns only once the task's child is ready to run its
  /// target, as `process::start(pkit::wait)` does (process-kit's `execute`): for a
  /// program, once it has exec'd and, with `notify_fd` in the options, written its
  /// newline. A child not ready within the options' `ready_timeout` is killed
  /// (`spawn_error` with `errc::start_timeout`), one that dies first fails with
  /// `errc::died_before_ready`; either way its slot is given back. Blocks the calling
  /// thread for that wait — on the reaper thread, every other exit report too.
  task execute(wait_t, work w);
  /// Never blocks: `errc::pool_full` when every slot is busy.
  std::optional<task> try_execute(work w, std::error_code& ec);
  /// Never blocks: starts `w` now if a slot is free, else queues it (state `ready`) until
  /// one is. A start that fails later is reported by the task (`failure()`, `join()`).
  /// Throws `std::system_error` with `errc::pool_closed` after close/terminate.
  task submit(work w);

  /// Takes no more tasks and waits until every task, queued ones included, has finished.
  /// On the reaper thread, with a task running: `errc::would_deadlock`.
  void close();
  /// Takes no more tasks, drops the queued ones (`errc::pool_closed`), stops every
  /// running task with the options' stop policy and waits until they are reaped. On the
  /// reaper thread, with a task running: `errc::would_deadlock`.
  void terminate();

  std::size_t slots() const noexcept;
  /// Slots in use right now.
  std::size_t busy() const;
  /// Tasks submitted and waiting for a slot.
  std::size_t queued() const;

private:
  std::shared_ptr<detail::pool_state> state_;
};

}  // namespace pkit
