#include <pkit/net/node_agent.hpp>

#include <pkit/actors/error.hpp>

#include "../send_from.hpp"
#include "child_guard.hpp"

#include <caf/abstract_actor.hpp>
#include <caf/actor_registry.hpp>
#include <caf/actor_cast.hpp>
#include <caf/exit_reason.hpp>
#include <caf/make_message.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <iterator>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>

#ifndef PKIT_VERSION
#define PKIT_VERSION "unknown"
#endif

namespace pkit::net {

namespace {

using pkit::actors::process_actor;
using pkit::actors::process_info;
using pkit::actors::process_spec;

/// The error category of pkit::net's refusals on the wire (an atom: at most 10 chars).
const caf::atom_value category = caf::atom("pkitnet");

/// How long `list` waits for each process actor's status. They are local actors that
/// answer at once unless busy starting a child (a clone and exec, bounded).
constexpr auto status_timeout = std::chrono::seconds(5);

/// Added to what a process actor's first start may take by itself (its exec, its ready
/// timeout): a loaded node's slack. The start is local; the bound only keeps the spawn's
/// answer from waiting for ever on an actor that misbehaves.
constexpr auto start_margin = std::chrono::seconds(5);

error refuse(errc code, std::string subject, std::string reason) {
  return {make_error_code(code), std::move(subject), std::move(reason)};
}

/// One process actor the agent spawned, its guard (what the controller was given,
/// child_guard.hpp) and the relay it reports to.
struct child_entry {
  std::string id;
  process_actor proc;
  caf::actor guard;
  std::shared_ptr<detail::guard_gate> gate;
  caf::actor_addr relay;
  std::int64_t stop_timeout_ms = 0;  ///< its spec's: bounds the stop of an orphan
  bool retiring = false;             ///< retire() stops it for good
};

using spawn_promise = caf::typed_response_promise<process_actor, std::int32_t>;

/// A spawn that waits for the orphaned runs of its id to be gone (node_state::stopping).
struct deferred_spawn {
  std::string id;
  process_spec child;  ///< already validated and made the node's (remote_child_spec)
  caf::actor relay;
  spawn_promise rp;
};

struct node_state {
  node_config config;
  /// In spawn order; an entry leaves when its process actor goes down.
  std::vector<child_entry> children;
  /// The relays monitored, with the number of live children each watches: one monitor
  /// per relay, dropped with its last child.
  std::map<caf::actor_addr, std::size_t> relays;
  /// The ids whose runs were orphaned (their relay went down) and are being stopped,
  /// with how many such runs each. The id alone is the key, whichever controller spawned
  /// it: the agent cannot tell a controller by its TLS certificate (CAF keeps the session
  /// to itself), a restarted controller has a new CAF node id, and through `pkit node`
  /// every relay is the node's own tap. A spawn of another controller's equal id waits too
  /// — at most that orphan's stop timeout —, which is what a second `web` binding the
  /// same port would need anyway.
  struct orphans {
    std::size_t runs = 0;  ///< still stopping
    bool stuck = false;    ///< one of them did not stop (in time)
  };
  std::map<std::string, orphans> stopping;
  /// Spawns waiting for their id to leave `stopping`, in arrival order.
  std::vector<deferred_spawn> deferred;

  static inline const char* name = "pkit.node";

  /// The agent ends (sent an exit, or its system shuts down): its children end with it.
  /// Dropping the handles would not do: a process actor whose handle crossed the wire is
  /// held by the middleman's registry, and would run on, unwatched.
  ~node_state() {
    for (const auto& c : children)
      caf::anon_send_exit(c.proc, caf::exit_reason::user_shutdown);
    // Nobody waits for ever for a spawn the agent will not make.
    for (auto& d : deferred)
      d.rp.deliver(caf::make_error(caf::sec::request_receiver_down));
  }
};

using self_pointer = node_actor::stateful_pointer<node_state>;

/// Collects the answers of `list`: one slot per child, delivered when the last arrives.
struct list_gather {
  caf::typed_response_promise<std::vector<node_child_info>> promise;
  std::vector<node_child_info> infos;
  std::size_t pending = 0;

