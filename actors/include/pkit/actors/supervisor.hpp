#pragma once

/// \file
/// The supervisor actor: Erlang/OTP's supervisor for OS processes, and beyond.

#include <pkit/actors/messages.hpp>
#include <pkit/actors/placement.hpp>
#include <pkit/actors/process_actor.hpp>

#include <caf/actor_system.hpp>
#include <caf/error.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace pkit::actors {

/// The typed interface of a supervisor.
///
/// * `start_child, child_spec` → child_info once the child is ready (`already_present`,
///   `start_failed`, `wrong_strategy` on a simple_one_for_one supervisor).
/// * `start_child, child_spec, before` → the same, the child placed before the sibling
///   `before` instead of last (`unknown_child` if there is none; empty: last) — its place
///   in the start order, so in rest_for_one and in the reverse-order stop. OTP appends
///   only; a tool that replaces one child of a running tree keeps the tree's order.
/// * `start_child, args` → child_info: simple_one_for_one only; starts a new child from
///   the supervisor's single template child spec, its args appended to argv (or to the
///   target's args), with a generated id.
/// * `terminate_child, id` → ok once the child is stopped (its spec is kept, except a
///   temporary child's or a simple_one_for_one child's, which are deleted).
/// * `restart_child, id` → child_info (a stopped child is started; a running one is
///   stopped and started again; counted as a manual restart). `wrong_strategy` on a
///   simple_one_for_one supervisor (OTP's {error, simple_one_for_one}).
/// * `delete_child, id` → ok (`still_running` unless stopped first; `wrong_strategy` on a
///   simple_one_for_one supervisor, whose children are deleted when they stop).
/// * `which_children` → every child in start order; `count_children` → child_counts.
/// * `get_childspec, id` → the child's spec (OTP's get_childspec; a simple_one_for_one
///   instance's with its args appended), `unknown_child` if there is none.
/// * `subscribe, actor` → ok; `actor` then receives every `supervisor_event`.
///   `subscribe, actor, event_mask` → ok; only the kinds in the mask (`mask_of({...})`),
///   so a watcher of readiness is not woken for every exit. Subscribing again replaces
///   the mask; `unsubscribe, actor` → ok ends it. A subscriber that terminates is
///   dropped (the supervisor monitors it).
/// * `stop` → ok once every child is stopped in reverse start order; then the
///   supervisor exits normally.
/// That is the whole interface. The supervisor also handles its children's reports (the
/// process observer protocol of process_actor.hpp: child_started / child_ready /
/// child_exited) and its own timers, but not as part of this type: it is spawned as a
/// private extension of it, accepts a child's report only when its sender is the actor it
/// spawned for that child (so a process actor or nested supervisor sends them with itself
/// as sender), and its timers are of a private type that is not serializable. A holder
/// of this handle — an `actor_cast` to `caf::actor` included — cannot forge them.
///
/// Rules (Erlang/OTP's, which this matches): children start in order, each after the
/// previous one is ready, and stop in reverse order. A child that exits is restarted
/// according to its restart type (permanent always; transient unless it exited with 0;
/// temporary never — it is deleted) and the strategy (one_for_one: it alone;
/// one_for_all: all children are stopped in reverse order, then all started in order;
/// rest_for_one: it and the children after it; simple_one_for_one: it alone). More than
/// `intensity` restarts in `period_ms` and the supervisor gives up: it stops every
/// child in reverse order and exits with `error::restart_limit`, which its parent sees
/// as that child's failure (escalation). A child that fails to start during a group
/// restart makes the group restart again (a counted restart). Beyond OTP: restart
/// backoff, minimum uptime and FATAL after repeated failed starts, an event stream.
/// Significant children (transient or temporary only) and `auto_shutdown`: when a
/// significant child ends by itself and is not restarted, `any_significant` shuts the
/// supervisor down normally, `all_significant` does once no significant child is left
/// (stopping children on request never triggers it).
/// Every restart is a scheduled step, never a blocking loop: a supervisor whose child
/// can never start still answers `which_children`, `count_children` and `stop` at once.
///
/// An exit message ends a supervisor only when it comes from its parent (the observer
/// given to spawn_supervisor) or is anonymous (`caf::anon_send_exit`); OTP ignores exit
/// signals from anyone else, and so does pkit. Once it shuts down, requests are answered
/// with `error::shutting_down` and nothing is started any more.
///
/// Children are monitored, not linked. When a supervisor ends — however, even killed with
/// `exit_reason::kill` — its children (process actors, nested supervisors) are told to
/// stop, and their processes are stopped. A child actor killed with `exit_reason::kill`
/// is restarted like any crashed child (OTP turns `kill` into a trappable `killed` for
/// the same reason); a link would have carried that untrappable kill to the supervisor.
using supervisor_actor = caf::typed_actor<
    caf::replies_to<start_child_atom, child_spec>::with<child_info>,
    caf::replies_to<start_child_atom, child_spec, std::string>::with<child_info>,
    caf::replies_to<start_child_atom, std::vector<std::string>>::with<child_info>,
    caf::replies_to<terminate_child_atom, std::string>::with<caf::ok_atom>,
    caf::replies_to<restart_child_atom, std::string>::with<child_info>,
    caf::replies_to<delete_child_atom, std::string>::with<caf::ok_atom>,
    caf::replies_to<which_children_atom>::with<std::vector<child_info>>,
    caf::replies_to<count_children_atom>::with<child_counts>,
    caf::replies_to<get_childspec_atom, std::string>::with<child_spec>,
    caf::replies_to<subscribe_atom, caf::actor>::with<caf::ok_atom>,
    caf::replies_to<subscribe_atom, caf::actor, event_mask>::with<caf::ok_atom>,
    caf::replies_to<unsubscribe_atom, caf::actor>::with<caf::ok_atom>,
    caf::replies_to<stop_atom>::with<caf::ok_atom>>;

