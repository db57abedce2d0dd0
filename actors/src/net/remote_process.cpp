// The relay of a remote worker: a local actor with the process_actor interface that
// places its child on a node (through the directory), forwards every request to the
// process actor the node's agent spawned, and passes that actor's reports on to the
// supervisor as its own (placement.hpp). It is the supervisor's only view of the node:
// the supervisor's sender check, its incarnations and its restarts stay as for a local
// worker, and a node never gets a supervisor's handle (ISSUE11_DESIGN §4).

#include <pkit/actors/error.hpp>
#include <pkit/net/node_agent.hpp>

#include "directory_protocol.hpp"
#include "../send_from.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <functional>
#include <map>
#include <utility>
#include <vector>

namespace pkit::net::detail {
namespace {

using namespace pkit::actors;
using actor_error = pkit::actors::error;

// The relay's own handle: the process actor interface plus the reports of the remote
// process actor, accepted from that actor only.
using relay_actor =
    process_actor::extend<caf::reacts_to<child_started_atom, std::string, std::uint64_t, std::int32_t>,
                          caf::reacts_to<child_ready_atom, std::string, std::uint64_t, std::int32_t>,
                          caf::reacts_to<child_exited_atom, std::string, std::uint64_t, exit_status>>;

struct relay_state {
  caf::actor directory;
  placement_timing timing;
  std::vector<std::string> nodes;
  process_spec spec;
  caf::actor_addr observer;  // by address, as a process actor keeps its observer
  std::string id;
  std::string node;      // where the child was placed
  node_actor agent;      // that node's agent
  process_actor remote;  // the process actor there; empty until placed, and once lost
  caf::actor observer_there;  // what the node reports to for this placement (attempt_impl)
  bool placing = false;
  bool abandoned = false;  // stopped while acquiring a node: the acquisition's result is dropped
  std::uint64_t spawn_key = 0;  // the spawn under way (its on_lost key), 0 when none
  caf::typed_response_promise<std::int32_t> spawn_rp;  // the start it answers
  // Reports that came while the spawn's answer was still on its way (the node starts the
  // child before it answers; the reports take another path), with their sender: replayed,
  // those of the process actor the answer names only. Only the first run's started,
  // ready and exited can come first: more is a node (or peer) that floods.
  struct early_report {
    caf::actor_addr from;
    bool before_reply;  // child_started: the supervisor gets it before the start's answer
    std::function<void()> run;
  };
  std::vector<early_report> early;
  bool early_overflow = false;
  static constexpr std::size_t max_early = 8;
  process_info known;    // what the remote side last told, for answers once it is lost
  // What each request still waiting for the remote answers when the node is lost.
  std::uint64_t next_key = 0;
  std::map<std::uint64_t, std::function<void()>> on_lost;

  static inline const char* name = "pkit.remote_process";

