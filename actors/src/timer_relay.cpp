#include "timer_relay.hpp"

#include "send_from.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/spawn_options.hpp>

namespace pkit::actors::detail {

caf::actor make_timer_relay(caf::actor_system& system) {
  // The unused argument is deliberate: CAF 0.17.6 dereferences a null argument tuple when
  // an actor function is spawned without arguments (UBSan reports it in init_fun_factory).
  return system.spawn<caf::hidden>([](caf::event_based_actor* self, int) -> caf::behavior {
    return {
        [self](const caf::actor_addr& target, caf::message& msg) {
          if (auto h = caf::actor_cast<caf::actor>(target)) anon_send_from(self, h, std::move(msg));
        },
    };
  }, 0);
}

}  // namespace pkit::actors::detail
