// The node directory's actor: the known nodes, one connection per node, their health and
// the background reconnection of the lost ones (node_directory.hpp).

#include <pkit/net/node_directory.hpp>

#include <pkit/actors/error.hpp>
#include <pkit/net/link_timing.hpp>
#include <pkit/net/listen_policy.hpp>

#include "directory_protocol.hpp"
#include "tcp_probe.hpp"

#include <algorithm>
#include <utility>
#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>

namespace pkit::net {

std::string to_string(node_health h) {
  switch (h) {
    case node_health::unknown: return "unknown";
    case node_health::connecting: return "connecting";
    case node_health::up: return "up";
    case node_health::down: return "down";
  }
  return "unknown";
}

namespace detail {
namespace {

using connected_fn = std::function<void(caf::expected<node_actor>)>;

struct node_entry {
  node_address address;
  node_health health = node_health::unknown;
  node_actor agent;  // while up
  std::string last_error;
  std::vector<connected_fn> waiters;  // while connecting
  bool wanted = false;  // a child asked for it: worth reconnecting in the background
  bool retry_scheduled = false;
  std::chrono::milliseconds backoff{0};
};

struct directory_state {
  placement_timing timing;
  bool tls = false;
  std::vector<node_entry> nodes;  // in the order added

  node_entry* find(const std::string& name) {
    auto i = std::find_if(nodes.begin(), nodes.end(), [&](const node_entry& n) { return n.address.name == name; });
    return i == nodes.end() ? nullptr : &*i;
  }