  void done() {
    if (--pending == 0)
      promise.deliver(std::move(infos));
  }
};

node_info hello_info(const node_config& config) {
  node_info info;
  info.name = config.name;
  info.pkit_version = PKIT_VERSION;
  info.protocol = node_protocol_version;
  for (const auto& p : config.allow.programs)
    info.programs.push_back(p.string());
  for (const auto& d : config.allow.program_dirs)
    info.program_dirs.push_back(d.string());
  info.max_children = config.max_children;
  return info;
}

/// Why `id`, `relay` or the current load refuse a spawn (the spec itself is validate()'s).
std::optional<error> check_spawn(const node_state& st, const std::string& id, const caf::actor& relay,
                                 bool relay_ok) {
  if (id.size() > st.config.allow.max_name_bytes || id.find('\0') != std::string::npos)
    return refuse(errc::spec_malformed, "id",
                  "longer than " + std::to_string(st.config.allow.max_name_bytes) +
                      " bytes or holds a NUL byte");
  if (!relay)
    return refuse(errc::node_relay_missing, "relay", "a spawn must name the actor its child reports to");
  if (!relay_ok)
    return refuse(errc::node_relay_missing, "relay", "the relay must be an actor of the requester's own node");
  if (st.config.stopping && st.config.stopping->load())
    return refuse(errc::node_shutting_down, "spawn", "this node is stopping: it stops its children and starts none");
  // A spawn waiting for an orphaned run of its id (deferred) holds a slot too: unbounded,
  // a peer repeating the orphaning could queue spawns (each with its spec) without end.
  if (st.children.size() + st.deferred.size() >= st.config.max_children)
    return refuse(errc::node_child_limit, "max_children",
                  std::to_string(st.children.size()) + " children alive and " + std::to_string(st.deferred.size()) +
                      " waiting, the node runs at most " + std::to_string(st.config.max_children));
  return std::nullopt;
}

/// Tells the node's operator (all of it) and answers the peer (no detail).
caf::error refused(const node_state& st, const std::string& id, const error& why) {
  if (st.config.on_refusal) {
    st.config.on_refusal(id, why);
  } else {
    // One write: lines of concurrent agents do not interleave. The id is the peer's:
    // cut to the cap check_spawn applies, anything but printable ASCII shown as '?' (no
    // forged line or terminal escape in the node's log).
    std::string shown = id.substr(0, st.config.allow.max_name_bytes);
    for (char& c : shown)
      if (c < 0x20 || c > 0x7e)
        c = '?';
    std::string line = "pkit node " + st.config.name + ": spawn '" + shown +
                       "' refused: " + why.message() + "\n";
    std::fputs(line.c_str(), stderr);
  }
  return to_caf_error(why);
}

/// Forgets the process actor `proc` (the agent ended it, or it went down): its slot is
/// free, and its relay's monitor is dropped with the relay's last child. False when it
/// was not a child (any more).
bool forget_child(self_pointer self, const caf::actor_addr& proc) {
  auto& st = self->state;
  auto child = std::find_if(st.children.begin(), st.children.end(),
                            [&](const child_entry& c) { return c.proc.address() == proc; });
  if (child == st.children.end())
    return false;
  auto relay = st.relays.find(child->relay);
  if (relay != st.relays.end() && --relay->second == 0) {
    self->demonitor(relay->first);
    st.relays.erase(relay);
  }
  st.children.erase(child);
  return true;
}

/// How long the first start of a process actor may take: it bounds itself (the exec,
/// then the ready timeout of a spec that notifies readiness or looks up its user); the
/// margin is for a loaded machine. Infinite for a spec that waits for ever.
caf::duration start_bound(const process_spec& spec) {
  const auto wait = pkit::actors::start_wait_ms(spec);
  if (!wait) return caf::duration{caf::infinite};
  return caf::duration{std::chrono::milliseconds(*wait) + start_margin};
}

/// Starts the process actor just spawned and answers `rp` with it and its pid. A failed
/// start leaves nothing: the actor is forgotten (its slot free) before the answer and
/// ended (which stops its child, if one ran, per its spec).
void start_child(self_pointer self, process_actor proc, caf::actor guard, caf::duration bound, spawn_promise rp) {
  self->request(proc, bound, pkit::actors::start_atom_v)
      .then([rp, guard](std::int32_t pid) mutable { rp.deliver(caf::actor_cast<process_actor>(guard), pid); },
            [self, rp, proc](caf::error& err) mutable {
              forget_child(self, proc.address());
              self->demonitor(proc.address());
              self->send_exit(proc, caf::exit_reason::user_shutdown);
              rp.deliver(std::move(err));
            });
}

/// Spawns and starts the process actor of a spawn that passed every check.
void launch(self_pointer self, std::string id, process_spec child, caf::actor relay, spawn_promise rp) {
  auto& st = self->state;
  const caf::duration bound = start_bound(child);
  const std::int64_t stop_timeout_ms = child.stop_timeout_ms;
  auto gate = std::make_shared<detail::guard_gate>();
  gate->node_stopping = st.config.stopping;
  gate->controller = st.config.controller_of ? st.config.controller_of(relay) : relay.node();
  gate->sealed_reports = st.config.sealed_local_reports && relay.node() == self->node();
  caf::actor guard = detail::spawn_child_guard(self->system(), relay, self->address(), gate);
  process_actor proc = pkit::actors::spawn_process(self->system(), std::move(child), nullptr,
                                                   pkit::actors::process_observer{guard, id, st.config.on_child_started});
  // Before the guard is exposed (the spawn's answer) and before the child reports to it.
  pkit::actors::detail::send_from(self, guard, proc);
  self->monitor(proc);
  self->monitor(guard);
  if (st.relays[relay.address()]++ == 0)
    self->monitor(relay);
  // A child from the spawn on: a relay that goes down during the start ends it too.
  st.children.push_back({std::move(id), proc, guard, std::move(gate), relay.address(), stop_timeout_ms});
  start_child(self, std::move(proc), std::move(guard), bound, std::move(rp));
}

caf::result<process_actor, std::int32_t> spawn_child(self_pointer self, std::string& id, process_spec& spec,
                                                     caf::actor& relay) {
  auto& st = self->state;
  if (auto bad = check_spawn(st, id, relay, acceptable_relay(self->system(), self->current_sender(), relay)))
    return refused(st, id, *bad);
  if (auto bad = validate(spec, st.config.allow))
    return refused(st, id, *bad);
  // Never the spec as received: the node's environment and credentials, and a name no
  // local program can have. No fork server: validate() refuses targets.
  process_spec child = remote_child_spec(std::move(spec), st.config.allow);
  child.name = remote_name_prefix + child.name;
  auto rp = self->make_response_promise<process_actor, std::int32_t>();
  // A run of this id whose controller was lost may still be in its stop timeout: the
  // controller restarting it must not make two (review 11 #4). Answered once it is gone.
  if (st.stopping.count(id) != 0)
    st.deferred.push_back({std::move(id), std::move(child), std::move(relay), rp});
  else
    launch(self, std::move(id), std::move(child), std::move(relay), rp);
  return rp;
}

/// The spawns that waited for `id`'s orphaned runs, now that the last is gone: launched,
/// or refused when that run did not stop (`stuck`). The child limit is checked again: the
/// slots were taken while they waited.
void resume_deferred(self_pointer self, const std::string& id, bool stuck) {
  auto& st = self->state;
  auto first = std::stable_partition(st.deferred.begin(), st.deferred.end(),
                                     [&](const deferred_spawn& d) { return d.id != id; });
  std::vector<deferred_spawn> ready(std::make_move_iterator(first), std::make_move_iterator(st.deferred.end()));
  st.deferred.erase(first, st.deferred.end());
  for (auto& d : ready) {
    std::optional<error> bad;
    if (stuck)
      bad = refuse(errc::node_previous_run_stuck, "id",
                   "the previous run of this id, whose controller was lost, is still stopping");
    else
      bad = check_spawn(st, d.id, d.relay, true);
    if (bad)
      d.rp.deliver(refused(st, d.id, *bad));
    else
      launch(self, std::move(d.id), std::move(d.child), std::move(d.relay), std::move(d.rp));
  }
}

/// Stops the orphaned child `c` (its relay went down) per its spec and waits for the end
/// of its run — the stop answers once the child is collected, with kill_group (a remote
/// child's default) once its process group is empty — before the process actor is ended
/// and the spawns of its id waiting meanwhile go ahead. Ending the actor at once would
/// hand the stop to libpkit in the background, and nothing here would know when it ends.
void retire(self_pointer self, child_entry& c) {
  auto& st = self->state;
  if (c.retiring)
    return;
  c.retiring = true;
  c.gate->retired = true;  // nobody starts it again meanwhile
  ++st.stopping[c.id].runs;
  const caf::duration bound =
      c.stop_timeout_ms < 0 ? caf::duration{caf::infinite}
                            : caf::duration{std::chrono::milliseconds(c.stop_timeout_ms) + start_margin};
  auto finish = [self, proc = c.proc, id = c.id](bool stuck) {
    auto& st = self->state;
    // Its slot is free now, not when its down message comes: a spawn that waited for it
    // may need the slot.
    forget_child(self, proc.address());
    self->demonitor(proc.address());
    self->send_exit(proc, caf::exit_reason::user_shutdown);
    auto it = st.stopping.find(id);
    if (it == st.stopping.end())
      return;
    it->second.stuck = it->second.stuck || stuck;
    if (--it->second.runs > 0)
      return;
    const bool any_stuck = it->second.stuck;
    st.stopping.erase(it);
    resume_deferred(self, id, any_stuck);
  };
  self->request(c.proc, bound, pkit::actors::stop_atom_v)
      .then([finish](pkit::exit_status&) { finish(false); },
            // not_started: no run to wait for; the actor gone: its end began the stop in
            // the background — as a timeout, the run may still be there.
            [finish](caf::error& err) { finish(err != pkit::actors::error::not_started); });
}

caf::result<std::vector<node_child_info>> list_children(self_pointer self) {
  auto& st = self->state;
  if (st.children.empty())
    return std::vector<node_child_info>{};
  auto gather = std::make_shared<list_gather>();
  gather->promise = self->make_response_promise<std::vector<node_child_info>>();
  gather->pending = st.children.size();
  for (std::size_t i = 0; i < st.children.size(); ++i) {
    gather->infos.push_back({st.children[i].id, 0, pkit::actors::process_state::idle});
    self->request(st.children[i].proc, status_timeout, pkit::actors::status_atom_v)
        .then(
            [gather, i](process_info& info) {
              gather->infos[i].pid = info.pid;
              gather->infos[i].state = info.state;
              gather->done();
            },
            // Gone or busy meanwhile: listed as idle without a pid rather than not at all.
            [gather](caf::error&) { gather->done(); });
  }
  return gather->promise;
}

/// A monitored actor went down: one of our process actors (its slot is free), or a relay
/// (its controller ended it, or the link to the controller's node was lost: the proxy is
/// killed with remote_link_unreachable). A relay's children are stopped: nobody would
/// supervise them, and the controller may be starting them again elsewhere.
void on_down(self_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  if (forget_child(self, dm.source))
    return;
  // A guard that ends before its process actor was sent an exit from afar (a relay that
  // ends sends one to its remote process actor): its child is stopped as an orphan.
  auto guarded = std::find_if(st.children.begin(), st.children.end(),
                              [&](const child_entry& c) { return c.guard.address() == dm.source; });
  if (guarded != st.children.end())
    return retire(self, *guarded);
  if (st.relays.erase(dm.source) == 0)
    return;
  // retire() only sends requests: the entries stay where they are meanwhile.
  for (auto& c : st.children)
    if (c.relay == dm.source)
      retire(self, c);
}

node_actor::behavior_type node_impl(self_pointer self, node_config config) {
  self->state.config = std::move(config);
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  return {
      [self](node_hello_atom, std::uint32_t protocol) -> caf::result<node_info> {
        if (protocol != node_protocol_version)
          return to_caf_error(refuse(errc::node_protocol_mismatch, "protocol",
                                     "the controller speaks version " + std::to_string(protocol) +
                                         ", this node " + std::to_string(node_protocol_version)));
        // A stopping node refuses every spawn: answering hello would have a controller
        // that dropped it for that refusal reconnect, find it up and place there again
        // (a restart loop that lasts as long as the node takes to stop).
        if (self->state.config.stopping && self->state.config.stopping->load())
          return to_caf_error(refuse(errc::node_shutting_down, "hello",
                                     "this node is stopping: it stops its children and starts none"));
        return hello_info(self->state.config);
      },
      [self](node_spawn_atom, std::string& id, process_spec& spec,
             caf::actor& relay) -> caf::result<process_actor, std::int32_t> {
        return spawn_child(self, id, spec, relay);
      },
      [self](node_list_atom) -> caf::result<std::vector<node_child_info>> {
        return list_children(self);
      },
  };
}

}  // namespace

std::optional<error> node_config::check() const {
  if (auto bad = allow.check())
    return bad;
  if (max_children == 0)
    return refuse(errc::allow_list_invalid, "max_children", "must be positive");
  return std::nullopt;
}

node_actor spawn_node_agent(caf::actor_system& sys, node_config config) {
  return sys.spawn(node_impl, std::move(config));
}

caf::error to_caf_error(const error& e) {
  return caf::error{static_cast<std::uint8_t>(e.code.value()), category,
                    caf::make_message(e.subject, e.reason)};
}

std::optional<error> net_error_of(const caf::error& err) {
  if (err.category() != category)
    return std::nullopt;
  error out{make_error_code(static_cast<errc>(err.code())), {}, {}};
  const caf::message& ctx = err.context();
  if (ctx.match_elements<std::string, std::string>()) {
    out.subject = ctx.get_as<std::string>(0);
    out.reason = ctx.get_as<std::string>(1);
  }
  return out;
}

void init(caf::actor_system_config& cfg) {
  pkit::actors::init(cfg);
  cfg.add_message_types<caf::id_block::pkit_net>();
  // Renders "pkit.net: program not allowed: argv[0]: '/bin/cat' is not ...".
  cfg.add_error_category(category, [](std::uint8_t code, caf::atom_value, const caf::message& ctx) {
    error e{make_error_code(static_cast<errc>(code)), {}, {}};
    if (ctx.match_elements<std::string, std::string>()) {
      e.subject = ctx.get_as<std::string>(0);
      e.reason = ctx.get_as<std::string>(1);
    }
    return "pkit.net: " + e.message();
  });
}

bool genuine_local_sender(caf::actor_system& sys, const caf::strong_actor_ptr& sender) {
  if (!sender || sender->node() != sys.node() || sys.registry().get(sender->id()) != nullptr) return false;
  // Outside the registry: never exposed — or exposed and ended since (CAF erases an actor
  // as it ends) while a message a peer forged in its name waited. CAF sets the terminated
  // flag before it runs the attachables that erase it (monitorable_actor::cleanup), so an
  // actor outside the registry that has not terminated was never in it.
  return !sender->get()->getf(caf::abstract_actor::is_terminated_flag);
}

bool acceptable_relay(caf::actor_system& sys, const caf::strong_actor_ptr& sender, const caf::actor& relay) {
  if (!relay || !sender) return false;
  if (relay.node() != sys.node()) return relay.node() == sender->node();
  return sys.registry().get(relay.id()) == nullptr;
}

}  // namespace pkit::net