/// The worker's process actor of a child_info; empty for a nested supervisor or while the
/// child has no actor. (child_info::handle is untyped on the wire.)
process_actor worker_of(const child_info& info);

/// The nested supervisor of a child_info; empty for a worker or while it has none.
supervisor_actor nested_supervisor_of(const child_info& info);

/// An actor that receives a supervisor's events (those in `kinds`) from its very start.
/// With `whole_tree`, every nested supervisor the supervisor starts (and restarts), at
/// every depth, subscribes it from its own start too, so one subscriber sees the whole
/// tree's events (each names its supervisor) without racing a nested supervisor's
/// restart — what a tool that shows a tree needs.
struct event_subscriber {
  caf::actor who;
  event_mask kinds = all_events;
  bool whole_tree = false;
};

/// Spawns a supervisor for `spec` and starts its children in order. If a child fails to
/// start then, the supervisor stops the ones already started and exits with
/// `error::start_failed` (OTP's init failure). `server` (for fork-server targets) must
/// outlive it. `observer` (a parent supervisor) is told `child_ready` once every
/// child has started, and sees the supervisor's exit through a monitor. `subscribers`
/// are subscribed before the first child starts: they see every event, where a
/// `subscribe` request sent after the spawn can arrive after the first children's
/// `started` (and even `ready`) events.
supervisor_actor spawn_supervisor(caf::actor_system& system, supervisor_spec spec,
                                  const fork_server* server = nullptr,
                                  process_observer observer = {},
                                  std::vector<event_subscriber> subscribers = {});

/// OTP's start_link: spawns a supervisor for `spec` and returns it once every initial
/// child has started (is ready), or the init failure: `invalid_spec` (see
/// check_supervisor_spec), `already_present` (registered_name taken), `start_failed` (a
/// child could not start; the started ones were stopped), or `caf::sec::request_timeout`
/// when the start took longer than `timeout` (the supervisor is then killed, and its
/// children stopped, as OTP does). Blocks the calling thread: call it from the
/// application's threads (main), never from an actor's handler, which would hold up a
/// CAF worker. `server` and `subscribers` as for spawn_supervisor; there is no parent.
caf::expected<supervisor_actor> start_supervisor(caf::actor_system& system, supervisor_spec spec,
                                                 std::chrono::milliseconds timeout,
                                                 const fork_server* server = nullptr,
                                                 std::vector<event_subscriber> subscribers = {});

