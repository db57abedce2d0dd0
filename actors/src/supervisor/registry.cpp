// The child registry's helpers: who a report is from, what a child looks like to callers,
// the event stream and reports, timers, and dropping a child's actor.

#include "state.hpp"

#include "../send_from.hpp"
#include "../supervisor_report.hpp"
#include "../timer_relay.hpp"

#include <caf/actor_cast.hpp>

#include <algorithm>

namespace pkit::actors::detail::supervisor {

// Whether the message being handled was sent by child `c`'s current actor: the only
// source of its reports (see supervisor_protocol.hpp). A report from anyone else — a
// forgery, or an actor of the child that was replaced — is dropped.
bool from_child(self_pointer self, const child& c) {
  const caf::strong_actor_ptr& sender = self->current_sender();
  if (!sender) return false;
  const auto from = caf::actor_cast<caf::actor_addr>(sender);
  return c.sup ? from == c.sup.address() : (c.proc && from == c.proc.address());
}

child_info info_of(const child& c) {
  child_info i;
  i.id = c.spec.id;
  i.state = c.state;
  i.pid = c.pid;
  i.incarnation = c.incarnation;
  i.is_supervisor = c.is_supervisor();
  i.automatic_restarts = c.automatic_restarts;
  i.manual_restarts = c.manual_restarts;
  i.has_last_exit = c.last.has_value();
  if (c.last) i.last_exit = *c.last;
  i.last_reason = c.last_reason;
  i.last_end = c.last_end;
  i.node = c.node;
  i.handle = c.sup ? caf::actor_cast<caf::actor>(c.sup) : caf::actor_cast<caf::actor>(c.proc);
  return i;
}

// Answers a start/restart request with the child's state, or unknown_child if it is gone.
void deliver_info(self_pointer self, caf::typed_response_promise<child_info>& rp, const std::string& id) {
  if (const child* c = self->state.find(id)) {
    rp.deliver(info_of(*c));
  } else {
    rp.deliver(caf::make_error(error::unknown_child, id));
  }
}

void publish(self_pointer self, const supervisor_event& e) {
  for (const auto& s : self->state.subscribers)
    if ((s.kinds & mask_of(e.kind)) != 0) detail::anon_send_from(self, s.who, e);
}

void subscribe(self_pointer self, caf::actor who, event_mask kinds, bool whole_tree) {
  auto& subs = self->state.subscribers;
  auto it = std::find_if(subs.begin(), subs.end(), [&](const auto& s) { return s.who == who; });
  if (it != subs.end()) {
    it->kinds = kinds;
    it->whole_tree = it->whole_tree || whole_tree;
    return;
  }
  self->monitor(who);
  subs.push_back({std::move(who), kinds, whole_tree});
}

// The subscribers a nested supervisor inherits from its start (event_subscriber::whole_tree).
std::vector<event_subscriber> inherited_subscribers(self_pointer self) {
  std::vector<event_subscriber> out;
  for (const auto& s : self->state.subscribers)
    if (s.whole_tree) out.push_back(s);
  return out;
}

void unsubscribe(self_pointer self, const caf::actor_addr& who) {
  auto& subs = self->state.subscribers;
  subs.erase(std::remove_if(subs.begin(), subs.end(), [&](const auto& s) { return s.who.address() == who; }),
             subs.end());
}

void emit(self_pointer self, const child& c, event_kind kind, std::int64_t delay_ms, std::string reason) {
  auto& st = self->state;
  if (st.subscribers.empty()) return;
  supervisor_event e;
  e.supervisor = st.spec.name;
  e.source = self->address();
  e.child = c.spec.id;
  e.kind = kind;
  e.incarnation = c.incarnation;
  e.pid = c.pid;
  e.node = c.node;
  // A stop's status too: how the run ended is the same news whether or not it was asked to.
  const bool ended = kind == event_kind::exited || kind == event_kind::stopped;
  e.has_status = ended && c.last.has_value();
  if (e.has_status) e.status = *c.last;
  e.delay_ms = delay_ms;
  e.reason = ended && reason.empty() ? c.last_reason : std::move(reason);
  if (ended) e.end = c.last_end;
  publish(self, e);
}

// How a child's last run ended, for a report: its exit status and/or the reason.
std::string end_of(const child& c) {
  std::string out = c.last ? c.last->to_string() : std::string();
  if (!c.last_reason.empty()) out += (out.empty() ? "" : ": ") + c.last_reason;
  return out.empty() ? "ended" : out;
}

void report(self_pointer self, supervisor_report level, const std::string& text) {
  const supervisor_report wanted = self->state.spec.flags.report;
  if (wanted != supervisor_report::none && level <= wanted) detail::write_report(self->state.spec.name, text);
}


// Runs `fn` after `delay` (a delayed message through the timer relay); the handler of
// restart_timer looks the token up. Returns the token.
std::uint64_t after(self_pointer self, std::int64_t delay_ms, std::function<void()> fn) {
  auto& st = self->state;
  const std::uint64_t token = st.next_timer++;
  st.pending_timers.emplace(token, std::move(fn));
  detail::delayed_weak_send(st.timers, self->address(), ms(std::max<std::int64_t>(0, delay_ms)),
                            restart_timer{token});
  return token;
}

// Drops a child's actor. Demonitored first: its down message would only make the down
// handler look for a child that is gone.
void discard_actor(self_pointer self, child& c) {
  if (c.proc) {
    self->demonitor(c.proc.address());
    self->state.by_actor.erase(c.proc.address());
    self->send_exit(c.proc, caf::exit_reason::user_shutdown);
    c.proc = nullptr;
  }
  if (c.sup) {
    self->demonitor(c.sup.address());
    self->state.by_actor.erase(c.sup.address());
    self->send_exit(c.sup, caf::exit_reason::user_shutdown);
    c.sup = nullptr;
  }
}

// Removes a child and its actor.
void drop_child(self_pointer self, const std::string& id) {
  auto& st = self->state;
  if (child* c = st.find(id)) discard_actor(self, *c);
  st.remove(id);
}

}  // namespace pkit::actors::detail::supervisor
