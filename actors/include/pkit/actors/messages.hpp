#pragma once

/// \file
/// Every atom and message type of pkit's actor layer, in one place, and the one call
/// that registers them all with an actor system: `pkit::actors::init(cfg)`. Every type
/// here is serializable (an `inspect` overload), so it can cross the network.

#include <pkit/exit_status.hpp>

#include <caf/actor.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include <cstdint>
#include <csignal>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pkit::actors {

// ---------------------------------------------------------------------------------------
// Process actors

/// The life of one process actor's current run.
enum class process_state : std::uint8_t {
  idle,      ///< never started, or stopped on request
  starting,  ///< the child exists but has not reported ready yet
  running,   ///< ready
  stopping,  ///< a stop is under way (signal sent, escalation scheduled)
  exited,    ///< the last run ended by itself
};
std::string to_string(process_state s);

/// One resource limit (setrlimit) of a process spec: `resource` is an RLIMIT_* value;
/// `soft`/`hard` are the limits, `unlimited` for RLIM_INFINITY.
struct rlimit_spec {
  static constexpr std::uint64_t unlimited = ~std::uint64_t{0};
  std::int32_t resource = 0;
  std::uint64_t soft = unlimited;
  std::uint64_t hard = unlimited;
};

/// What a process actor runs, and how it is started and stopped. Either an external
/// program (`argv` non-empty) or a target registered with the actor system's fork server
/// (`target`, with `args`). A plain value, serializable for remote spawning.
struct process_spec {
  std::string name;                 ///< for diagnostics; defaults to argv[0] / target
  std::vector<std::string> argv;    ///< a program to exec (PATH lookup without '/')
  std::string target;               ///< or: a fork-server target name
  std::vector<std::string> args;    ///< the target's arguments
  std::vector<std::string> env;     ///< "NAME=value" sets, "NAME" removes
  bool clear_env = false;
  std::string cwd;
  /// "" inherits; "null" is /dev/null; "capture" is a pipe per run to the actor system's
  /// output_capture (pkit/actors/output_capture.hpp); anything else is a file appended to.
  std::string stdout_path;
  std::string stderr_path;
  bool new_process_group = true;
  /// Readiness: the child writes a newline to this fd (s6's notification-fd); -1: the
  /// child is ready once it exists (exec'd, or forked with its signals in place).
  std::int32_t notify_fd = -1;
  std::int64_t ready_timeout_ms = 10000;
  /// Stop: `stop_signal`, then SIGKILL after `stop_timeout_ms` (0: SIGKILL at once,
  /// OTP's brutal_kill; -1: never, OTP's infinity), to the group with `kill_group`.
  std::int32_t stop_signal = SIGTERM;
  std::int64_t stop_timeout_ms = 5000;
  bool kill_group = true;
  // -- issue 10: what the `pkit` tool's file can ask for ---------------------------------
  /// The credentials the child runs with (only a privileged parent can change them): a
  /// user name or numeric uid, a group name or numeric gid. "" keeps the parent's. A user
  /// without a group takes the user's primary group and its supplementary groups.
  std::string user;
  std::string group;
  /// Resource limits set in the child before it runs its target.
  std::vector<rlimit_spec> rlimits;
  /// systemd's readiness protocol (`Type=notify`): the child gets `NOTIFY_SOCKET`, a
  /// datagram socket of its own run, and is ready once it sends `READY=1` there (combines
  /// with neither `notify_fd` nor a fork-server target).
  bool notify_socket = false;
  /// The child's stdin: "" inherits the actor system's; "null" is /dev/null (what a
  /// supervised program gets from `pkit run` and from a node, as systemd's default
  /// StandardInput=null: a child in a group of its own that read a terminal would be
  /// stopped by SIGTTIN); anything else a file opened read-only by the supervising
  /// process (its credentials, its working directory; pkit::stdio::file: a FIFO without
  /// a writer reads as end of file, without waiting). Not "capture"
  /// (outputs only) and no NUL byte: check_supervisor_spec refuses either. Appended
  /// last: it crosses the wire.
  std::string stdin_path;
};

