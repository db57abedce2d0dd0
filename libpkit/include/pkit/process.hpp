#pragma once

/// \file
/// `pkit::process`: an explicit, obvious handle on one Unix child process at a time —
/// the C++ counterpart of process-kit's `Process`.

#include <pkit/errc.hpp>
#include <pkit/command.hpp>
#include <pkit/exit_status.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/identity.hpp>
#include <pkit/process_options.hpp>
#include <pkit/spawn_error.hpp>
#include <pkit/target.hpp>
#include <pkit/unique_fd.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <system_error>

namespace pkit {

namespace detail {
struct process_state;
struct process_access;
}

/// Tag for the blocking variants: `p.start(pkit::wait)`, `p.terminate(pkit::wait)`.
struct wait_t {
  explicit constexpr wait_t() = default;
};
inline constexpr wait_t wait{};

/// How `restart()` gets rid of the running child: graceful waits for it to end by
/// itself (join), forced stops it first (`stop()` with the process's stop policy).
enum class restart_policy { graceful, forced };

/// One child process at a time, started from a C++ callable (forked from this process),
/// from a target registered with a `fork_server`, or from an external program (spawned
/// with clone(CLONE_VM|CLONE_VFORK) and exec, safe in a multithreaded parent).
///
/// Reusable: once a run's exit has been collected (`on_exit` called, joiners woken),
/// `pid()` is empty again and the object can be started anew; `status()`/`exitcode()`
/// keep the last run's outcome until then.
///
/// Thread-safe: any thread may call any member; several threads may join at once (but,
/// as for any object, none may still be inside a member while it is destroyed). User
/// callbacks run on pkit's reaper thread under no pkit lock; there, blocking members
/// (`join`, `stop`, `terminate(wait)`, `restart`) on a run not yet reported fail with
/// `errc::would_deadlock`, before they signal anything. In a run's `on_exit`, `join`,
/// `stop` and `terminate(wait)` answer for that run, which has ended (its status; nothing
/// is signalled) — also when another thread has started the next run meanwhile (a
/// supervisor restarting it); once on_exit has started a run itself, they are about that
/// run (`would_deadlock`), as `restart` is about any run under way. The non-blocking
/// members (`signal`, `terminate()`, `kill`, `stop_async`) and the queries act on the
/// current run, which another thread's start may have replaced by then.
/// In a forked copy of the program (fork() after construction)
/// every member fails with `errc::not_owner` (queries answer "not running") and the
/// destructor does nothing: the children belong to the original.
/// Not copyable or movable (callbacks refer to it); hold it by `unique_ptr` to move it.
///
/// Destroying a process whose child still runs stops the child with
/// `process_options::stop` and reaps it: a `process` never leaves an orphan. Destroyed on
/// the reaper thread (from a callback), it cannot wait for a grace period there: the child
/// (and its group, if the stop policy kills the group) gets SIGKILL at once and is
/// collected without callbacks.
class process {
public:
  /// Runs `target` in a child forked from this process (the "fork" start method). Safe
  /// when no other thread of the program holds a lock the target needs; otherwise use a
  /// fork server. pkit's reaper thread runs `on_exit`/`on_ready` callbacks with no pkit
  /// lock held, and a fork does not wait for them: a callback is like any thread of yours.
  explicit process(callable_target target, process_options options = {});
  /// Runs a target registered with a fork server, forked from the server.
  explicit process(server_target target, process_options options = {});
  /// Runs an external program.
  explicit process(command cmd, process_options options = {});

  process(const process&) = delete;
  process& operator=(const process&) = delete;
  virtual ~process();

