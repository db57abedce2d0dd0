#pragma once

/// \file
/// Remote control of `pkit run` (`pkit ctl --host`, issue 11 §3): the one actor a
/// `pkit run` with `[pkit] control_listen` publishes, and its message types.
///
/// The wire carries the control protocol of tools/pkit/PROTOCOL.md unchanged: a request
/// is one request line (the JSON object a client writes to the control socket), the reply
/// one reply line. So both transports share every check (decode_request), every command
/// (control_handler::handle) and every formatting of `pkit ctl`; only the carrier differs.
/// Streams (`events`, `tail`) are pulled: the opening request's ok reply names a session,
/// and the client asks for that session's next lines (ctl_next_atom) — item and end lines
/// of the protocol, as the socket sends them. The client's own pace is the flow control:
/// pkit run queues at most 4 MiB per session (then the stream ends, reason "overrun") and
/// holds a poll for at most a second when nothing is queued.

#include <caf/actor_system_config.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>

#include <pkit/net/node_agent.hpp>

#include <cstdint>
#include <string>
#include <vector>

// A block of its own after pkit_net's: type names cross the wire, both ends register it
// (remote_control_init).
CAF_BEGIN_TYPE_ID_BLOCK(pkit_ctl, caf::id_block::pkit_net::end)

  CAF_ADD_ATOM(pkit_ctl, pkit::tool, ctl_request_atom, "ctlrequest")
  CAF_ADD_ATOM(pkit_ctl, pkit::tool, ctl_next_atom, "ctlnext")
  // The endpoint's own messages to itself (ignored from any other sender).
  CAF_ADD_ATOM(pkit_ctl, pkit::tool, ctl_wake_atom, "ctlwake")
  CAF_ADD_ATOM(pkit_ctl, pkit::tool, ctl_expire_atom, "ctlexpire")
  CAF_ADD_ATOM(pkit_ctl, pkit::tool, ctl_end_all_atom, "ctlendall")
  CAF_ADD_TYPE_ID(pkit_ctl, (std::vector<std::string>))

CAF_END_TYPE_ID_BLOCK(pkit_ctl)

namespace pkit::tool {

/// The published interface: (ctl_request_atom, request line) -> reply line. What a client
/// requires of what it connects to (an endpoint without streams still answers requests).
using remote_control_actor = caf::typed_actor<caf::replies_to<ctl_request_atom, std::string>::with<std::string>>;

/// With streams: (ctl_next_atom, session) -> the session's next lines (item lines and, last,
/// its end line); none after a second without any. Only the actor that opened the session
/// may ask; anyone else gets an end line "unknown_session".
using remote_stream_actor =
    remote_control_actor::extend<caf::replies_to<ctl_next_atom, std::uint64_t>::with<std::vector<std::string>>>;

/// Registers the types above in `cfg` (after pkit::net::prepare_links, which registers
/// pkit's and pkit::net's). Both ends call it before their actor system exists.
void remote_control_init(caf::actor_system_config& cfg);

}  // namespace pkit::tool