/// How long a process actor's start of `spec` may wait beyond its spawn, in ms: the
/// readiness deadline for a spec that waits for readiness (`notify_fd`, `notify_socket`)
/// or for the lookup of its `user` or `group` (which counts toward that deadline); 0 for
/// any other (its start is the spawn); none when `ready_timeout_ms` is -1 (for ever), or
/// 0 with a lookup (a lookup is bounded by a deadline over 0 only).
/// What every bound on a start (a supervisor's, a node's, a remote caller's) builds on.
std::optional<std::int64_t> start_wait_ms(const process_spec& spec);

/// A process actor's answer to `status_atom`.
struct process_info {
  std::string name;
  process_state state = process_state::idle;
  std::int32_t pid = 0;               ///< 0 when no child exists
  std::uint64_t incarnation = 0;      ///< runs started so far; names the current one
  std::int64_t started_at_ns = 0;     ///< system clock, of the current/last run
  bool has_last_exit = false;
  exit_status last_exit;
};

/// Why a child could not be started, machine-readable: the context of a `start_failed`
/// error (`start_failure_of(err)` extracts it), alongside the rendered text.
struct start_failure {
  std::string name;        ///< the process spec's name
  std::string program;     ///< argv[0] for a program, the target name for a fork-server target
  std::string stage;       ///< what failed: "exec", "chdir", "fork", "open", ... ("" if unknown)
  std::int32_t errno_value = 0;  ///< the errno of that stage; 0 when the cause is no errno
  std::string text;        ///< "cannot start '/x': exec: No such file or directory"
};

/// The start_failure carried by `err` (a pkit `start_failed` error), if any.
std::optional<start_failure> start_failure_of(const caf::error& err);

// ---------------------------------------------------------------------------------------
// Supervisors (Erlang/OTP's supervisor, and beyond)

enum class restart_strategy : std::uint8_t { one_for_one, one_for_all, rest_for_one, simple_one_for_one };
/// permanent: always restarted; transient: restarted unless it exited normally (code 0,
/// or killed by the shutdown signal during a requested stop); temporary: never.
enum class restart_type : std::uint8_t { permanent, transient, temporary };
enum class auto_shutdown : std::uint8_t { never, any_significant, all_significant };

std::string to_string(restart_strategy s);
std::string to_string(restart_type t);
std::string to_string(auto_shutdown a);

/// Exponential restart backoff (beyond OTP, which restarts at once): the n-th
/// consecutive restart of a child waits min(initial * multiplier^(n-1), max), +/- jitter
/// (a fraction of the delay); the count resets once the child stayed up `reset_after_ms`.
/// initial_ms == 0 disables backoff.
struct backoff_spec {
  std::int64_t initial_ms = 0;
  std::int64_t max_ms = 30000;
  double multiplier = 2.0;
  double jitter = 0.1;
  std::int64_t reset_after_ms = 60000;
};

// -- issue 9 (sup2) ----------------------------------------------------------------------
/// How much a supervisor reports on stderr (see supervisor_flags::report).
enum class supervisor_report : std::uint8_t { none, give_up, all };
std::string to_string(supervisor_report r);
// -- end issue 9 (sup2) -------------------------------------------------------------------