  /// Starts a run and returns its pid. Once this returns, a signal sent to the child is
  /// honoured under default dispositions: the child blocks all signals until it has
  /// reset every disposition to the default. Errors (throwing: `spawn_error`; else
  /// `ec`, and -1 returned; see `last_failure()` for the stage): `errc::already_running`;
  /// validation — `errc::invalid_argument` for an empty argv, a NUL byte, a
  /// `stdio::fd(-1)`, a `pass_fds` or `notify_fd` target below 3 or given twice, more than
  /// 256 passed fds; E2BIG over the kernel's argument limits; fork/clone (EAGAIN, ENOMEM);
  /// open/pipe; and for programs chdir/setrlimit/exec failures with their errno. The
  /// failed child, if one was made, is reaped.
  pid_t start();
  pid_t start(std::error_code& ec) noexcept;
  /// Like `start()`, and returns only once the child is ready to run its target (for a
  /// program: it has exec'd, and written its newline when `notify_fd` is set). A child
  /// not ready within `ready_timeout` is killed and reaped: `errc::start_timeout`; one
  /// that dies first: `errc::died_before_ready`.
  pid_t start(wait_t);
  pid_t start(wait_t, std::error_code& ec) noexcept;
  /// Like `start()`, with the options' `user` and `group` already looked up — on any
  /// thread, by `identity::lookup` —: no name-service lookup on the calling thread. A
  /// failed lookup fails the start as `start()` would have failed with it (its error and
  /// stage); an identity of other names than the options' fails it with
  /// `errc::invalid_argument` at stage "validate". Nothing is spawned then.
  pid_t start(const identity& who);
  pid_t start(const identity& who, std::error_code& ec) noexcept;

  /// Sends SIGTERM, then SIGCONT (so that a stopped child can act on it), to the child
  /// only. No-op once the run has ended; `errc::not_started` if never started.
  void terminate();
  void terminate(std::error_code& ec) noexcept;
  /// Sends SIGTERM (and SIGCONT) and waits until the run it signalled is gone and reaped
  /// — not a run that an `on_exit` callback started meanwhile.
  void terminate(wait_t);
  void terminate(wait_t, std::error_code& ec) noexcept;
  /// Sends SIGKILL (to the whole group when the child leads one). No-op once the run has
  /// ended; `errc::not_started` if never started.
  void kill();
  void kill(std::error_code& ec) noexcept;
  /// Sends any signal to the child, through its pidfd: a recycled pid is never hit.
  /// No-op once the run has ended; `errc::not_started` if never started.
  void signal(int signo);
  void signal(int signo, std::error_code& ec) noexcept;
  /// Sends a signal to the child's whole process group when it leads one (else to the
  /// child alone), as stop policies with `kill_group` do. A fork-server target's group is
  /// signalled by its server, which alone knows the group id is still the child's: the
  /// call queues the request and returns without waiting for the server. It is carried
  /// out in order with the other group signals and stops of that server's children (a
  /// request the server's socket cannot take now waits, in order, in this process), but
  /// not with `signal()`, which goes straight to the child; a stopped server carries out
  /// what it was sent — a stop's SIGKILL too — once it is continued. The child alone gets
  /// the signal only when the server is gone or shutting down (its children die with it)
  /// or 65,536 requests already wait for it (or there is no memory to queue one).
  void signal_group(int signo);
  void signal_group(int signo, std::error_code& ec) noexcept;

  /// Graceful-then-forced stop per `policy` (default: the options' stop policy): the stop
  /// signal then SIGCONT (a stopped child must be continued to act on it), wait up to the
  /// timeout, SIGKILL; returns the exit status of the run it stopped once reaped (a run an
  /// `on_exit` started meanwhile is left alone). With `kill_group`, the signals go to the
  /// child's whole process group, which gets the same grace period: `stop` returns only
  /// once the group is empty (at the deadline the rest of the group gets SIGKILL too; a
  /// member that still lives 5 s later is named on stderr and left; a fork-server child's
  /// group is the server's to wait for, and it SIGKILLs the rest of the group as soon as
  /// the leader has exited: there descendants get no grace beyond the leader's). The reaper thread
  /// carries the stop on — deadline, escalation, the group — even if nobody waits. A stop
  /// already under way is joined, not started again (no signal is sent twice). On a
  /// process that is not running, returns the last status (`errc::not_started` if none).
  /// On the reaper thread, see the class: from on_exit, the status of the run it reports;
  /// elsewhere `errc::would_deadlock` for a running run, which is then not signalled.
  exit_status stop();
  exit_status stop(const stop_policy& policy);
  /// Begins the same stop and returns at once: pkit's reaper thread carries it on (the
  /// deadline, SIGKILL, the process group) whether or not anybody waits, and the exit is
  /// reported as usual (`on_exit`, `join`). For callers that must not block (actors). A
  /// stop already under way is not begun again. No-op when no run is running;
  /// `errc::not_started` if never started, `errc::not_owner` in a forked copy.
  void stop_async();
  void stop_async(const stop_policy& policy);
  void stop_async(const stop_policy& policy, std::error_code& ec) noexcept;