  // However the relay ends (the supervisor discarded it, or ended), its child ends with
  // it: its observer ends here, and the node — which watches that observer as the child's
  // relay — stops the child. (An exit to the remote process actor would be ignored: it
  // obeys only its controller's actors, and a destructor has no sender to give.)
  ~relay_state() {
    if (observer_there) caf::anon_send_exit(observer_there, caf::exit_reason::user_shutdown);
  }
};

using self_pointer = relay_actor::stateful_pointer<relay_state>;

template <class... Ts>
void tell(self_pointer self, Ts&&... xs) {
  // With the relay as the sender: the supervisor accepts reports from its child's actor only.
  pkit::actors::detail::send_from(self, caf::actor_cast<caf::actor>(self->state.observer), std::forward<Ts>(xs)...);
}

bool from_remote(self_pointer self) {
  const auto& st = self->state;
  return st.remote && self->current_sender() &&
         caf::actor_cast<caf::actor_addr>(self->current_sender()) == st.remote.address();
}

// Whether the current request comes from an actor of this system that was never exposed
// to the network. The relay's handle crosses the wire (the agent needs it), so any
// connected peer can address it, and CAF 0.17.6 lets a peer name any *registered* actor
// (one whose handle was ever serialized) as the sender of a routed message: only a local
// actor outside the registry — the supervisor, a tool's own actor — cannot be forged. A
// node must not stop, kill or signal another node's children through their relays.
bool from_local_owner(self_pointer self) {
  const auto& sender = self->current_sender();
  return sender && sender->node() == self->node() && self->system().registry().get(sender->id()) == nullptr;
}

caf::error not_allowed() {
  return caf::make_error(caf::sec::unexpected_message, "a remote worker takes requests from this machine only");
}

caf::error node_down(const relay_state& st, const std::string& why) {
  return caf::make_error(actor_error::node_down, "node '" + st.node + "': " + why);
}

// The run is over as far as this side can know: what was pending is answered from the
// relay's own knowledge, and the relay ends with `reason` — node_down, which the
// supervisor reports as the run's end with a lost status. `link_lost`: the directory
// marks the node down (unless it has reconnected meanwhile).
void lose(self_pointer self, caf::error reason, bool link_lost) {
  auto& st = self->state;
  if (link_lost && st.agent) pkit::actors::detail::anon_send_from(self, st.directory, dir_lost{st.node, st.agent.address()});
  st.known.state = process_state::exited;
  st.known.pid = 0;
  st.known.has_last_exit = true;
  st.known.last_exit = exit_status::lost();
  auto pending = std::move(st.on_lost);
  st.on_lost.clear();
  for (auto& kv : pending) kv.second();
  st.remote = nullptr;  // nothing left there to stop
  self->quit(std::move(reason));
}

caf::duration bounded(std::int64_t base_ms, std::chrono::milliseconds margin) {
  if (base_ms < 0) return caf::duration{caf::infinite};  // the spec waits for ever
  return caf::duration{std::chrono::milliseconds(base_ms) + margin};
}

// Forwards a request to the remote process actor, its answer to `rp`; `lost` answers
// `rp` if the node is lost first. A remote that misses the deadline is a node that does
// not answer: lost.
template <class T, class... Ts>
caf::typed_response_promise<T> forward(self_pointer self, caf::typed_response_promise<T> rp, caf::duration timeout,
                                       std::function<void(caf::typed_response_promise<T>&)> lost, Ts... xs) {
  auto& st = self->state;
  const std::uint64_t key = ++st.next_key;
  st.on_lost.emplace(key, [rp, lost]() mutable { lost(rp); });
  self->request(st.remote, timeout, xs...)
      .then(
          [self, rp, key](T& x) mutable {
            if (self->state.on_lost.erase(key) != 0) rp.deliver(std::move(x));
          },
          [self, rp, key](caf::error& err) mutable {
            auto& st = self->state;
            if (st.on_lost.count(key) == 0) return;
            if (err == caf::sec::request_timeout)
              return lose(self, node_down(st, "no answer within its deadline"), true);
            // The node stops (or stops this child for good, its link having been lost):
            // nothing runs there for this relay any more — as a lost node, placed again.
            // Only a start is refused so: it fails with why, not as "lost while starting".
            if (auto refusal = net_error_of(err);
                refusal && (refusal->code == errc::node_shutting_down || refusal->code == errc::node_child_retired)) {
              st.on_lost.erase(key);
              caf::error why = node_down(st, refusal->peer_message());
              rp.deliver(why);
              return lose(self, std::move(why), refusal->code == errc::node_shutting_down);
            }
            st.on_lost.erase(key);
            rp.deliver(std::move(err));
          });
  return rp;
}

caf::typed_response_promise<std::int32_t> forward_start(self_pointer self, caf::typed_response_promise<std::int32_t> rp) {
  const process_spec& p = self->state.spec;
  const bool waits = p.notify_fd >= 0 || p.notify_socket;
  const auto timeout = bounded(waits ? p.ready_timeout_ms : 0, self->state.timing.request_margin);
  return forward<std::int32_t>(
      self, std::move(rp), timeout,
      [self](caf::typed_response_promise<std::int32_t>& r) { r.deliver(node_down(self->state, "lost while starting")); },
      start_atom_v);
}

std::function<void(caf::typed_response_promise<exit_status>&)> lost_status() {
  return [](caf::typed_response_promise<exit_status>& rp) { rp.deliver(exit_status::lost()); };
}

// Ends the current placement's observer: the node ends what it spawned for it.
void end_attempt(self_pointer self) {
  auto& st = self->state;
  if (st.observer_there) self->send_exit(st.observer_there, caf::exit_reason::user_shutdown);
  st.observer_there = nullptr;
}

// The placement is over, whatever its outcome: no early report is kept, the agent is no
// longer watched for a loss (the process actor is, once placed).
void placement_over(self_pointer self) {
  auto& st = self->state;
  st.placing = false;
  st.spawn_key = 0;
  st.early.clear();
  st.early_overflow = false;
  if (st.agent) self->demonitor(st.agent.address());
}

// What a spawn's answer may take (node_directory.hpp): none for a spec that waits for
// readiness for ever — a lost node still ends the wait: the agent is monitored.
caf::duration spawn_timeout(const relay_state& st) {
  auto bound = spawn_bound(st.timing, st.spec);
  return bound ? caf::duration{*bound} : caf::duration{caf::infinite};
}

// The spawn was answered with `remote` started as `pid`.
void placed_at(self_pointer self, const dir_placed& placed, caf::typed_response_promise<std::int32_t> rp,
               process_actor remote, std::int32_t pid) {
  auto& st = self->state;
  auto early = std::move(st.early);
  const bool overflow = st.early_overflow;
  placement_over(self);
  // The answer must be a process actor of that node: a node that names one of this
  // machine's actors (the relay itself: a message loop; another child's relay: requests
  // meant for one child reach another) is treated as lost — and never sent an exit.
  if (!remote || remote.node() != placed.agent.node() || remote.node() == self->node()) {
    end_attempt(self);
    pkit::actors::detail::anon_send_from(self, st.directory, dir_lost{placed.name, placed.agent.address()});
    rp.deliver(caf::make_error(actor_error::node_unreachable,
                               "node '" + placed.name + "' answered the spawn with an actor not its own"));
    return;
  }
  if (overflow) {
    self->send_exit(remote, caf::exit_reason::user_shutdown);  // the node obeys its controller's actors only
    end_attempt(self);
    rp.deliver(caf::make_error(actor_error::start_failed,
                               "'" + st.id + "': node '" + placed.name + "' sent more reports than one run has"));
    return;
  }
  st.remote = std::move(remote);
  self->monitor(st.remote);
  // Before the run's child_started: the supervisor knows where it is.
  tell(self, child_node_atom_v, st.id, st.node);
  // In the order a local process actor keeps: child_started, the start's answer, the rest.
  bool answered = false;
  for (auto& r : early) {
    if (r.from != st.remote.address()) continue;
    if (!r.before_reply && !answered) {
      rp.deliver(pid);
      answered = true;
    }
    r.run();
  }
  if (!answered) rp.deliver(pid);
}

// The spawn was refused or not answered: nothing stays placed there.
void not_placed_at(self_pointer self, const dir_placed& placed, caf::typed_response_promise<std::int32_t> rp,
                   caf::error& err) {
  auto& st = self->state;
  placement_over(self);
  end_attempt(self);  // whatever the node spawned for it ends there (review 11 #13)
  st.agent = nullptr;
  if (auto refusal = net_error_of(err); refusal && refusal->code == errc::node_shutting_down) {
    // A node that stops is as good as lost: the directory places the child elsewhere.
    pkit::actors::detail::anon_send_from(self, st.directory, dir_lost{placed.name, placed.agent.address()});
    rp.deliver(caf::make_error(actor_error::node_unreachable,
                               "node '" + placed.name + "' refused '" + st.id + "': " + refusal->peer_message()));
    return;
  }
  if (auto refusal = net_error_of(err)) {
    rp.deliver(caf::make_error(actor_error::start_failed,
                               "node '" + placed.name + "' refused '" + st.id + "': " + refusal->peer_message()));
    return;
  }
  // The first start failed there (start_failed, ready_timeout, ...): as for a local worker.
  if (err.category() == caf::atom("pkit")) {
    rp.deliver(std::move(err));
    return;
  }
  // No answer: the node is as good as lost (the directory tries others first).
  if (err == caf::sec::request_timeout)
    pkit::actors::detail::anon_send_from(self, st.directory, dir_lost{placed.name, placed.agent.address()});
  rp.deliver(caf::make_error(actor_error::node_unreachable,
                             "node '" + placed.name + "': spawn: " + self->system().render(err)));
}

// The node is chosen: its agent spawns the process actor and starts it, in one request.
void spawn_on(self_pointer self, dir_placed placed, caf::typed_response_promise<std::int32_t> rp) {
  auto& st = self->state;
  st.node = placed.name;
  st.agent = placed.agent;
  st.observer_there = spawn_placement_observer(self->system(), self->address());
  // A node lost before it answers: node_down (the child may run there already).
  self->monitor(st.agent);
  const std::uint64_t key = ++st.next_key;
  st.on_lost.emplace(key, [self, rp]() mutable { rp.deliver(node_down(self->state, "lost while starting")); });
  st.spawn_key = key;
  st.spawn_rp = rp;
  self->request(placed.agent, spawn_timeout(st), node_spawn_atom_v, st.id, st.spec, st.observer_there)
      .then(
          [self, placed, rp, key](process_actor& remote, std::int32_t pid) mutable {
            if (self->state.on_lost.erase(key) == 0) {
              // Given up (a stop) or lost meanwhile, and answered: its observer is gone,
              // so the node ends it anyway; at once if it is truly that node's.
              if (remote && remote.node() == placed.agent.node() && remote.node() != self->node())
                self->send_exit(remote, caf::exit_reason::user_shutdown);
              return;
            }
            placed_at(self, placed, std::move(rp), std::move(remote), pid);
          },
          [self, placed, rp, key](caf::error& err) mutable {
            if (self->state.on_lost.erase(key) == 0) return;
            not_placed_at(self, placed, std::move(rp), err);
          });
}

caf::result<std::int32_t> start(self_pointer self) {
  auto& st = self->state;
  auto rp = self->make_response_promise<std::int32_t>();
  if (st.remote) return forward_start(self, std::move(rp));
  if (st.placing) return caf::make_error(actor_error::already_running, "'" + st.id + "' is being placed on a node");
  st.placing = true;
  self->request(st.directory, caf::duration{placing_bound(st.timing, st.nodes.size())}, dir_acquire{st.nodes})
      .then(
          [self, rp](dir_placed& placed) mutable {
            if (std::exchange(self->state.abandoned, false)) {
              self->state.placing = false;
              rp.deliver(caf::make_error(actor_error::start_failed, "'" + self->state.id + "' was stopped while being placed"));
              return;
            }
            spawn_on(self, std::move(placed), std::move(rp));
          },
            [self, rp](caf::error& err) mutable {
              self->state.placing = false;
              self->state.abandoned = false;
              if (err.category() != caf::atom("pkit")) err = caf::make_error(actor_error::node_unreachable, self->system().render(err));
              rp.deliver(std::move(err));
            });
  return rp;
}

// Reports of the remote process actor, passed on with the relay as their sender and the
// supervisor's own child id (never the one on the wire).
void on_report(self_pointer self, std::uint64_t inc, std::int32_t pid, process_state state) {
  auto& st = self->state;
  st.known.incarnation = inc;
  st.known.pid = pid;
  st.known.state = state;
}

// A report of the remote process actor, run now — or, while a spawn's answer is on its
// way, held until it names that actor (relay_state::early).
void take_report(self_pointer self, bool before_reply, std::function<void()> run) {
  auto& st = self->state;
  if (from_remote(self)) return run();
  if (st.remote || !st.placing || !st.observer_there || !self->current_sender()) return;
  // Only the node being placed on can have reports of its answer's actor: anything else
  // (another node that learnt this relay's id) is dropped, never counted — or eight
  // forged reports would fail a good placement and blame its node (review 12 #6).
  if (!st.agent || self->current_sender()->node() != st.agent.node()) return;
  if (st.early.size() >= relay_state::max_early) {
    st.early_overflow = true;
    return;
  }
  st.early.push_back({caf::actor_cast<caf::actor_addr>(self->current_sender()), before_reply, std::move(run)});
}

caf::error not_placed(self_pointer self) {
  auto& st = self->state;
  // A stop of a start still placing its child: the child must not appear afterwards. A
  // spawn under way is given up at once — the node ends what it spawned for it, the start
  // fails now; an acquisition of a node, when it ends.
  if (st.placing && st.spawn_key != 0 && st.on_lost.erase(st.spawn_key) != 0) {
    auto rp = st.spawn_rp;
    placement_over(self);
    end_attempt(self);
    rp.deliver(caf::make_error(actor_error::start_failed, "'" + st.id + "' was stopped while being placed"));
  } else if (st.placing) {
    st.abandoned = true;
  }
  return caf::make_error(actor_error::not_started, "'" + st.id + "' runs on no node");
}

caf::result<exit_status> stop(self_pointer self) {
  auto& st = self->state;
  if (!st.remote) return not_placed(self);
  return forward<exit_status>(self, self->make_response_promise<exit_status>(),
                              bounded(st.spec.stop_timeout_ms, st.timing.request_margin), lost_status(), stop_atom_v);
}

caf::result<exit_status> kill(self_pointer self) {
  auto& st = self->state;
  if (!st.remote) return not_placed(self);
  return forward<exit_status>(self, self->make_response_promise<exit_status>(), caf::duration{st.timing.request_margin},
                              lost_status(), kill_atom_v);
}

caf::result<caf::ok_atom> signal(self_pointer self, std::int32_t n) {
  auto& st = self->state;
  if (!st.remote) return caf::make_error(actor_error::not_started, "'" + st.id + "' runs on no node");
  return forward<caf::ok_atom>(
      self, self->make_response_promise<caf::ok_atom>(), caf::duration{st.timing.request_margin},
      [self](caf::typed_response_promise<caf::ok_atom>& rp) { rp.deliver(node_down(self->state, "lost")); },
      signal_atom_v, n);
}

caf::result<exit_status> join(self_pointer self) {
  auto& st = self->state;
  if (!st.remote) return caf::make_error(actor_error::not_started, "'" + st.id + "' runs on no node");
  // A join waits for the run's end, however long: the node's loss ends the wait.
  return forward<exit_status>(self, self->make_response_promise<exit_status>(), caf::duration{caf::infinite},
                              lost_status(), join_atom_v);
}

caf::result<process_info> status(self_pointer self) {
  auto& st = self->state;
  if (!st.remote) return st.known;
  return forward<process_info>(
      self, self->make_response_promise<process_info>(), caf::duration{st.timing.request_margin},
      [self](caf::typed_response_promise<process_info>& rp) { rp.deliver(self->state.known); }, status_atom_v);
}

void on_remote_down(self_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  if (st.placing && st.agent && dm.source == st.agent.address()) {
    // The node was lost (or its agent ended) before it answered the spawn.
    const bool unreachable = dm.reason == caf::exit_reason::remote_link_unreachable;
    return lose(self, node_down(st, unreachable ? "its link is unreachable" : "its agent ended"), unreachable);
  }
  if (!st.remote || dm.source != st.remote.address()) return;
  if (dm.reason == caf::exit_reason::remote_link_unreachable)
    return lose(self, node_down(st, "its link is unreachable"), true);
  // The process actor there ended by itself (its agent ended): so does this run.
  lose(self, dm.reason ? dm.reason : node_down(st, "its process actor ended"), false);
}

relay_actor::behavior_type relay_impl(self_pointer self, caf::actor directory, placement_timing timing,
                                      std::vector<std::string> nodes, process_spec spec, process_observer observer) {
  auto& st = self->state;
  st.directory = std::move(directory);
  st.timing = timing;
  st.nodes = std::move(nodes);
  st.known.name = spec.name;
  st.spec = std::move(spec);
  st.observer = observer.actor.address();
  st.id = std::move(observer.id);
  self->set_down_handler([self](caf::down_msg& dm) { on_remote_down(self, dm); });
  return {
      [self](start_atom) -> caf::result<std::int32_t> {
        if (!from_local_owner(self)) return not_allowed();
        return start(self);
      },
      [self](stop_atom) -> caf::result<exit_status> {
        if (!from_local_owner(self)) return not_allowed();
        return stop(self);
      },
      [self](kill_atom) -> caf::result<exit_status> {
        if (!from_local_owner(self)) return not_allowed();
        return kill(self);
      },
      [self](signal_atom, std::int32_t n) -> caf::result<caf::ok_atom> {
        if (!from_local_owner(self)) return not_allowed();
        return signal(self, n);
      },
      [self](join_atom) -> caf::result<exit_status> {
        if (!from_local_owner(self)) return not_allowed();
        return join(self);
      },
      [self](status_atom) -> caf::result<process_info> {
        if (!from_local_owner(self)) return not_allowed();
        return status(self);
      },
      [self](child_started_atom, std::string&, std::uint64_t inc, std::int32_t pid) {
        take_report(self, true, [self, inc, pid] {
          on_report(self, inc, pid, process_state::starting);
          tell(self, child_started_atom_v, self->state.id, inc, pid);
        });
      },
      [self](child_ready_atom, std::string&, std::uint64_t inc, std::int32_t pid) {
        take_report(self, false, [self, inc, pid] {
          on_report(self, inc, pid, process_state::running);
          tell(self, child_ready_atom_v, self->state.id, inc, pid);
        });
      },
      [self](child_exited_atom, std::string&, std::uint64_t inc, exit_status status) {
        take_report(self, false, [self, inc, status] {
          on_report(self, inc, 0, process_state::exited);
          self->state.known.has_last_exit = true;
          self->state.known.last_exit = status;
          tell(self, child_exited_atom_v, self->state.id, inc, status);
        });
      },
  };
}

}  // namespace

process_actor spawn_relay(caf::actor_system& sys, caf::actor directory, placement_timing timing,
                          std::vector<std::string> nodes, process_spec spec, process_observer observer) {
  relay_actor relay = sys.spawn(relay_impl, std::move(directory), timing, std::move(nodes), std::move(spec),
                                std::move(observer));
  return relay;
}

}  // namespace pkit::net::detail
