#pragma once

/// \file
/// The process actor: one actor per OS process, with a typed interface.

#include <pkit/actors/messages.hpp>

#include <pkit/fork_server.hpp>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>

namespace pkit::actors {

/// The typed interface of a process actor.
///
/// * `start` → pid, answered once the child is ready (see process_spec::notify_fd),
///   or an error: `already_running`, `start_failed` (context: program, stage, errno),
///   `ready_timeout`, `died_before_ready`.
/// * `stop` → exit status, answered once the child is gone: libpkit's one stop algorithm
///   (`process::stop_async`): stop signal, SIGKILL after the stop timeout, carried on by
///   pkit's reaper thread (never blocking the actor). With `kill_group` the signals go to
///   the child's process group and the reply waits until the group is empty. A stop under
///   way is joined (no signal is sent twice). On an actor with no run in progress: the last
///   status, or `not_started`.
/// * `kill` → exit status (SIGKILL now — to the group only with `kill_group` —, then as
///   stop).
/// * `signal, n` → ok once sent (through the pidfd), `not_started` if never started or
///   while a fork-server target is being launched; a no-op once the run has ended.
/// * `join` → exit status of the current run, answered when it ends, to any number of
///   waiting callers; at once when no run is in progress (`not_started` if none ever).
/// * `status` → process_info.
///
/// That is the whole interface. The actor also handles reports from pkit's reaper thread
/// and its own delayed messages, but those are not part of this type: the actor is spawned
/// as a private extension of it that only pkit's code can name, and the reports are of
/// private types that are not serializable. A holder of this handle — an `actor_cast`
/// to `caf::actor` included, or a remote node — cannot forge them (they are dropped as
/// unexpected messages).
///
/// When the actor terminates (for any reason), a child still running is stopped per its
/// spec: no process outlives its actor unsupervised. The actor does not wait for that: it
/// hands the process to libpkit (`process::release`), which begins the stop (unless one
/// is under way: each signal goes once), escalates on its reaper thread and destroys the
/// process once reaped — no thread per child, and the hand-over cannot fail. With an infinite
/// stop timeout the child runs until it exits; a program's child is killed by the kernel
/// (PR_SET_PDEATHSIG) when the CAF worker that started it ends, at actor-system shutdown at
/// the latest, a fork-server target's when the fork server ends. A fork server must
/// therefore outlive the stop of its targets' children, not only their actors.
using process_actor = caf::typed_actor<
    caf::replies_to<start_atom>::with<std::int32_t>,
    caf::replies_to<stop_atom>::with<exit_status>,
    caf::replies_to<kill_atom>::with<exit_status>,
    caf::replies_to<signal_atom, std::int32_t>::with<caf::ok_atom>,
    caf::replies_to<join_atom>::with<exit_status>,
    caf::replies_to<status_atom>::with<process_info>>;

/// Where a process actor reports its child's life, besides its own replies: the
/// supervisor that owns it (an untyped handle; may be empty). It receives, in this order
/// for each run, `(child_started_atom, std::string id, std::uint64_t incarnation,
/// std::int32_t pid)` once the child exists, `(child_ready_atom, id, incarnation, pid)`
/// once it is ready (not for a run that never gets ready), and `(child_exited_atom, id,
/// incarnation, exit_status)` when it ends. The process actor keeps only the observer's
/// address: it does not keep the observer alive.
struct process_observer {
  caf::actor actor;
  std::string id;
  /// Called with each run's pid on the actor's own thread the moment its child exists,
  /// before any message about it is sent: for what must know of the child with no
  /// message hop in between (`pkit node` registers its process group with the node's
  /// guardian, so that a node frozen right after the spawn cannot leave it out of the
  /// fence). Must not block; an exception it throws is dropped. May be empty. Process
  /// actors only: a supervisor or a remote worker's relay given an observer ignores it.
  std::function<void(pid_t)> on_started{};
};

/// Spawns a process actor for `spec`. Callable targets (`spec.target`) are forked by
/// `server`, which must outlive the actor. A program's `start` runs its clone and exec on
/// the CAF worker that handles it; a target's start, a round trip to the fork server
/// (bounded by its `request_timeout`), runs on a launcher thread of pkit's, so a slow or
/// stopped server holds no worker (the actor system itself is never forked to run C++
/// code: CAF's worker threads are running). So does the name-service lookup of the `user`
/// or `group` a program's spec names (LDAP, sssd... may wait on a server), on launcher
/// threads of their own; the spawn follows on the worker. The lookup counts toward
/// `ready_timeout_ms` when it is over 0 (then `start_failed`, stage "user"/"group",
/// ETIMEDOUT; readiness gets what is left), and a `stop` or `kill` during it ends the
/// start at once (`start_failed`, ECANCELED; the stop is answered `not_started`): nothing
/// is spawned for it. The child is not started until the actor receives `start`. Errors in
/// the spec are reported by `start`.
process_actor spawn_process(caf::actor_system& system, process_spec spec,
                            const fork_server* server = nullptr, process_observer observer = {});

/// The checks a supervisor makes of a worker's spec (check_supervisor_spec), for one
/// spec alone: `invalid_spec` naming the field ("process.cwd: contains a NUL byte"), or
/// none. A process actor's `start` answers it for a spec that fails them.
caf::error check_process_spec(const process_spec& spec);

}  // namespace pkit::actors
