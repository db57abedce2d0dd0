// The guard in front of each process actor a node agent hands out (child_guard.hpp).

#include "child_guard.hpp"

#include <pkit/net/node_agent.hpp>

#include "../send_from.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_response_promise.hpp>

#include <utility>

namespace pkit::net::detail {
namespace {

using namespace pkit::actors;

struct guard_state {
  caf::actor relay;
  caf::actor_addr agent;
  std::shared_ptr<const guard_gate> gate;
  process_actor real;  ///< empty until the agent names it
  static inline const char* name = "pkit.node.guard";
};

using guard_pointer = caf::stateful_actor<guard_state>*;

bool from(guard_pointer self, const caf::actor_addr& who) {
  return who && caf::actor_cast<caf::actor_addr>(self->current_sender()) == who;
}

/// Whether the request under way may act on the child: it comes from the controller that
/// asked for it (an actor of the relay's node) or from this process itself. The guard's
/// address crosses the wire, and CAF delivers whatever a peer sends to an address it
/// knows or guesses (actor ids are small and sequential): before, any peer — another
/// controller, or one sending anonymously — could stop, kill, signal or start another
/// controller's child.
bool permitted(guard_pointer self) {
  const auto& from = self->current_sender();
  if (!from) return false;
  if (from->node() != self->node()) return from->node() == self->state.gate->controller;
  // Of this node: surely so only if never exposed (a peer can pose as an exposed one).
  return genuine_local_sender(self->system(), from);
}

caf::error not_permitted() {
  return to_caf_error(error{make_error_code(errc::node_not_permitted), "request",
                            "only the controller that asked for this child may act on it"});
}

/// Why a start must not go through now, if it must not.
std::optional<error> start_refusal(const guard_state& st) {
  if (st.gate->node_stopping && st.gate->node_stopping->load())
    return error{make_error_code(errc::node_shutting_down), "start",
                 "this node is stopping: it stops its children and starts none"};
  if (st.gate->retired.load())
    return error{make_error_code(errc::node_child_retired), "start",
                 "this child's controller was lost: the node is stopping it"};
  return std::nullopt;
}

/// Asks the real process actor and answers with what it answered, as the guard. No
/// deadline of its own: the real actor is local and bounds each request itself (join
/// waits for the run's end by design); its end answers what is pending.
template <class T, class... Ts>
caf::result<T> forward(guard_pointer self, Ts... xs) {
  if (!permitted(self)) return not_permitted();
  if (!self->state.real)
    return caf::make_error(caf::sec::request_receiver_down);
  auto rp = self->make_response_promise<T>();
  self->request(self->state.real, caf::duration{caf::infinite}, xs...)
      .then([rp](T& x) mutable { rp.deliver(std::move(x)); },
            [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

/// Passes a report of the real actor on to the relay, with the guard as its sender;
/// sealed when the gate says so (guard_gate::sealed_reports).
template <class... Ts>
void report(guard_pointer self, Ts&&... xs) {
  auto& st = self->state;
  if (!st.real || !from(self, st.real.address())) return;
  if (st.gate->sealed_reports)
    pkit::actors::detail::send_from(self, st.relay, sealed_report{}, std::forward<Ts>(xs)...);
  else
    pkit::actors::detail::send_from(self, st.relay, std::forward<Ts>(xs)...);
}

caf::behavior guard_impl(guard_pointer self, caf::actor relay, caf::actor_addr agent,
                         std::shared_ptr<const guard_gate> gate) {
  auto& st = self->state;
  st.relay = std::move(relay);
  st.agent = std::move(agent);
  st.gate = std::move(gate);
  self->set_down_handler([self](caf::down_msg& dm) {
    if (self->state.real && dm.source == self->state.real.address())
      self->quit(dm.reason);
  });
  // Its address crosses the wire: an error message a peer sends it (or makes an actor
  // here answer it with) would end it by CAF's default, and its child with it.
  self->set_error_handler([](caf::error&) {});
  // CAF's default prints a message nobody handles, peer text unescaped, on stdout.
  self->set_default_handler(caf::drop);
  // Its end stops its child (the agent retires it): only the controller that asked for
  // it (its relay's exit as it ends) and this process may end it. Before, any peer's exit
  // signal — anonymous, to a guessed id — stopped another controller's child. `kill`
  // cannot be refused (CAF): the README names that gap.
  self->set_exit_handler([self](caf::exit_msg& em) {
    if (permitted(self)) self->quit(std::move(em.reason));
  });
  return {
      [self](process_actor& p) {
        auto& s = self->state;
        if (s.real || !from(self, s.agent) || !p)
          return;
        s.real = std::move(p);
        self->monitor(s.real);
      },
      [self](start_atom a) -> caf::result<std::int32_t> {
        if (!permitted(self)) return not_permitted();
        if (auto no = start_refusal(self->state))
          return to_caf_error(*no);
        return forward<std::int32_t>(self, a);
      },
      [self](stop_atom a) -> caf::result<exit_status> { return forward<exit_status>(self, a); },
      [self](kill_atom a) -> caf::result<exit_status> { return forward<exit_status>(self, a); },
      [self](signal_atom a, std::int32_t n) -> caf::result<caf::ok_atom> {
        return forward<caf::ok_atom>(self, a, n);
      },
      [self](join_atom a) -> caf::result<exit_status> { return forward<exit_status>(self, a); },
      [self](status_atom a) -> caf::result<process_info> { return forward<process_info>(self, a); },
      [self](child_started_atom a, std::string& id, std::uint64_t inc, std::int32_t pid) {
        report(self, a, std::move(id), inc, pid);
      },
      [self](child_ready_atom a, std::string& id, std::uint64_t inc, std::int32_t pid) {
        report(self, a, std::move(id), inc, pid);
      },
      [self](child_exited_atom a, std::string& id, std::uint64_t inc, pkit::exit_status x) {
        report(self, a, std::move(id), inc, x);
      },
  };
}

}  // namespace

caf::actor spawn_child_guard(caf::actor_system& sys, caf::actor relay, caf::actor_addr agent,
                             std::shared_ptr<const guard_gate> gate) {
  return sys.spawn(guard_impl, std::move(relay), std::move(agent), std::move(gate));
}

}  // namespace pkit::net::detail
