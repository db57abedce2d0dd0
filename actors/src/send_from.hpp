#pragma once

// caf::anon_send, but enqueued through the sending actor's worker.
//
// caf::anon_send has no execution unit, so CAF's scheduler sees every such message as
// coming from outside: under pkit's scheduler (handoff_sharing.hpp) that wakes another
// worker for each link of a chain. Passing the sender's worker lets the receiver run next
// on it. The message stays anonymous: no reply is routed back to the sender.

#include <caf/abstract_actor.hpp>
#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/make_message.hpp>
#include <caf/message_id.hpp>

#include <utility>

namespace pkit::actors::detail {

/// Sends `xs...` to `dest` (nothing if `dest` is invalid). `self` is the running actor;
/// call only from its handlers (its worker is the current thread's).
template <class Self, class... Ts>
void anon_send_from(Self* self, const caf::actor& dest, Ts&&... xs) {
  if (!dest) return;
  caf::actor_cast<caf::abstract_actor*>(dest)->enqueue(nullptr, caf::make_message_id(),
                                                        caf::make_message(std::forward<Ts>(xs)...),
                                                        self->context());
}

/// As anon_send_from, but with `self` as the message's sender, so the receiver can tell
/// who sent it: a supervisor accepts its children's reports only from the child's own
/// actor (supervisor_protocol.hpp). Still a plain message: nothing is replied.
template <class Self, class... Ts>
void send_from(Self* self, const caf::actor& dest, Ts&&... xs) {
  if (!dest) return;
  caf::actor_cast<caf::abstract_actor*>(dest)->enqueue(caf::strong_actor_ptr{self->ctrl()}, caf::make_message_id(),
                                                        caf::make_message(std::forward<Ts>(xs)...),
                                                        self->context());
}

}  // namespace pkit::actors::detail
