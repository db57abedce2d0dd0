#pragma once

/// \file
/// `pkit::process_pool`: bounded parallelism, one process per task.

#include <pkit/errc.hpp>
#include <pkit/command.hpp>
#include <pkit/exit_status.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/process_options.hpp>
#include <pkit/target.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
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
/// in a new process; `execute` blocks while all slots are busy; a slot is released the
/// moment its process exits (on the reaper thread, without anyone joining).
class process_pool {
public:
  /// `ready`: submitted, its process not started yet (only seen by a thread that looks
  /// at a task while another is still inside `execute`); `running`; `finished`.
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
    /// Waits until the task's process has exited; returns its exit code.
    int join() const;
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
  /// Call `close()` first to wait for the tasks instead.
  ~process_pool();

  /// Starts `w` in a new process once a slot is free, blocking until then. Throws
  /// `std::system_error` with `errc::pool_closed` after close/terminate, or the start
  /// error (`spawn_error`); a failed start gives its slot back.
  task execute(work w);
  /// Never blocks: `errc::pool_full` when every slot is busy.
  std::optional<task> try_execute(work w, std::error_code& ec);

  /// Takes no more tasks and waits until every task has finished.
  void close();
  /// Takes no more tasks, stops every running task with the options' stop policy and
  /// waits until they are reaped.
  void terminate();

  std::size_t slots() const noexcept;
  /// Slots in use right now.
  std::size_t busy() const;

private:
  std::shared_ptr<detail::pool_state> state_;
};

}  // namespace pkit