struct supervisor_flags {
  restart_strategy strategy = restart_strategy::one_for_one;
  /// OTP's intensity/period: more than `intensity` restarts within `period_ms` (a
  /// sliding window on the monotonic clock) and the supervisor gives up: it stops all its
  /// children in reverse start order and exits with `error::restart_limit`.
  std::int32_t intensity = 1;
  std::int64_t period_ms = 5000;
  auto_shutdown shutdown = auto_shutdown::never;
  backoff_spec backoff;
  /// A child that dies sooner than this after it started counts as a failed start;
  /// after `max_failed_starts` failed starts in a row it is FATAL: no more restarts
  /// (supervisord's startsecs/startretries). 0 disables.
  std::int64_t min_uptime_ms = 0;
  std::int32_t max_failed_starts = 5;
  /// How many children of one start sequence — the initial start, a group restart, or
  /// `start_child` requests queued back to back — may be starting at once. 1 is OTP's
  /// order: each child starts once the one before it is ready. N > 1 issues the starts in
  /// the same order but without waiting, up to N under way side by side (systemd's
  /// parallel start, for children that do not depend on each other; their processes
  /// appear in any order); each still reports on its own.
  std::int32_t start_concurrency = 1;
  // -- issue 9 (sup2): reports ----------------------------------------------------------
  /// What the supervisor writes to stderr, one line per report, for a user without a
  /// subscriber (OTP's supervisor reports; CAF's logger may be compiled out): by default
  /// why it gave up (`reached_max_restart_intensity`, with the last exit) and a child
  /// that became FATAL; with `all` also every child that terminated abnormally and every
  /// failed start (OTP's `child_terminated`, `start_error`).
  supervisor_report report = supervisor_report::give_up;
  // -- issue 9 (sup2): named supervisors (a flag, so that supervisor_spec{name, flags,
  // children} stays an aggregate of three: -Wmissing-field-initializers) ---------
  /// "" (the default): not registered. Else the supervisor registers itself under this
  /// name (a valid CAF atom: at most 10 characters) before it starts any child, and
  /// removes the entry when it ends (OTP's `{local, Name}`). A name held by another live
  /// supervisor, or by a live actor in CAF's registry under `caf::atom(name)`, makes the
  /// supervisor exit at once with `already_present`. Look it up with `whereis_supervisor`.
  /// As in OTP, the name does not keep the supervisor alive: pkit's name table holds its
  /// address weakly (it is not put in CAF's registry, which would hold it strongly).
  std::string registered_name;
  // -- end issue 9 (sup2) ---------------------------------------------------------------
};

struct supervisor_spec;

/// `child_spec::shutdown_ms` by default: OTP's default shutdown — infinity for a nested
/// supervisor (it is given whatever its own children's shutdowns take), and for a worker
/// its process spec's `stop_timeout_ms` (5000 ms unless set, OTP's worker default).
inline constexpr std::int64_t default_shutdown = -2;

/// One child of a supervisor: a worker (a process) or a nested supervisor.
struct child_spec {
  std::string id;
  process_spec process;                    ///< for a worker
  std::vector<supervisor_spec> supervisor;  ///< exactly one element for a supervisor child
  restart_type restart = restart_type::permanent;
  /// OTP's shutdown: 0 brutal_kill, -1 infinity, else ms before SIGKILL (a worker) or
  /// before the nested supervisor is killed; `default_shutdown` (the default): infinity
  /// for a supervisor, the process spec's stop_timeout_ms for a worker. Any other value
  /// overrides the process spec's stop_timeout_ms. Below -2: `invalid_spec`.
  std::int64_t shutdown_ms = default_shutdown;
  bool significant = false;  ///< counts for auto_shutdown
  /// Issue 11: empty, the worker runs here; else the names of the nodes it may run on, in
  /// order of preference (a node that is down is tried after those that are up). Needs a
  /// placement (pkit/actors/placement.hpp) given to the supervisor; without one the
  /// child's start fails with `start_failed`. Only for workers, not for a fork-server
  /// target; names non-empty and unique (check_child).
  std::vector<std::string> nodes;
};

struct supervisor_spec {
  std::string name;
  supervisor_flags flags;
  std::vector<child_spec> children;  ///< started in order, stopped in reverse order
};

/// A child's state as a supervisor sees it.
enum class child_state : std::uint8_t {
  stopped,     ///< not running (never started, terminated on request, or temporary & gone)
  starting,    ///< started, waiting for readiness
  running,     ///< ready
  restarting,  ///< exited; a restart is scheduled (backoff)
  stopping,    ///< a stop is under way
  fatal,       ///< gave up after too many failed starts
};
std::string to_string(child_state s);

/// What ended a child's last run, or made its last start fail: the machine-readable form
/// of child_info::last_reason and of an event's `reason` (issue 9, item 16). The numbers
/// are beside it, not repeated: an exit code or a signal in the exit status
/// (child_info::last_exit, supervisor_event::status), a failed start's stage, errno and
/// program in `start`.
enum class end_kind : std::uint8_t {
  none,           ///< nothing has ended yet (or, in an event, nothing to tell)
  exited,         ///< the process exited on its own: the status has its code
  signaled,       ///< the process was killed by a signal: the status has it (9: SIGKILL)
  lost,           ///< the process ended, its status unknown (exit_status::lost())
  stopped,        ///< stopped on request (terminate_child, a group restart, shutdown)
  stop_timeout,   ///< stopped, but the stop had to be forced at the shutdown timeout
  node_down,      ///< the node of a remote worker was lost (status: lost)
  actor_down,     ///< the worker's process actor ended under it (the text says how)
  start_failed,   ///< the start failed (exec, readiness, start timeout, a nested init):
                  ///< `start` has the stage, errno and program when the start knew them
  restart_limit,  ///< a nested supervisor gave up (more than intensity restarts in period)
  shutdown,       ///< a nested supervisor ended normally (stopped by its parent's order,
                  ///< auto_shutdown)
  error,          ///< a nested supervisor ended with another error (the text says which)
};
std::string to_string(end_kind k);

