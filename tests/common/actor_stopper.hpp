#pragma once

// Ends an actor however the scope that holds the guard ends. A fatal check (a
// BOOST_TEST_REQUIRE, a BOOST_TEST_FAIL, a throw) before a case's own shutdown would
// otherwise leave the actor running, and its actor system's destructor waits for every
// actor: the case would hang until CTest's timeout instead of failing. Declare the guard
// after the actor system (it must run before the system is destroyed) and after whatever
// the actor uses (a directory, a scoped actor it reports to). A second exit, after the
// case's own, is harmless; a null handle is ignored. Header-only.

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include <type_traits>
#include <utility>

namespace pkit_test_common {

struct actor_stopper {
  caf::actor actor;
  caf::exit_reason reason = caf::exit_reason::user_shutdown;

  actor_stopper() = default;
  /// Any handle (caf::actor, a typed actor, ...).
  template <class Handle, class = std::enable_if_t<!std::is_same_v<std::decay_t<Handle>, actor_stopper>>>
  explicit actor_stopper(const Handle& handle, caf::exit_reason why = caf::exit_reason::user_shutdown)
      : actor(caf::actor_cast<caf::actor>(handle)), reason(why) {}
  actor_stopper(actor_stopper&& other) noexcept
      : actor(std::exchange(other.actor, caf::actor{})), reason(other.reason) {}
  actor_stopper(const actor_stopper&) = delete;
  actor_stopper& operator=(const actor_stopper&) = delete;
  actor_stopper& operator=(actor_stopper&&) = delete;
  ~actor_stopper() { caf::anon_send_exit(actor, reason); }
};

}  // namespace pkit_test_common
