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
#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <chrono>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

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

/// Ends `actors` (user_shutdown: a supervisor stops its children first) and waits for
/// their ends, `limit` in all; those still alive then are killed, so that the system's
/// destructor that follows cannot wait for ever. Returns how many had to be killed. For
/// teardown that must know the actors gone before what they use (a node_directory) goes.
inline std::size_t end_and_wait(caf::actor_system& sys, const std::vector<caf::actor>& actors,
                                std::chrono::milliseconds limit) {
  if (actors.empty()) return 0;
  caf::scoped_actor waiter{sys};
  std::size_t alive = 0;
  for (const auto& a : actors) {
    if (!a) continue;
    waiter->monitor(a);  // an actor already gone: its down message comes at once
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    ++alive;
  }
  const auto until = std::chrono::steady_clock::now() + limit;
  while (alive > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) break;
    bool timed_out = false;
    waiter->receive([&](caf::down_msg&) { --alive; }, caf::after(left) >> [&] { timed_out = true; });
    if (timed_out) break;
  }
  if (alive > 0)
    for (const auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::kill);
  return alive;
}

}  // namespace pkit_test_common
