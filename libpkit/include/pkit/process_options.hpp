#pragma once

/// \file
/// `pkit::process_options`: everything about a process that is not its target.

#include <pkit/command.hpp>
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
  /// `status()` describe the run that ended (unless a start, its own or another
  /// thread's, has already replaced it); `join`, `stop` and `terminate(wait)` answer for
  /// the run that ended (see `process`). It may call `start()` again; it must not block
  /// for long (it delays every other exit report) and must not `join()` a process whose
  /// exit is still to be reported (`errc::would_deadlock`). Not called for a process
  /// that was destroyed first — by this run's `on_ready`, say: no callback ever gets a
  /// destroyed object.
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
  /// `start(wait)` then returns only after that newline. A start that watches no
  /// readiness (neither `wait` nor `on_ready`) gives the child /dev/null there instead: a
  /// newline nobody reads must not kill it with SIGPIPE.
  std::optional<int> notify_fd{};

  /// Readiness protocol (systemd's `Type=notify`), for programs only: the parent binds a
  /// datagram socket of the run's own at a fresh abstract address and gives the child
  /// `NOTIFY_SOCKET=@pkit/notify/<pid>/<n>` in its environment (overriding any inherited
  /// one), so a daemon that calls sd_notify(0, "READY=1") runs unchanged. The child is
  /// ready once a datagram with a line `READY=1` arrives from the child itself or from any
  /// process with the child's effective uid (its descendants — a daemon often notifies from
  /// a forked worker — and other processes of that user alike: the abstract namespace is
  /// visible to the whole network namespace, and the sender's credentials, checked by the
  /// kernel, are the only thing to go by; systemd's check, the unit's cgroup, is not
  /// available here). Datagrams from other users and other lines (STATUS=, MAINPID=,
  /// WATCHDOG=) are ignored; descriptors sent along (FDSTORE=1) are closed. Then
  /// `start(wait)` and `on_ready` behave as with `notify_fd`: same deadline, same
  /// `errc::died_before_ready`. The socket is closed once the child is ready or the run has
  /// ended (by `start()` itself when it neither waits nor has `on_ready`): later sd_notify
  /// calls get ECONNREFUSED, which sd_notify's callers ignore.
  /// Combines neither with `notify_fd` (stage "validate", `errc::invalid_argument`) nor
  /// with callable or fork-server targets (stage "notify socket", ENOTSUP): their children
  /// do not exec, so nothing would read the environment at the right time.
  bool notify_socket = false;

  /// The user the child runs as: a user name, or a numeric uid when no user has that name.
  /// "" keeps the parent's. Resolved by `start()` in the parent (the name service is not
  /// safe in a forked child); the child sets its supplementary groups, gid and uid (real,
  /// effective and saved) before it runs its target, and checks they took. Without a
  /// `group`: the user's primary group and supplementary groups (initgroups). With one:
  /// that group as primary, plus the user's supplementary groups.
  /// Errors (from `start()`, nothing spawned): stage "user" with `errc::unknown_user` (no
  /// such user, or a uid with no passwd entry and no `group`), or EPERM when the parent
  /// lacks CAP_SETUID/CAP_SETGID — asking for the parent's own uid and gid is then a no-op.
  /// In the child, stages "setgroups", "setgid", "setuid" with the errno. Programs and
  /// callables; not fork-server targets (stage "user", ENOTSUP).
  std::string user{};
  /// The child's group: a group name, or a numeric gid. Alone (no `user`), it sets the
  /// gid and makes it the only supplementary group (none of the parent's is kept).
  /// Errors: stage "group", `errc::unknown_group`, or EPERM as for `user`.
  std::string group{};

  /// Resource limits set in the child (setrlimit, as the parent's user: before `user`
  /// takes effect, so a privileged parent can raise hard limits), after a program's own
  /// `command::limits`. `soft > hard` fails `start()` at stage "setrlimit" with
  /// `errc::invalid_argument` before anything is spawned; the child's setrlimit failing
  /// (EPERM raising a hard limit without privilege, EINVAL) is stage "setrlimit" with
  /// the errno. Programs and callables; not fork-server targets (stage "setrlimit",
  /// ENOTSUP).
  std::vector<resource_limit> rlimits{};

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
