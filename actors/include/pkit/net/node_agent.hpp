#pragma once

/// \file
/// `pkit::net::node_actor`: the node agent, the one actor a pkit node publishes (issue 11
/// §1, ISSUE11_DESIGN §6). A controller elsewhere asks it to spawn process actors for
/// specs the node's allow-list accepts, and to list them; nothing else. It never hands
/// out a supervisor, and never runs a spec it has not validated.
///
/// BASP trusts every connected peer (ISSUE11_DESIGN §4): every request here may come from
/// a hostile controller. Hence the narrow interface, the validation of every spec, a cap
/// on the children alive at once, and a relay actor required per spawn: the agent
/// monitors it and stops the children spawned for it when it goes down (the controller
/// ended it, or its node was lost: `caf::exit_reason::remote_link_unreachable`), so that
/// nothing the controller started outlives its supervision.
///
/// A lost controller is noticed through BASP's heartbeats (apply_link): within the node's
/// connection timeout + heartbeat interval of the controller's last message; the child is
/// then stopped per its spec (its stop timeout). During a partition the controller may
/// restart a child elsewhere before that: a child can then run twice for that long (no
/// fencing in this version; unbounded while this process is frozen). On this node it
/// cannot, once the loss is noticed (review 11 #4): the agent awaits the end of each
/// orphaned run (the stop answers once the child is collected, its process group empty),
/// and a spawn of the same id meanwhile is answered only after that — whichever
/// controller asks: the agent cannot see a controller's certificate (CAF keeps the TLS
/// session), a restarted controller has a new CAF node id, and through `pkit node` every
/// relay is the node's own. A spawn of another controller's equal id thus waits too, at
/// most that run's stop timeout; only orphans are waited for, never a live child. CAF keeps a
/// reconnected controller's old proxies alive when the new link came before the old one
/// was dropped: a relay's death may then never be seen here — `pkit node` asks each relay
/// periodically (its taps); a library user of the agent alone should do the same.

#include <pkit/actors/messages.hpp>
#include <pkit/actors/process_actor.hpp>
#include <pkit/net/allow_list.hpp>
#include <pkit/net/error.hpp>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <caf/node_id.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pkit::net {

/// The version of the node protocol (the node_actor interface and its types). A hello
/// with another version is refused (errc::node_protocol_mismatch). A controller checks it
/// before anything else: a node of another version, whose published interface is not
/// this node_actor, is still said hello to when it answers hello at all, so that the
/// controller names the mismatch ("the controller speaks version 2, this node 1")
/// instead of "not a pkit node agent". BASP's application identifier (link_timing.hpp)
/// changes only with the shared types' layout, so that such a hello can cross.
///
/// 2: `spawn` also starts the process actor and answers (actor, pid) — one round trip.
inline constexpr std::uint32_t node_protocol_version = 2;

/// What a node tells a controller that says hello: who it is and what it may run.
struct node_info {
  std::string name;                       ///< the node's name (its configuration's)
  std::string pkit_version;               ///< the node's pkit release
  std::uint32_t protocol = 0;             ///< node_protocol_version
  std::vector<std::string> programs;      ///< allow_list::programs
  std::vector<std::string> program_dirs;  ///< allow_list::program_dirs
  std::uint32_t max_children = 0;         ///< children alive at once, at most
};

/// One child of a node, as `list` reports it.
struct node_child_info {
  std::string id;    ///< the id the controller gave at spawn
  std::int32_t pid = 0;  ///< 0 while no process runs
  pkit::actors::process_state state = pkit::actors::process_state::idle;
};

/// What the agent puts before a remote spec's name to name its child (process_info::name,
/// the output_capture key). ':' is outside the name rule of validate() and of the `pkit`
/// tool's programs, so a remote child can never take a local program's name (and land in
/// its log) nor another remote child's prefix: "remote:web" is the peer's "web".
inline constexpr const char* remote_name_prefix = "remote:";

/// The mark of a report the agent's process actor sends to a relay of its own node when
/// node_config::sealed_local_reports is set. A type CAF is never told of (no type ID, no
/// inspect()): a message that carries it cannot be serialized nor deserialized, so it
/// never crosses the wire and no peer can make one.
struct sealed_report {};