/// See end_kind. Ownership: a value; no threads; on the wire after the fields that were
/// there before it (child_info, supervisor_event).
struct end_reason {
  end_reason() = default;
  explicit end_reason(end_kind k) noexcept : kind(k) {}
  end_kind kind = end_kind::none;
  /// Whether `start` is set: for start_failed when the start error carried a
  /// start_failure (start_failure_of: a process actor's exec, chdir, fork, ... error).
  bool has_start = false;
  start_failure start;
};

/// One entry of `which_children`.
struct child_info {
  std::string id;
  child_state state = child_state::stopped;
  std::int32_t pid = 0;
  std::uint64_t incarnation = 0;
  bool is_supervisor = false;
  std::uint32_t automatic_restarts = 0;
  std::uint32_t manual_restarts = 0;
  bool has_last_exit = false;
  exit_status last_exit;
  /// The child's actor: a `process_actor` for a worker, a `supervisor_actor` for a
  /// nested supervisor; empty while the child has none. Typed: worker_of(info) and
  /// nested_supervisor_of(info) (pkit/actors/supervisor.hpp) — no cast by flag.
  caf::actor handle;
  /// Why the last run ended when its exit status cannot tell (a nested supervisor has
  /// none: its exit reason, e.g. restart_limit), or why the last start failed (the
  /// start error: start_failed with its stage and errno, ready_timeout, ...). Empty for
  /// a process that simply exited; `stop_timeout: ...` (see stop_timeout_reason) for a
  /// worker whose stop had to SIGKILL it or its group. (Also the `reason` of the `exited` and `stopped` events.)
  std::string last_reason;
  /// Issue 11: the node the current (or last) run of a remote worker is on; empty for a
  /// local child and for a remote one that has not been placed yet.
  std::string node;
  /// `last_reason` (and the exit status), machine-readable: kind none before anything ended.
  end_reason last_end;
};

/// OTP's count_children.
struct child_counts {
  std::uint32_t specs = 0;
  std::uint32_t active = 0;
  std::uint32_t supervisors = 0;
  std::uint32_t workers = 0;
};

enum class event_kind : std::uint8_t {
  started,     ///< a child was started (pid known)
  ready,       ///< it reported ready
  exited,      ///< it exited (status), whatever happens next
  restarting,  ///< a restart is scheduled after `delay_ms`
  gave_up,     ///< the supervisor exceeded its restart intensity and is shutting down
  fatal,       ///< a child failed to start too often and will not be restarted
  stopped,     ///< a child was stopped on request (terminate_child, shutdown; status)
};
std::string to_string(event_kind k);

/// A set of event kinds, for a filtered subscription (`subscribe, actor, mask`).
using event_mask = std::uint32_t;
constexpr event_mask mask_of(event_kind k) noexcept { return event_mask{1} << static_cast<unsigned>(k); }
constexpr event_mask mask_of(std::initializer_list<event_kind> kinds) noexcept {
  event_mask m = 0;
  for (event_kind k : kinds) m |= mask_of(k);
  return m;
}
constexpr event_mask all_events = ~event_mask{0};

