#include "timer_relay.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/spawn_options.hpp>

namespace pkit::actors::detail {

caf::actor make_timer_relay(caf::actor_system& system) {
  return system.spawn<caf::hidden>([]() -> caf::behavior {
    return {
        [](const caf::actor_addr& target, caf::message& msg) {
          if (auto h = caf::actor_cast<caf::actor>(target)) caf::anon_send(h, std::move(msg));
        },
    };
  });
}

}  // namespace pkit::actors::detail
