// The observer a relay names to a node in a spawn: see directory_protocol.hpp. An actor
// of its own, not the relay, so that giving up on one spawn (no answer in time, a stop
// while placing) can end what the node spawned for it — the node's agent stops the
// children of an observer that goes down — while the relay lives on for the next attempt.

#include "directory_protocol.hpp"

#include <pkit/actors/messages.hpp>

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <string>

namespace pkit::net::detail {
namespace {

using namespace pkit::actors;

// It takes no requests: a node's check whether its relay still exists gets a refusal,
// an answer all the same (as the relay itself gives a peer).
caf::behavior observer_impl(caf::event_based_actor* self, caf::actor_addr relay) {
  self->monitor(caf::actor_cast<caf::actor>(relay));
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  // With the sender kept: the relay takes reports from its remote process actor only.
  auto pass = [self, relay](auto... xs) {
    auto to = caf::actor_cast<caf::actor>(relay);
    if (to && self->current_sender())
      caf::send_as(caf::actor_cast<caf::actor>(self->current_sender()), to, xs...);
  };
  return {
      [pass](child_started_atom a, std::string& id, std::uint64_t inc, std::int32_t pid) { pass(a, id, inc, pid); },
      [pass](child_ready_atom a, std::string& id, std::uint64_t inc, std::int32_t pid) { pass(a, id, inc, pid); },
      [pass](child_exited_atom a, std::string& id, std::uint64_t inc, pkit::exit_status x) { pass(a, id, inc, x); },
      [](status_atom) -> caf::result<process_info> {
        return caf::make_error(caf::sec::unexpected_message, "a remote worker takes requests from this machine only");
      },
  };
}

}  // namespace

caf::actor spawn_placement_observer(caf::actor_system& sys, caf::actor_addr relay) {
  return sys.spawn(observer_impl, std::move(relay));
}

}  // namespace pkit::net::detail
