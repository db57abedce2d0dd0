#pragma once

/// \file
/// Remote control of `pkit run` (`pkit ctl --host`, issue 11 §3): the one actor a
/// `pkit run` with `[pkit] control_listen` publishes, and its message types.
///
/// The wire carries the control protocol of tools/pkit/PROTOCOL.md unchanged: a request
/// is one request line (the JSON object a client writes to the control socket), the reply
/// one reply line. So both transports share every check (decode_request), every command
/// (control_handler::handle) and every formatting of `pkit ctl`; only the carrier differs.
/// Streams (`events`, `tail`) are refused over it ("stream_not_remote").

#include <caf/actor_system_config.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>

#include <pkit/net/node_agent.hpp>

#include <string>

// A block of its own after pkit_net's: type names cross the wire, both ends register it
// (remote_control_init).
CAF_BEGIN_TYPE_ID_BLOCK(pkit_ctl, caf::id_block::pkit_net::end)

  CAF_ADD_ATOM(pkit_ctl, pkit::tool, ctl_request_atom, "ctlrequest")

CAF_END_TYPE_ID_BLOCK(pkit_ctl)

namespace pkit::tool {

/// The published interface: (ctl_request_atom, request line) -> reply line.
using remote_control_actor = caf::typed_actor<caf::replies_to<ctl_request_atom, std::string>::with<std::string>>;

/// Registers the types above in `cfg` (after pkit::net::prepare_links, which registers
/// pkit's and pkit::net's). Both ends call it before their actor system exists.
void remote_control_init(caf::actor_system_config& cfg);

}  // namespace pkit::tool
