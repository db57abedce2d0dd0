#pragma once

/// \file
/// `pkit::process_options`: everything about a process that is not its target.

#include <pkit/stdio.hpp>
#include <pkit/stop_policy.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace pkit {

class process;

/// What holds a child and everything it starts, for stops (`process_options::containment`).
enum class containment {
  /// The child's process group (with `new_process_group` and `stop_policy::kill_group`):
  /// no set-up, no privileges — but a descendant that calls setsid() or setpgid() leaves
  /// the group, and a stop neither signals it nor waits for it.
  process_group,
  /// A cgroup v2 of its own per run, which the child joins before it runs its target and
  /// no descendant can leave (without privileges over cgroups). A stop signals every
  /// process in it and returns only once it is empty; when the child exits by itself, the
  /// processes it left are stopped with `process_options::stop`. Needs a writable
  /// (delegated) cgroup2 hierarchy: otherwise `start()` fails at stage "cgroup". Not for
  /// fork-server targets (stage "cgroup", ENOTSUP).
  cgroup,
};

/// How a process is set up, watched and stopped. Applies to every kind of target.
struct process_options {
  /// Shown in diagnostics (an uncaught exception in the child, errors); defaults to
  /// argv[0] for programs, the registered name for fork-server targets, else "process".
  std::string name{};

  /// Called exactly once per run, on pkit's reaper thread, as soon as the child has
  /// ended and been reaped — whether or not anyone joins. While it runs `pid()` and
  /// `status()` describe the run that ended; `is_alive()` is false. It may call
  /// `start()` again; it must not block for long (it delays every other exit report)
  /// and must not `join()` a process whose exit is still to be reported
  /// (`errc::would_deadlock`).
  std::function<void(process&)> on_exit{};

  /// The child's standard streams.
  stdio in = stdio::inherit();
  stdio out = stdio::inherit();
  stdio err = stdio::inherit();

  /// Extra descriptors for the child: {child fd number, parent fd}. The parent's fd is
  /// duplicated at start; it is not owned and must stay open until `start()` returns.
  /// Every other descriptor (beyond 0, 1, 2) is closed in the child.
  std::vector<std::pair<int, int>> pass_fds{};

  /// The child leads a new process group (setpgid in child and parent), so a terminal's
  /// ^C aimed at the parent does not reach it and `stop_policy::kill_group` can stop
  /// its descendants too.
  bool new_process_group = true;

  /// The child gets SIGKILL when its parent dies (PR_SET_PDEATHSIG, checked against a
  /// parent that died before the prctl). Linux ties this to the *thread* that created
  /// the child, so a child started on any thread but the main one is created by pkit's
  /// reaper thread (which lives as long as the program), not by the calling thread: a
  /// child never dies because the short-lived thread that started it ended.
  bool die_with_parent = true;

  /// Creates the child on the calling thread even when that is not the main thread,
  /// saving the two thread hand-offs of `die_with_parent`'s detour through the reaper
  /// thread. Then the child is killed when the *calling thread* ends, so set this only
  /// where that thread outlives the children it starts — a worker of a thread pool or of
  /// an actor system's scheduler, whose children are stopped before it ends (pkit's
  /// process actors do this). No effect without `die_with_parent`, or on the main thread.
  bool spawn_on_calling_thread = false;

  /// Readiness protocol (s6's notification-fd): when set, the child gets the write end
  /// of a pipe as this fd number and signals readiness by writing a newline to it;
  /// `start(wait)` then returns only after that newline.
  std::optional<int> notify_fd{};

  /// Asynchronous readiness, for callers that must not block (actors): when set, a
  /// `start()` *without* wait returns at once, and this is called once per run on the
  /// reaper thread when the child is ready (the same condition `start(wait)` waits for),
  /// with an empty error; or with the reason it never got ready (`errc::died_before_ready`,
  /// or the set-up stage's errno — see `last_failure()`), in which case the child has
  /// been (or is being) killed and its exit is reported to `on_exit` as usual. Called
  /// exactly once per such run, always before that run's `on_exit` — also for a child
  /// that got ready and exited at once (judged from what it wrote before exiting). There
  /// is no deadline here: the caller enforces its own (and stops the process).
  std::function<void(process&, std::error_code)> on_ready{};

  /// How long `start(wait)` waits for readiness before it kills the child and fails with
  /// `errc::start_timeout`.
  std::chrono::milliseconds ready_timeout{10000};

  /// What a stop holds: the process group (default) or a cgroup per run, which also
  /// holds descendants that left the group. See `pkit::containment`.
  pkit::containment containment = pkit::containment::process_group;

  /// Used by `stop()` without arguments, by `restart(forced)` and by the destructor.
  stop_policy stop{};
};

}  // namespace pkit