/// A node's configuration: a plain value, checked with check() before the agent is spawned.
struct node_config {
  std::string name;
  allow_list allow;
  /// Process actors alive at once (over all controllers), and spawns waiting for an
  /// orphaned run of their id to end: a spawn beyond it is refused with
  /// errc::node_child_limit. A slot is freed when the process actor ends.
  std::uint32_t max_children = 64;
  /// Where the agent tells the node's own operator why it refused a spawn: the
  /// controller's id and the whole refusal, detail included (error::message(); the
  /// peer gets only what error::peer_message() holds). Called on the agent's thread; must
  /// not block. Empty: one line on stderr per refusal.
  std::function<void(const std::string& id, const error& refusal)> on_refusal;
  /// Called with each remote child's pid (the id of the process group it leads) the
  /// moment it exists, on its process actor's thread, before any message about it
  /// (process_observer::on_started): `pkit node` registers the group with its guardian
  /// there. Must not block. Empty: nothing.
  std::function<void(pid_t)> on_child_started;
  /// The node's stop switch, set by its owner (`pkit node` on SIGTERM, SIGINT, SIGHUP)
  /// before it stops the children: from then on the agent refuses every spawn, every
  /// start through a process actor it handed out, and every hello (so that a controller
  /// that dropped the node does not find it up again), with errc::node_shutting_down — a
  /// controller must not restart children while the node stops them. Read on the agent's
  /// and the process actors' threads. Null: no such switch.
  std::shared_ptr<const std::atomic<bool>> stopping;
  /// The node of the controller a spawn's relay stands for: the process actor handed out
  /// for that child serves requests from that node's actors (and this node's) only. Empty:
  /// the relay's own node. `pkit node` sets it: the relay the agent sees is the front's
  /// tap, which stands for the controller's relay. Called on the agent's thread.
  std::function<caf::node_id(const caf::actor& relay)> controller_of;
  /// Reports to a relay of this node itself go sealed: (sealed_report, child_started, …)
  /// instead of (child_started, …), still with the process actor handed out (the guard)
  /// as their sender. For a relay that must tell its child's reports from a peer's
  /// forgeries (`pkit node`'s tap): CAF 0.17.6 lets a peer name any exposed actor of this
  /// node — the guard among them — as the sender of a message, but no peer can send a
  /// sealed_report. A relay of another node always gets plain reports. Default off: an
  /// embedder's local relay expects plain ones.
  bool sealed_local_reports = false;

  /// allow.check(), then a positive max_children (allow_list_invalid naming
  /// "max_children"); nullopt when usable.
  std::optional<error> check() const;
};

}  // namespace pkit::net

// The node protocol's atoms and types: a type ID block of its own, after pkit's, so that
// pkit::actors (which knows nothing of the network) keeps its block as it is; it starts
// where pkit's ends, so that it moves along when pkit's grows. Type names
// cross the wire, not IDs (ISSUE11_DESIGN §4): both ends register them with init() below.
CAF_BEGIN_TYPE_ID_BLOCK(pkit_net, caf::id_block::pkit::end)

  CAF_ADD_ATOM(pkit_net, pkit::net, node_hello_atom, "nodehello")
  CAF_ADD_ATOM(pkit_net, pkit::net, node_spawn_atom, "nodespawn")
  CAF_ADD_ATOM(pkit_net, pkit::net, node_list_atom, "nodelist")
  CAF_ADD_TYPE_ID(pkit_net, (pkit::net::node_info))
  CAF_ADD_TYPE_ID(pkit_net, (pkit::net::node_child_info))
  CAF_ADD_TYPE_ID(pkit_net, (std::vector<pkit::net::node_child_info>))
  // The spawn reply: a process actor's handle, serialized as its actor address.
  CAF_ADD_TYPE_ID(pkit_net, (pkit::actors::process_actor))

CAF_END_TYPE_ID_BLOCK(pkit_net)

