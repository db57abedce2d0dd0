#pragma once

// Delayed messages that do not keep their receiver alive.
//
// CAF 0.17's delayed_send holds a strong reference to its receiver until the message is
// due, and cannot be cancelled: a process actor with a pending 10 s ready deadline or 5 s
// stop escalation would live (and hold up actor_system shutdown) that long after it was
// done. Instead the delayed message goes to a hidden relay actor (ignored when the
// system waits for its actors), which forwards it only if the receiver still exists.

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>
#include <caf/make_message.hpp>
#include <caf/send.hpp>

#include <chrono>

namespace pkit::actors::detail {

/// Spawns a relay (hidden, stateless). One per actor that needs timers.
caf::actor make_timer_relay(caf::actor_system& system);

/// Delivers `xs...` to `target` after `delay`, unless `target` is gone by then.
template <class... Ts>
void delayed_weak_send(const caf::actor& relay, const caf::actor_addr& target,
                       std::chrono::milliseconds delay, Ts&&... xs) {
  caf::delayed_anon_send(relay, delay, target, caf::make_message(std::forward<Ts>(xs)...));
}

}  // namespace pkit::actors::detail