/// What a supervisor tells its subscribers. `incarnation` names the child's run, so an
/// event about an older run is recognisable.
struct supervisor_event {
  /// The supervisor's name (its spec's): for people. Names need not be unique; `source`
  /// is what tells two supervisors apart.
  std::string supervisor;
  /// The supervisor that sent the event (a weak address: it does not keep it alive):
  /// unambiguous, also for events of a whole tree stored or passed on.
  caf::actor_addr source;
  std::string child;
  event_kind kind = event_kind::started;
  std::uint64_t incarnation = 0;
  std::int32_t pid = 0;
  bool has_status = false;
  exit_status status;
  std::int64_t delay_ms = 0;
  std::string reason;
  /// The node a remote worker's run is on (child_spec::nodes): its `pid` is that node's,
  /// never one of this machine. Empty for a local child.
  std::string node;
  /// `reason` and `status`, machine-readable (see end_kind): for exited and stopped (as
  /// child_info::last_end), gave_up (restart_limit); kind none for the other events.
  end_reason end;
};

/// The start of a `stopped` event's `reason` (and of `child_info::last_reason`) when the
/// worker's stop had to be forced at its shutdown timeout (exit_status::stop_escalated()):
/// "stop_timeout: killed after 5000 ms", or "stop_timeout: its process group killed after
/// 5000 ms" when the worker obeyed but what it left in its group had to be killed.
inline constexpr std::string_view stop_timeout_reason = "stop_timeout";

// ---------------------------------------------------------------------------------------
// inspect overloads (CAF 0.17 serialization)

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_spec& x) {
  return f(caf::meta::type_name("pkit::actors::process_spec"), x.name, x.argv, x.target, x.args,
           x.env, x.clear_env, x.cwd, x.stdout_path, x.stderr_path, x.new_process_group,
           x.notify_fd, x.ready_timeout_ms, x.stop_signal, x.stop_timeout_ms, x.kill_group, x.user,
           x.group, x.rlimits, x.notify_socket, x.stdin_path);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rlimit_spec& x) {
  return f(caf::meta::type_name("pkit::actors::rlimit_spec"), x.resource, x.soft, x.hard);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_info& x) {
  return f(caf::meta::type_name("pkit::actors::process_info"), x.name, x.state, x.pid,
           x.incarnation, x.started_at_ns, x.has_last_exit, x.last_exit);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, start_failure& x) {
  return f(caf::meta::type_name("pkit::actors::start_failure"), x.name, x.program, x.stage,
           x.errno_value, x.text);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, end_reason& x) {
  return f(caf::meta::type_name("pkit::actors::end_reason"), x.kind, x.has_start, x.start);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, backoff_spec& x) {
  return f(caf::meta::type_name("pkit::actors::backoff_spec"), x.initial_ms, x.max_ms,
           x.multiplier, x.jitter, x.reset_after_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervisor_flags& x) {
  return f(caf::meta::type_name("pkit::actors::supervisor_flags"), x.strategy, x.intensity,
           x.period_ms, x.shutdown, x.backoff, x.min_uptime_ms, x.max_failed_starts,
           x.start_concurrency, x.report, x.registered_name);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_spec& x);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervisor_spec& x) {
  return f(caf::meta::type_name("pkit::actors::supervisor_spec"), x.name, x.flags, x.children);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_spec& x) {
  return f(caf::meta::type_name("pkit::actors::child_spec"), x.id, x.process, x.supervisor,
           x.restart, x.shutdown_ms, x.significant, x.nodes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_info& x) {
  return f(caf::meta::type_name("pkit::actors::child_info"), x.id, x.state, x.pid, x.incarnation,
           x.is_supervisor, x.automatic_restarts, x.manual_restarts, x.has_last_exit, x.last_exit,
           x.handle, x.last_reason, x.node, x.last_end);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_counts& x) {
  return f(caf::meta::type_name("pkit::actors::child_counts"), x.specs, x.active, x.supervisors,
           x.workers);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervisor_event& x) {
  return f(caf::meta::type_name("pkit::actors::supervisor_event"), x.supervisor, x.source, x.child, x.kind,
           x.incarnation, x.pid, x.has_status, x.status, x.delay_ms, x.reason, x.node, x.end);
}

/// Registers every message type and the error category of pkit's actor layer with
/// `cfg`. Nothing else: the scheduler stays whatever the application configures (pkit's
/// own is an explicit opt-in, `use_pkit_scheduler(cfg)` in pkit/actors/scheduler.hpp).
/// Call once, before the actor system is constructed. (Remoting additionally needs
/// `cfg.load<caf::io::middleman>()`.)
void init(caf::actor_system_config& cfg);

}  // namespace pkit::actors