namespace pkit::net {

/// The agent's typed interface.
///
/// * `hello, protocol` → node_info; `node_protocol_mismatch` (subject "protocol") when the
///   versions differ; `node_shutting_down` (subject "hello") once the node stops, so that a
///   controller that dropped it for a refused spawn does not find it up and place there
///   again.
/// * `spawn, id, spec, relay` → (the new process actor, the pid of its first run): the
///   agent spawns the process actor and starts it, answering once the start did (for a
///   spec with readiness notification: once the child is ready) — one round trip where a
///   spawn and a `start` took two. Later runs are the caller's `start`s, as a supervisor's
///   for a local worker. The actor handed out is a guard in front of the real process
///   actor, with its interface: it forwards every request, and refuses `start` once the
///   node stops (node_config::stopping: errc::node_shutting_down) or once the agent stops
///   this child for good (its relay went down: errc::node_child_retired). An exit sent to
///   it by an actor of the controller's node or by a live actor of this process never
///   exposed (genuine_local_sender; others are ignored, `kill` cannot be) ends it, and the agent then stops the child as for a relay that
///   goes down. It
///   reports its child's life to `relay` (child_started, child_ready, child_exited with
///   the spawn's id, see process_actor.hpp, the guard as their sender; sealed for a relay
///   of this node with node_config::sealed_local_reports); those reports may
///   reach the caller before the answer (another sender). While a run of the same id whose
///   relay went down is still being stopped, the spawn waits for its end (see above): it
///   is refused with node_previous_run_stuck if that stop fails or exceeds the run's stop
///   timeout + a margin. Refused, with no actor spawned, when the spec
///   fails validate() against the node's allow-list (the error names the field, e.g.
///   "argv[0]"; a spec needs a name, and a root node a user or allow.default_user), when `relay` is empty (node_relay_missing: a child nobody watches would be
///   an orphan), when max_children are alive (node_child_limit; a run being stopped
///   holds its slot until it is gone), or when the node stops (node_shutting_down). A start that fails
///   answers the process actor's own error (category "pkit": start_failed,
///   ready_timeout, ...) and leaves nothing behind: the process actor is ended (its child,
///   if any ran, stopped per its spec) and its slot is free before the answer is sent.
///   A relay that goes down while its spawn is starting (the caller gave up on it) has
///   that process actor ended too, as for any child of a relay that goes down.
/// * `list` → the live children, in spawn order, with their pid and state (asked of each
///   process actor; one that does not answer within a few seconds is listed as idle, pid 0).
///
/// The child the agent runs is remote_child_spec(spec, allow) (the node's base
/// environment, never the agent's; allow.default_user / default_group for an empty user /
/// group; stdin /dev/null, as validate() refuses any stdin file), named
/// remote_name_prefix + spec.name.
///
/// Refusals are caf::errors of the category "pkitnet"; net_error_of() turns them back into
/// a pkit::net::error (code, subject, reason) on the controller's side. What the node's
/// file system said (error::detail) never crosses the wire: it goes to on_refusal.
using node_actor = caf::typed_actor<
    caf::replies_to<node_hello_atom, std::uint32_t>::with<node_info>,
    caf::replies_to<node_spawn_atom, std::string, pkit::actors::process_spec,
                    caf::actor>::with<pkit::actors::process_actor, std::int32_t>,
    caf::replies_to<node_list_atom>::with<std::vector<node_child_info>>>;

/// The hello of node_actor alone: what a controller can still ask of a node whose
/// published interface is another version's, to name the mismatch.
using node_hello_actor = caf::typed_actor<caf::replies_to<node_hello_atom, std::uint32_t>::with<node_info>>;

/// Spawns a node agent in `sys` for `config`, which must have passed config.check()
/// (a precondition: the agent would refuse every spawn of an invalid list, or run what
/// an unchecked one lets through). The agent runs until it is sent an exit; its process
/// actors then end with it, and their children are stopped per their specs. Publish it
/// (and nothing else) with the middleman or caf::openssl::publish. Thread-safe.
node_actor spawn_node_agent(caf::actor_system& sys, node_config config);

/// Whether a spawn that `sender` sent to an actor of `sys` may tie its children to `relay`:
/// an actor of the sender's own node, never of this one — a peer must not tie children to
/// an actor here that never ends (they would outlive their controller) — or an actor of
/// this node that was never exposed to the network (outside `sys`'s registry: only this
/// process can name it, e.g. `pkit node`'s tap). CAF 0.17.6 lets a peer name any exposed
/// actor of this node as the sender of a routed message; this rule holds all the same.
bool acceptable_relay(caf::actor_system& sys, const caf::strong_actor_ptr& sender, const caf::actor& relay);

/// Whether `sender` is surely an actor of this process: of `sys`'s node and never exposed
/// to the network (outside `sys`'s registry). CAF 0.17.6 resolves the sender of a routed
/// message that claims this node through the registry, where every actor whose message
/// crossed a link is: a peer can pose as any exposed actor here, never as an unexposed
/// one. An actor that has ended is not genuine either (a peer may have named it while it
/// was still exposed): a sender whose word must count stays alive until it was heard.
/// What acts only on this node's own word (its stop, a child's hand-over) asks this.
bool genuine_local_sender(caf::actor_system& sys, const caf::strong_actor_ptr& sender);

/// `e` as a caf::error of the category "pkitnet" (the errc as its code, subject and
/// reason as its context), so that it crosses the wire to the controller: what
/// e.peer_message() says, structured; never e.detail.
caf::error to_caf_error(const error& e);

/// The pkit::net::error that `err` carries, if it is one of category "pkitnet".
std::optional<error> net_error_of(const caf::error& err);

/// pkit::actors::init(cfg), plus the node protocol's types and the "pkitnet" error
/// category's renderer. Call once per configuration, before the actor system exists, on
/// both the node and the controller (instead of pkit::actors::init).
void init(caf::actor_system_config& cfg);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("pkit::net::node_info"), x.name, x.pkit_version, x.protocol,
           x.programs, x.program_dirs, x.max_children);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_child_info& x) {
  return f(caf::meta::type_name("pkit::net::node_child_info"), x.id, x.pid, x.state);
}

}  // namespace pkit::net

// Local only, on purpose (see sealed_report).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::net::sealed_report)