/// Everything spawn_supervisor / start_supervisor take besides the system and the spec,
/// as one value (issue 11 added `place`; the positional overloads above stay as they were).
struct supervisor_options {
  /// For fork-server targets; must outlive the supervisor. Inherited by nested supervisors.
  const fork_server* server = nullptr;
  /// Where workers with `child_spec::nodes` run (pkit/actors/placement.hpp); must outlive
  /// the supervisor; inherited by nested supervisors. Null: such a child's start fails
  /// with `start_failed` naming `nodes` (no placement), counted like any failed start.
  ///
  /// A remote worker's pid is the node's: the supervisor never signals, watches or waits
  /// for it here. "Never two instances" is weaker for it than for a local worker: the
  /// node's agent stops a child whose controller or relay is lost only once it notices
  /// (its connection timeout + heartbeat interval, pkit::net::link_timing, then the
  /// child's stop timeout). On the same node the restart after node_down waits for the
  /// old run: the node answers a spawn of that child's id only once a run of it it is
  /// stopping is gone (pkit/net/node_agent.hpp) — provided the node noticed the loss
  /// before the restart reached it, which it does when its timeout is no longer than the
  /// controller's. On another node, or on the same one when the controller was first, the
  /// old and the new run can overlap for that long; longer while the node's agent itself
  /// is frozen.
  const placement* place = nullptr;
  /// The parent (see spawn_supervisor); ignored by start_supervisor.
  process_observer observer = {};
  std::vector<event_subscriber> subscribers = {};
};

/// spawn_supervisor with its options as one value (see supervisor_options).
supervisor_actor spawn_supervisor(caf::actor_system& system, supervisor_spec spec, supervisor_options options);

/// start_supervisor with its options as one value (`options.observer` is ignored: the
/// caller waits as the parent). Blocks the calling thread as the other overload does.
caf::expected<supervisor_actor> start_supervisor(caf::actor_system& system, supervisor_spec spec,
                                                 std::chrono::milliseconds timeout, supervisor_options options);

/// The live supervisor registered under `name` (supervisor_flags::registered_name) in
/// `system`, or an empty handle. Any thread.
supervisor_actor whereis_supervisor(caf::actor_system& system, const std::string& name);

// -- checking specs (OTP's check_childspecs) ----------------------------------------------

/// OTP's check_childspecs: checks `children` (nested supervisor specs recursively)
/// without starting anything. Returns `caf::none`, or the first problem as
/// `error::invalid_spec` whose context names the field by its path and says what is
/// wrong, e.g. `children[1] ('db').shutdown_ms: must be >= 0, -1 (infinity) or
/// default_shutdown`. Checked: ids (non-empty, unique among siblings), a worker's argv
/// xor target, stop signal and stop timeout, shutdown, significant only when not
/// permanent, at most one nested supervisor and its flags. Pure; any thread.
caf::error check_childspecs(const std::vector<child_spec>& children);

/// check_childspecs for a whole supervisor spec: its flags (intensity >= 0, period > 0,
/// start_concurrency >= 1, backoff ...), the simple_one_for_one rule of exactly one
/// template child, and its children. A spec may come from anywhere, so every value is
/// checked to be in range: enums (a decoded one may hold any byte), durations (at most
/// 10^12 ms, so none overflows as nanoseconds), a finite backoff multiplier, and
/// supervisors nested at most 64 deep (the check itself is bounded by that depth). spawn_supervisor runs the same check: a spec it
/// refuses makes the supervisor exit with the same error before anything starts.
caf::error check_supervisor_spec(const supervisor_spec& spec);

/// One child spec, named `at` in the error (a `start_child` request's spec: "child").
caf::error check_child(const child_spec& spec, const std::string& at = "child");

}  // namespace pkit::actors