  /// Hands `p` over to pkit without waiting: begins stopping its run with its stop policy
  /// (unless a stop is already under way) and destroys `p` on the reaper thread once the
  /// run has been collected — after its `on_exit`, which still runs. A process with no
  /// run in progress is destroyed at once. Never blocks or throws (should there be no
  /// memory left for the stop's deadline task, the child gets SIGKILL at once): for
  /// destructors of owners that must not wait for a child's stop (a process actor).
  static void release(std::unique_ptr<process> p) noexcept;

  /// Waits for the current run to end; returns its exit code, or minus the signal number
  /// for a signal death (Python's convention). After a run has ended, returns that run's
  /// code at once. Throws `std::system_error`: `errc::not_started`,
  /// `errc::would_deadlock` (called on the reaper thread for a run not yet reported;
  /// from on_exit, the run it reports is answered for: see the class).
  int join();
  /// As `join()`, giving up after `timeout`: then returns no value.
  std::optional<int> join(std::chrono::milliseconds timeout);
  /// As `join()`, with the full status.
  exit_status join_status();
  std::optional<exit_status> join_status(std::chrono::milliseconds timeout);

  /// Ends the current run and starts a new one: graceful joins first, forced stops
  /// first. Returns the new pid. Also starts a process that is not running. On the reaper
  /// thread (a callback) a run under way — running or being started, also by another
  /// thread — cannot be waited for: `errc::would_deadlock`, before anything is signalled;
  /// from on_exit of a run that has ended, it starts the next one.
  pid_t restart(restart_policy policy);

  /// True only while the child runs (a child that has exited but whose exit pkit has
  /// not processed yet already counts as not alive).
  bool is_alive() const;
  /// The child's pid while a run is in progress (including during `on_exit`).
  std::optional<pid_t> pid() const;
  /// The last finished run's exit code (Python's convention), until the next start.
  std::optional<int> exitcode() const;
  /// The last finished run's status, until the next start.
  std::optional<exit_status> status() const;
  /// How many runs have been started.
  std::uint64_t runs() const;
  /// Why the last start failed — or the last run's readiness, for `on_ready` — if it did.
  /// A start refused before it began (`errc::already_running`, `errc::not_owner`) records
  /// nothing and leaves the earlier failure here; the throwing `start()` overloads throw
  /// their own failure, never this one.
  std::optional<spawn_failure> last_failure() const;
  /// The name used in diagnostics.
  std::string name() const;

  /// Takes the parent's end of a pipe of the current run (for `stdio::pipe()` streams):
  /// ownership passes to the caller, so a later restart cannot close it under a reader;
  /// a second call (or a stream that is not a pipe) gives an empty `unique_fd`. The ends
  /// not taken are closed when the next run starts or the object is destroyed.
  unique_fd take_stdin_pipe();
  unique_fd take_stdout_pipe();
  unique_fd take_stderr_pipe();

protected:
  /// For subclasses that override `run()`, like subclassing `Process`.
  explicit process(process_options options = {});

  /// What the child runs: the callable target by default. Override in a subclass. Runs
  /// in the child (forked with the fork start method); end it early with `exit_child()`.
  /// In the child the default returns the target's code without an exception (a throw
  /// allocates, unsafe in the child of a multithreaded parent): it becomes the exit code
  /// once `run()` returns. An override that calls it and goes on keeps that code unless
  /// it ends the child itself (`exit_child`); called outside a child, it throws
  /// `exit_request` for a non-zero code.
  virtual void run();

private:
  friend struct detail::process_access;
  std::shared_ptr<detail::process_state> state_;
};

}  // namespace pkit