  static inline const char* name = "pkit.node_directory";
};

using self_pointer = caf::stateful_actor<directory_state>*;

void schedule_retry(self_pointer self, node_entry& n) {
  if (!n.wanted || n.retry_scheduled) return;
  const auto& t = self->state.timing;
  n.backoff = n.backoff.count() == 0 ? t.reconnect_initial : std::min(n.backoff * 2, t.reconnect_max);
  n.retry_scheduled = true;
  self->delayed_send(self, n.backoff, dir_retry{n.address.name});
}

// The node's link is gone or never came: down, its waiters told, a reconnect scheduled.
void mark_down(self_pointer self, node_entry& n, std::string why) {
  if (n.agent) self->demonitor(n.agent.address());
  n.agent = nullptr;
  n.health = node_health::down;
  n.last_error = std::move(why);
  auto waiters = std::move(n.waiters);
  n.waiters.clear();
  for (auto& w : waiters) w(caf::make_error(pkit::actors::error::node_unreachable, n.last_error));
  schedule_retry(self, n);
}

void mark_up(self_pointer self, node_entry& n, node_actor agent) {
  self->monitor(agent);
  n.agent = agent;
  n.health = node_health::up;
  n.last_error.clear();
  n.backoff = std::chrono::milliseconds{0};
  auto waiters = std::move(n.waiters);
  n.waiters.clear();
  for (auto& w : waiters) w(agent);
}

// The middleman actor that connects: the OpenSSL manager's in a TLS process, never the
// plain one there (a plain link would share the BASP broker: ISSUE11_DESIGN §2.3).
caf::actor connector(self_pointer self) {
  auto& sys = self->system();
  if (self->state.tls) return caf::actor_cast<caf::actor>(sys.openssl_manager().actor_handle());
  return caf::actor_cast<caf::actor>(sys.middleman().actor_handle());
}

// `usable`: the agent publishes this version's node_actor. One that does not is only said
// hello to for its refusal, which names both versions (node_protocol_mismatch).
void say_hello(self_pointer self, const std::string& name, node_actor agent, bool usable = true) {
  self->request(agent, self->state.timing.connect_timeout, node_hello_atom_v, node_protocol_version)
      .then(
          [self, name, agent, usable](node_info& info) {
            node_entry* n = self->state.find(name);
            if (n == nullptr || n->health != node_health::connecting) return;
            if (!usable)
              return mark_down(self, *n, "the actor at its port says hello but does not publish the node interface of protocol " +
                                             std::to_string(node_protocol_version));
            // An agent that answers hello with another protocol than it was asked for is
            // not one this controller can drive (the agent refuses a mismatch itself; a
            // node that answers anyway is lying or broken).
            if (info.protocol != node_protocol_version)
              return mark_down(self, *n, "hello: the node speaks protocol " + std::to_string(info.protocol) +
                                             ", this controller " + std::to_string(node_protocol_version));
            mark_up(self, *n, agent);
          },
          [self, name](caf::error& err) {
            node_entry* n = self->state.find(name);
            if (n == nullptr || n->health != node_health::connecting) return;
            // A stopping node answers, but refuses: said as such, not as an unreachable one.
            if (auto refusal = net_error_of(err); refusal && refusal->code == errc::node_shutting_down)
              return mark_down(self, *n, "stopping (it refused hello: it stops its children and starts none)");
            mark_down(self, *n, "hello: " + self->system().render(err));
          });
}

// How often a connect dropped by CAF's own heartbeat tick is tried (see caf_connect).
constexpr int connect_tries = 5;

// CAF's connect to node `name`, which has just answered a SYN (probe_then_connect).
//
// CAF 0.17.6 (0.18 too) makes the connecting side's BASP context with `last_seen` at the
// clock's epoch and sets it only when the node's handshake arrives: the broker's next
// heartbeat tick drops the connection with connection_timeout unless the handshake came
// first. A connect that takes longer than what is left of the heartbeat interval fails
// though the node answers (seen under load: TLS and plain, heartbeat 100 ms). Such a
// failure is tried again, `connect_tries` times in all and all within one
// connect_timeout (the bound the placement counts on): each try has a fresh chance. A
// retry helps only where the handshake takes less than a heartbeat interval: the
// interval must exceed the worst handshake latency (TCP, TLS, BASP) of the links.
void caf_connect(self_pointer self, const std::string& name, int tries_left = connect_tries,
                 std::optional<std::chrono::steady_clock::time_point> until = std::nullopt) {
  node_entry* n = self->state.find(name);
  if (n == nullptr || n->health != node_health::connecting) return;
  const auto now = std::chrono::steady_clock::now();
  const auto deadline = until.value_or(now + self->state.timing.connect_timeout);
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
  if (left <= std::chrono::milliseconds::zero())
    return mark_down(self, *n,
                     "connect: no handshake within connect_timeout (each try was dropped at this side's "
                     "heartbeat tick: is the heartbeat interval shorter than the link's handshake?)");
  self->request(connector(self), left, caf::connect_atom_v, n->address.host, n->address.port)
      .then(
          [self, name](caf::node_id&, caf::strong_actor_ptr& ptr, std::set<std::string>& ifs) {
            node_entry* n = self->state.find(name);
            if (n == nullptr || n->health != node_health::connecting) return;
            if (!ptr) return mark_down(self, *n, "no actor published at its port");
            if (self->system().assignable<node_actor>(ifs))
              return say_hello(self, name, caf::actor_cast<node_actor>(ptr));
            // Another version's node still answers hello: it names the mismatch.
            if (self->system().assignable<node_hello_actor>(ifs))
              return say_hello(self, name, caf::actor_cast<node_actor>(ptr), false);
            mark_down(self, *n, "the actor at its port is not a pkit node agent");
          },
          [self, name, tries_left, deadline](caf::error& err) {
            node_entry* n = self->state.find(name);
            if (n == nullptr || n->health != node_health::connecting) return;
            if (err == caf::sec::connection_timeout && tries_left > 1)
              return caf_connect(self, name, tries_left - 1, deadline);
            if (err == caf::sec::incompatible_application_ids)
              return mark_down(self, *n, "connect: " + incompatible_release_text());
            mark_down(self, *n, "connect: " + self->system().render(err));
          });
}

// Connects `n` (asynchronously, bounded) unless it is up; `then` gets the agent or why not.
// CAF's connect blocks its one middleman actor until the kernel gives up on a node that
// drops packets (minutes), holding up every other node's connect: a node is first probed
// with a TCP connect of our own, on a thread of its own, within connect_timeout.
void ensure_connected(self_pointer self, node_entry& n, connected_fn then) {
  if (n.health == node_health::up) return then(n.agent);
  n.waiters.push_back(std::move(then));
  if (n.health == node_health::connecting) return;
  n.health = node_health::connecting;
  const std::string name = n.address.name;
  const auto limit = self->state.timing.connect_timeout;
  auto prober = self->spawn<caf::detached>(tcp_prober, n.address.host, n.address.port, limit);
  self->request(prober, limit + std::chrono::seconds(1), caf::connect_atom_v)
      .then(
          [self, name](std::string& why) {
            node_entry* n = self->state.find(name);
            if (n == nullptr || n->health != node_health::connecting) return;
            if (!why.empty()) return mark_down(self, *n, "unreachable: " + why);
            caf_connect(self, name);
          },
          [self, name](caf::error& err) {
            if (node_entry* n = self->state.find(name); n != nullptr && n->health == node_health::connecting)
              mark_down(self, *n, "unreachable: " + self->system().render(err));
          });
}

// One acquisition: the candidates in the order they are tried, and why each failed.
struct attempt {
  caf::response_promise promise;
  std::vector<std::string> order;
  std::size_t next = 0;
  std::string reasons;
};

void try_next(self_pointer self, std::shared_ptr<attempt> a) {
  auto& st = self->state;
  while (a->next < a->order.size()) {
    const std::string name = a->order[a->next++];
    node_entry* n = st.find(name);
    if (n == nullptr) {
      a->reasons += (a->reasons.empty() ? "" : "; ") + ("'" + name + "': not a known node");
      continue;
    }
    n->wanted = true;
    ensure_connected(self, *n, [self, a, name](caf::expected<node_actor> agent) mutable {
      if (agent) {
        a->promise.deliver(dir_placed{name, std::move(*agent)});
        return;
      }
      a->reasons += (a->reasons.empty() ? "" : "; ") + ("'" + name + "': " + self->system().render(agent.error()));
      try_next(self, std::move(a));
    });
    return;
  }
  a->promise.deliver(caf::make_error(pkit::actors::error::node_unreachable, "no node could be used: " + a->reasons));
}

// Preference order, except that nodes known to be down come after all the others.
std::vector<std::string> candidates(directory_state& st, const std::vector<std::string>& nodes) {
  std::vector<std::string> first, last;
  for (const auto& name : nodes) {
    const node_entry* n = st.find(name);
    (n != nullptr && n->health == node_health::down ? last : first).push_back(name);
  }
  first.insert(first.end(), last.begin(), last.end());
  return first;
}

caf::behavior directory_impl(self_pointer self, placement_timing timing, bool tls) {
  self->state.timing = timing;
  self->state.tls = tls;
  self->set_down_handler([self](caf::down_msg& dm) {
    for (auto& n : self->state.nodes)
      if (n.agent && n.agent.address() == dm.source)
        mark_down(self, n, "link lost: " + self->system().render(dm.reason));
  });
  return {
      [self](dir_add& add) {
        if (self->state.find(add.node.name) == nullptr) {
          node_entry n;
          n.address = std::move(add.node);
          self->state.nodes.push_back(std::move(n));
        }
      },
      [self](dir_acquire& req) {
        auto a = std::make_shared<attempt>();
        a->promise = self->make_response_promise();
        a->order = candidates(self->state, req.nodes);
        // Answered by try_next, now or once a connect ends (the promise took the request).
        try_next(self, std::move(a));
      },
      [self](dir_lost& lost) {
        node_entry* n = self->state.find(lost.name);
        if (n != nullptr && n->agent && n->agent.address() == lost.agent)
          mark_down(self, *n, "link lost (a remote child's link was unreachable)");
      },
      [self](dir_retry& retry) {
        node_entry* n = self->state.find(retry.name);
        if (n == nullptr) return;
        n->retry_scheduled = false;
        if (n->health == node_health::down) ensure_connected(self, *n, [](caf::expected<node_actor>) {});
      },
      [self](dir_status) {
        std::vector<node_status> out;
        for (const auto& n : self->state.nodes) out.push_back({n.address.name, n.health, n.last_error});
        return out;
      },
  };
}

}  // namespace

caf::actor spawn_directory(caf::actor_system& sys, placement_timing timing, bool tls) {
  return sys.spawn(directory_impl, timing, tls);
}

}  // namespace detail

node_directory::node_directory(caf::actor_system& sys, placement_timing timing)
    : sys_(sys), timing_(timing), tls_(sys.has_openssl_manager()),
      actor_(detail::spawn_directory(sys, timing, tls_)) {}

node_directory::~node_directory() {
  if (!shut_down_) caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
}

void node_directory::shutdown() {
  if (std::exchange(shut_down_, true)) return;
  caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
}

std::optional<error> node_directory::add_node(const node_address& node) {
  const auto invalid = [](const char* subject, std::string why) {
    return error{make_error_code(errc::node_address_invalid), subject, std::move(why)};
  };
  if (node.name.empty()) return invalid("name", "a node needs a name");
  if (node.host.empty()) return invalid("host", "node '" + node.name + "' has no host");
  if (node.port == 0) return invalid("port", "node '" + node.name + "' has no port");
  if (!tls_ && !is_loopback_address(node.host))
    return error{make_error_code(errc::connect_needs_tls), "host",
                 "node '" + node.name + "' at " + node.host +
                     " is beyond loopback: load CAF's OpenSSL module with certificates (tls_files)"};
  std::lock_guard<std::mutex> guard{mutex_};
  if (std::find(names_.begin(), names_.end(), node.name) != names_.end())
    return invalid("name", "node '" + node.name + "' is already known");
  names_.push_back(node.name);
  // Before any child that names it: a relay's acquire is sent after this, by causality.
  caf::anon_send(actor_, detail::dir_add{node});
  return std::nullopt;
}

pkit::actors::process_actor node_directory::spawn_remote(caf::actor_system& system,
                                                         const std::vector<std::string>& nodes,
                                                         pkit::actors::process_spec spec,
                                                         pkit::actors::process_observer observer) const {
  return detail::spawn_relay(system, actor_, timing_, nodes, std::move(spec), std::move(observer));
}

std::chrono::milliseconds placing_bound(const placement_timing& timing, std::size_t nodes) {
  return 2 * timing.connect_timeout * static_cast<long>(nodes) + timing.request_margin;
}

std::optional<std::chrono::milliseconds> spawn_bound(const placement_timing& timing,
                                                     const pkit::actors::process_spec& spec) {
  const auto wait = pkit::actors::start_wait_ms(spec);
  if (!wait) return std::nullopt;
  // The node answers a spawn only once its previous run there, orphaned by a lost link,
  // is gone (node_agent.hpp): that run has this spec's stop timeout.
  const std::int64_t previous_stop = std::max<std::int64_t>(spec.stop_timeout_ms, 0);
  return timing.spawn_timeout + std::chrono::milliseconds(*wait) + std::chrono::milliseconds(previous_stop) +
         timing.request_margin;
}

std::optional<std::chrono::milliseconds> node_directory::start_bound(const std::vector<std::string>& nodes,
                                                                     const pkit::actors::process_spec& spec) const {
  auto spawn = spawn_bound(timing_, spec);
  if (!spawn) return std::nullopt;
  return placing_bound(timing_, nodes.size()) + *spawn;
}

std::vector<node_status> node_directory::status(std::chrono::milliseconds timeout) const {
  std::vector<node_status> out;
  caf::scoped_actor self{sys_};
  self->request(actor_, timeout, detail::dir_status{})
      .receive([&](std::vector<node_status>& x) { out = std::move(x); }, [](caf::error&) {});
  return out;
}

}  // namespace pkit::net
