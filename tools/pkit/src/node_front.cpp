// The front `pkit node` publishes, and the taps between its process actors and the
// controllers' relays. See node_front.hpp for why they exist.

#include <pkit/tool/node_front.hpp>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <utility>
#include <vector>

namespace pkit::tool {
namespace {
// The tap's own timer: asks whether its relay still exists. A type CAF is never told of,
// so only this process can send one: the tap is exposed (as the sender of its checks),
// and a peer's forged check would start one more endless chain of requests each time.
struct relay_check_due {};
}  // namespace
}  // namespace pkit::tool

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::tool::relay_check_due)

namespace pkit::tool {

bool node_children::add(const pkit::actors::process_actor& p) {
  std::lock_guard lock(mutex_);
  if (draining_) return false;
  live_.push_back(p);
  return true;
}

void node_children::remove(const caf::actor_addr& a) {
  std::lock_guard lock(mutex_);
  std::erase_if(live_, [&](const pkit::actors::process_actor& p) { return p.address() == a; });
}

std::vector<pkit::actors::process_actor> node_children::drain() {
  std::lock_guard lock(mutex_);
  draining_ = true;
  return live_;
}

void node_children::own(const caf::actor_addr& tap, const caf::node_id& controller) {
  std::lock_guard lock(mutex_);
  owners_[tap] = controller;
}

void node_children::disown(const caf::actor_addr& tap) {
  std::lock_guard lock(mutex_);
  owners_.erase(tap);
}

caf::node_id node_children::controller_of(const caf::actor& relay) {
  std::lock_guard lock(mutex_);
  auto it = owners_.find(relay.address());
  return it != owners_.end() ? it->second : relay.node();
}

namespace {

using namespace pkit::actors;
using pkit::net::node_actor;

/// The agent is a local actor: it answers a spawn once the child started (validation, a
/// spawn, a clone and exec; the ready timeout of a spec that notifies readiness). Bounded
/// anyway beyond that, so that no promise of the front can stay open forever.
constexpr auto agent_margin = std::chrono::seconds(30);
// hello and list: the agent answers at once (its own state); a bound for a wedged one.
const caf::duration agent_answer_bound{std::chrono::seconds(30)};

caf::duration spawn_bound(const process_spec& spec) {
  const auto wait = pkit::actors::start_wait_ms(spec);
  if (!wait) return caf::duration{caf::infinite};
  // The agent first waits for an orphaned previous run of the same id to stop: at most
  // this spec's stop timeout (validate() bounds it) plus its own margin.
  const std::int64_t previous_stop = std::max<std::int64_t>(spec.stop_timeout_ms, 0);
  return caf::duration{std::chrono::milliseconds(*wait) + std::chrono::milliseconds(previous_stop) + agent_margin};
}

/// One line on stderr, written at once (the node's operator reads it; tests wait for it).
void say(const std::string& line) {
  std::string out = line + "\n";
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

/// The spawn id as the peer gave it, made safe for one log line (printable ASCII only).
std::string shown(std::string id) {
  if (id.size() > 64) id.resize(64);
  for (char& c : id)
    if (c < 0x20 || c > 0x7e) c = '?';
  return id;
}

// An exit signal is obeyed from this process only: the front is reached by controllers
// by design, and a tap's address crosses the wire as the sender of what it forwards, so a
// peer may send either one — anonymously, as one of its own actors, or posing as an
// exposed actor of this node (genuine_local_sender); and the exit message's own `source`
// is whatever the peer wrote. Every exit pkit node sends them comes from an actor never
// exposed (node_command.cpp: end_service; the front's courier); any other is ignored, and
// said. CAF lets no actor ignore `kill`: a front a peer kills ends, and `pkit node` then
// stops rather than listen serving no one.
//
// An error message is a peer's weapon too: CAF 0.17.6 ends an actor on any error message
// it did not ask for (its default error handler), and a peer can send one — or make an
// actor here answer a forged request with one. Ignored, and said.
template <class Self>
void obey_peers_in_nothing(Self* self, const std::string& node_name) {
  // CAF's default prints a message nobody handles, peer text unescaped, on stdout.
  self->set_default_handler(caf::drop);
  self->set_error_handler([node_name](caf::error& e) {
    say("pkit node " + node_name + ": ignored an error message nobody asked for (" + shown(to_string(e)) + ")");
  });
  self->set_exit_handler([self, node_name](caf::exit_msg& em) {
    const auto& from = self->current_sender();
    if (!pkit::net::genuine_local_sender(self->system(), from)) {
      say("pkit node " + node_name + ": ignored an exit signal " + (from ? "from a peer" : "sent anonymously") + " (" +
          shown(to_string(em.reason)) + ")");
      return;
    }
    self->quit(std::move(em.reason));
  });
}

struct tap_state {
  caf::actor relay;
  std::chrono::milliseconds check_every{0};
  std::string id;
  guardian* keeper = nullptr;
  std::string node_name;
  caf::actor_addr front;  ///< who may name the process actor: the courier of the front that spawned it
  caf::actor_addr proc;
  /// The pid (and process group) of each run, for unwatch at its exit.
  std::map<std::uint64_t, std::int32_t> pids;
  /// Reports that came before the front handed over the process actor (the agent starts
  /// it before it answers the spawn); replayed once it is known. Sealed ones only
  /// (take_report): no peer can add to them.
  std::vector<std::function<void()>> early;
  /// Only the first run's started, ready and exited can come first.
  static constexpr std::size_t max_early = 8;
  static inline const char* name = "pkit.node.tap";
};

caf::actor_addr sender_of(caf::stateful_actor<tap_state>* self) {
  return caf::actor_cast<caf::actor_addr>(self->current_sender());
}

caf::actor as_actor(const caf::actor_addr& a) { return caf::actor_cast<caf::actor>(a); }

// Whether the controller still has the relay. Its proxy here may outlive it: when the
// controller reconnects before this node noticed the old link dead, CAF keeps the new
// link as the controller's route and never kills the old proxies (review 11 #1), so the
// down message that stops the child never comes. A request to a relay the controller no
// longer has is bounced with remote_link_unreachable: the tap then ends as if the relay
// had gone down. A live relay answers (with a refusal: it takes requests from its own
// machine only) — either way an answer; no answer at all is the heartbeats' business.
void check_relay(caf::stateful_actor<tap_state>* self) {
  auto& st = self->state;
  self->request(st.relay, st.check_every, pkit::actors::status_atom_v)
      .then([](pkit::actors::process_info&) {},
            [self](caf::error& e) {
              if (e != caf::exit_reason::remote_link_unreachable) return;
              say("pkit node " + self->state.node_name + ": controller no longer has the relay of '" +
                  shown(self->state.id) + "': stopping its child");
              self->quit(caf::exit_reason::remote_link_unreachable);
            });
  self->delayed_send(self, st.check_every, relay_check_due{});
}


/// Runs a report of the tap's child, or holds it while the process actor is not known yet
/// (the tap forwards reports as it; see tap_state::early). Only sealed reports get here
/// (node_config::sealed_local_reports): no peer can send one.
void take_report(caf::stateful_actor<tap_state>* self, std::function<void()> report) {
  auto& s = self->state;
  if (!s.proc) {
    if (s.early.size() < tap_state::max_early) s.early.push_back(std::move(report));
    return;
  }
  report();
}

/// Forwards a process actor's reports to the controller's relay, and unregisters each
/// run's process group from the guardian at its exit (registered as the child was spawned:
/// node_config::on_child_started). A run whose child_started never reached the tap (a
/// failed spawn, the tap gone first) stays registered until the guardian's once-a-second
/// sweep finds its group empty (guardian.hpp). Ends with the relay (the agent then stops
/// the children it spawned for this tap) or with its process actor.
///
/// The tap's address crosses the wire (as the sender of its relay checks), so any peer
/// can send it messages: it takes its process actor only from the front's courier, and
/// reports only sealed (sealed_report: no peer can send one; a peer can pose as the
/// process actor, whose address it was handed) — a forged report would reach the
/// controller as that child's (a false child_exited: the supervisor starts a second
/// instance), and would unregister a group from the guardian. Plain reports, which only a
/// peer sends it, are dropped. It forwards them as the process actor the controller was
/// given (send_as): the controller's relay accepts reports from that remote actor only.
caf::behavior tap_impl(caf::stateful_actor<tap_state>* self, caf::actor relay, std::string id, guardian* keeper,
                       std::string node_name, caf::actor_addr front, std::chrono::milliseconds check_every) {
  auto& st = self->state;
  st.front = std::move(front);
  st.check_every = check_every;
  st.relay = std::move(relay);
  st.id = std::move(id);
  st.keeper = keeper;
  st.node_name = std::move(node_name);
  self->monitor(st.relay);
  obey_peers_in_nothing(self, self->state.node_name);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& s = self->state;
    if (dm.source == s.proc) {
      self->quit();
      return;
    }
    if (dm.source != s.relay.address()) return;
    const bool lost = dm.reason == caf::exit_reason::remote_link_unreachable;
    say("pkit node " + s.node_name + ": " + (lost ? "controller lost" : "controller ended") + " for '" +
        shown(s.id) + "' (" + to_string(dm.reason) + "): stopping its child");
    self->quit(dm.reason);
  });
  return {
      [self](relay_check_due) { check_relay(self); },
      [self](process_actor& p) {
        auto& s = self->state;
        if (sender_of(self) != s.front || s.proc) return;
        s.proc = p.address();
        self->monitor(p);
        // Exposed from here on (its checks name it as their sender).
        if (s.check_every.count() > 0) self->delayed_send(self, s.check_every, relay_check_due{});
        auto early = std::move(s.early);
        s.early.clear();
        for (auto& report : early) report();
      },
      [self](pkit::net::sealed_report, child_started_atom a, std::string& id, std::uint64_t inc, std::int32_t pid) {
        take_report(self, [self, a, id, inc, pid] {
          auto& s = self->state;
          // Its group was registered with the guardian as the child came to exist
          // (node_config::on_child_started, node_command.cpp), not two hops later here.
          s.pids[inc] = pid;
          caf::send_as(as_actor(s.proc), s.relay, a, id, inc, pid);
        });
      },
      [self](pkit::net::sealed_report, child_ready_atom a, std::string& id, std::uint64_t inc, std::int32_t pid) {
        take_report(self, [self, a, id, inc, pid] {
          caf::send_as(as_actor(self->state.proc), self->state.relay, a, id, inc, pid);
        });
      },
      [self](pkit::net::sealed_report, child_exited_atom a, std::string& id, std::uint64_t inc, pkit::exit_status st) {
        take_report(self, [self, a, id, inc, st] {
          auto& s = self->state;
          if (auto it = s.pids.find(inc); it != s.pids.end()) {
            if (s.keeper != nullptr && it->second > 1) s.keeper->unwatch(it->second);
            s.pids.erase(it);
          }
          caf::send_as(as_actor(s.proc), s.relay, a, id, inc, st);
        });
      },
  };
}

struct front_state {
  node_actor agent;
  /// Never exposed to the network, so no peer can pose as it (genuine_local_sender): the
  /// front's word to its taps — their process actor, their end — goes as the courier's.
  caf::actor courier;
  std::shared_ptr<node_children> children;
  guardian* keeper = nullptr;
  std::string node_name;
  std::chrono::milliseconds relay_check{0};  ///< how often each tap checks its relay (0: never)
  /// Each live process actor's tap. Held here because nothing else holds a tap strongly
  /// (its process actor and the agent keep only its address): an actor nobody holds ends,
  /// and the agent would take that for the controller's end and stop the child.
  std::map<caf::actor_addr, caf::actor> taps;
  static inline const char* name = "pkit.node.front";
};

using front_pointer = node_actor::stateful_pointer<front_state>;

// Ends `tap` on the front's word (the courier's: a tap obeys no exposed sender).
void end_tap(front_pointer self, const caf::actor& tap) {
  const auto& courier = self->state.courier;
  caf::send_as(courier, tap, caf::exit_msg{courier.address(), caf::exit_reason::user_shutdown});
}

// The agent's answer, relayed by the front — never a delegate: the agent would answer on
// the wire itself, and a peer that knows an actor can address it (CAF registers every
// local actor whose message crosses a link, its id in the reply): a peer's exit message
// then ended the agent and every child of every controller.
template <class... Rs, class... Ts>
caf::result<Rs...> forward(front_pointer self, caf::duration bound, Ts&&... xs) {
  auto rp = self->make_response_promise<Rs...>();
  self->request(self->state.agent, bound, std::forward<Ts>(xs)...)
      .then([rp](Rs&... rs) mutable { rp.deliver(std::move(rs)...); },
            [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

caf::result<process_actor, std::int32_t> spawn_through_tap(front_pointer self, std::string& id, process_spec& spec,
                                                           caf::actor& relay) {
  auto& st = self->state;
  // No relay, or one that is not the requester's (an actor of this node would never end,
  // nor would the children tied to it): the agent refuses (node_relay_missing); nothing
  // to tap. The tap the agent is then given is this node's own, never exposed.
  if (!relay || relay.node() == self->node() || !pkit::net::acceptable_relay(self->system(), self->current_sender(), relay)) {
    const auto bound = spawn_bound(spec);
    return forward<process_actor, std::int32_t>(self, bound, pkit::net::node_spawn_atom_v, std::move(id),
                                                std::move(spec), relay);
  }
  caf::actor tap = self->spawn(tap_impl, relay, id, st.keeper, st.node_name, st.courier.address(), st.relay_check);
  st.children->own(tap.address(), relay.node());  // before the agent makes the child's guard
  auto rp = self->make_response_promise<process_actor, std::int32_t>();
  // The agent's answer comes once the child started: its own bound (the spec's ready
  // timeout) plus the front's slack, or never for a spec that waits for ever.
  self->request(st.agent, spawn_bound(spec), pkit::net::node_spawn_atom_v, std::move(id), std::move(spec), tap)
      .then(
          [self, tap, rp](process_actor& p, std::int32_t pid) mutable {
            if (!self->state.children->add(p)) {
              // The node is stopping: this child must not start. (As the courier: the
              // guard obeys no exposed sender.)
              const auto& courier = self->state.courier;
              caf::send_as(courier, caf::actor_cast<caf::actor>(p),
                           caf::exit_msg{courier.address(), caf::exit_reason::user_shutdown});
              end_tap(self, tap);
              self->state.children->disown(tap.address());
              rp.deliver(caf::make_error(caf::sec::request_receiver_down));
              return;
            }
            self->monitor(p);
            self->state.taps.emplace(p.address(), tap);
            caf::send_as(self->state.courier, tap, p);  // the only sender the tap takes it from
            rp.deliver(std::move(p), pid);
          },
          [self, tap, rp](caf::error& e) mutable {
            end_tap(self, tap);
            self->state.children->disown(tap.address());
            rp.deliver(std::move(e));
          });
  return rp;
}

node_actor::behavior_type front_impl(front_pointer self, node_actor agent, std::shared_ptr<node_children> children,
                                     guardian* keeper, std::string node_name, std::chrono::milliseconds relay_check) {
  auto& st = self->state;
  st.relay_check = relay_check;
  st.agent = std::move(agent);
  st.children = std::move(children);
  st.keeper = keeper;
  st.node_name = std::move(node_name);
  // Linked: it ends with the front. (An actor function needs an argument in CAF 0.17.6.)
  st.courier = self->spawn<caf::linked>([](caf::event_based_actor*, int) -> caf::behavior { return {[](int) {}}; }, 0);
  obey_peers_in_nothing(self, self->state.node_name);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    st.children->remove(dm.source);
    if (auto it = st.taps.find(dm.source); it != st.taps.end()) {
      st.children->disown(it->second.address());
      st.taps.erase(it);
    }
  });
  return {
      [self](pkit::net::node_hello_atom a, std::uint32_t protocol) -> caf::result<pkit::net::node_info> {
        return forward<pkit::net::node_info>(self, agent_answer_bound, a, protocol);
      },
      [self](pkit::net::node_spawn_atom, std::string& id, process_spec& spec,
             caf::actor& relay) -> caf::result<process_actor, std::int32_t> {
        return spawn_through_tap(self, id, spec, relay);
      },
      [self](pkit::net::node_list_atom a) -> caf::result<std::vector<pkit::net::node_child_info>> {
        return forward<std::vector<pkit::net::node_child_info>>(self, agent_answer_bound, a);
      },
  };
}

}  // namespace

node_actor spawn_node_front(caf::actor_system& sys, node_actor agent, std::shared_ptr<node_children> children,
                            guardian* keeper, std::string node_name, std::chrono::milliseconds relay_check) {
  return sys.spawn(front_impl, std::move(agent), std::move(children), keeper, std::move(node_name), relay_check);
}

}  // namespace pkit::tool
