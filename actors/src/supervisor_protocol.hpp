#pragma once

// The supervisor's private protocol: what it accepts besides its public interface
// (supervisor_actor), and from whom.
//
// * Its children's reports — `child_started`, `child_ready`, `child_exited`, the process
//   observer protocol of process_actor.hpp, which a nested supervisor speaks too (its
//   `child_ready` to its parent) — are public atoms, because any application may observe
//   a process actor. So they are accepted only from the child's own current actor: the
//   sender of the message (process actors and supervisors send them with themselves as
//   sender) must be the actor the supervisor spawned for that child. Anything else — an
//   actor that `actor_cast`s the handle, an anonymous send — is dropped.
//   Known limit: CAF 0.17's BASP takes a routed message's source as given — a peer that
//   names this node as the source gets the local actor with that id as the sender
//   (io/basp/remote_message_handler.hpp). A connected malicious node that knows a child's
//   actor id (child_info.handle carries it) can still forge these reports. Closing that
//   needs the process actor to report to a supervisor in a private type too (a change
//   in process_actor.cpp), leaving the atoms to other observers.
// * `child_node` (issue 11): a remote worker's relay (placement.hpp) names the node its
//   child was placed on, before that run's child_started; accepted under the same sender
//   rule, and only for a child with `nodes`. It only feeds child_info::node.
// * Its timers (restart backoff, shutdown deadlines, waiting for an old run) come back as
//   `restart_timer`, a private type of this header that is not serializable: only pkit's
//   code can make one, and no remote node can send one.
//
// The actor is spawned as `private_supervisor_actor`; everyone else gets the public
// `supervisor_actor` it converts to (the model of CAF's public handle vs. private
// `extend<>` interface, as process_actor.cpp does).

#include <pkit/actors/supervisor.hpp>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>

#include <cstdint>
#include <string>

namespace pkit::actors::detail {

/// A delayed message to the supervisor itself (through its timer relay): timer `token`
/// is due. Unforgeable (see above), so a token needs no secrecy.
struct restart_timer {
  std::uint64_t token;
};

}  // namespace pkit::actors::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::actors::detail::restart_timer)

namespace pkit::actors::detail {

/// The handle a supervisor is spawned as: the public interface plus the private protocol.
/// Only pkit's sources name it.
using private_supervisor_actor =
    supervisor_actor::extend<caf::reacts_to<child_node_atom, std::string, std::string>,
                             caf::reacts_to<child_started_atom, std::string, std::uint64_t, std::int32_t>,
                             caf::reacts_to<child_ready_atom, std::string, std::uint64_t, std::int32_t>,
                             caf::reacts_to<child_exited_atom, std::string, std::uint64_t, exit_status>,
                             caf::reacts_to<restart_timer>>;

}  // namespace pkit::actors::detail