namespace pkit {

/// exit_status is a libpkit value type (no CAF there); its wire form is (killed, value,
/// core dumped, lost, stop escalated).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, exit_status& x) {
  bool killed = x.is_killed();
  bool lost = x.is_lost();
  std::int32_t value = killed ? x.signal() : x.code();
  bool core = x.core_dumped();
  bool escalated = x.stop_escalated();
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x = lost ? exit_status::lost()
             : killed ? exit_status::killed(value, core) : exit_status::exited(value);
    x = x.with_stop_escalated(escalated);
    return caf::none;
  });
  return f(caf::meta::type_name("pkit::exit_status"), killed, value, core, lost, escalated, load);
}

}  // namespace pkit

// ---------------------------------------------------------------------------------------
// Atoms and type IDs (CAF 0.17.6's forward-compatible type ID blocks).

CAF_BEGIN_TYPE_ID_BLOCK(pkit, caf::first_custom_type_id)

  // Process actors.
  CAF_ADD_ATOM(pkit, pkit::actors, start_atom, "start")
  CAF_ADD_ATOM(pkit, pkit::actors, stop_atom, "stop")
  CAF_ADD_ATOM(pkit, pkit::actors, kill_atom, "kill")
  CAF_ADD_ATOM(pkit, pkit::actors, signal_atom, "signal")
  CAF_ADD_ATOM(pkit, pkit::actors, join_atom, "join")
  CAF_ADD_ATOM(pkit, pkit::actors, status_atom, "status")
  // (A process actor's internal reports have private, unserializable types of
  // process_actor.cpp: no atom here, so no peer can forge them.)
  // Supervisors.
  CAF_ADD_ATOM(pkit, pkit::actors, start_child_atom, "startchild")
  CAF_ADD_ATOM(pkit, pkit::actors, terminate_child_atom, "termchild")
  CAF_ADD_ATOM(pkit, pkit::actors, restart_child_atom, "restchild")
  CAF_ADD_ATOM(pkit, pkit::actors, delete_child_atom, "delchild")
  CAF_ADD_ATOM(pkit, pkit::actors, which_children_atom, "children")
  CAF_ADD_ATOM(pkit, pkit::actors, count_children_atom, "count")
  CAF_ADD_ATOM(pkit, pkit::actors, subscribe_atom, "subscribe")
  CAF_ADD_ATOM(pkit, pkit::actors, child_exited_atom, "childexit")
  CAF_ADD_ATOM(pkit, pkit::actors, child_started_atom, "childstart")
  CAF_ADD_ATOM(pkit, pkit::actors, child_ready_atom, "childready")
  // No longer handled by anything (a supervisor's timers are of a private type since
  // review D2); kept so that the IDs after it stay as they were.
  CAF_ADD_ATOM(pkit, pkit::actors, restart_atom, "restart")
  CAF_ADD_ATOM(pkit, pkit::actors, unsubscribe_atom, "unsubscr")

  CAF_ADD_TYPE_ID(pkit, (pkit::exit_status))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::process_state))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::process_spec))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::process_info))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::start_failure))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::restart_strategy))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::restart_type))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::auto_shutdown))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::backoff_spec))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::supervisor_flags))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::child_spec))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::supervisor_spec))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::child_state))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::child_info))
  CAF_ADD_TYPE_ID(pkit, (std::vector<pkit::actors::child_info>))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::child_counts))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::event_kind))
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::supervisor_event))
  // -- issue 9 (sup2), appended so that the IDs above stay as they were ---------------
  CAF_ADD_ATOM(pkit, pkit::actors, get_childspec_atom, "childspec")
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::supervisor_report))
  // -- end issue 9 (sup2) -----------------------------------------------------------------
  // -- issue 10 -------------------------------------------------------------------------
  CAF_ADD_TYPE_ID(pkit, (pkit::actors::rlimit_spec))
  CAF_ADD_TYPE_ID(pkit, (std::vector<pkit::actors::rlimit_spec>))
  // -- issue 11: a remote worker's relay tells its supervisor where the child runs
  // (child_node, id, node name), before that run's child_started.
  CAF_ADD_ATOM(pkit, pkit::actors, child_node_atom, "childnode")

CAF_END_TYPE_ID_BLOCK(pkit)
