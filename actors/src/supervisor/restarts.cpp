// What a child's exit leads to: a restart (with backoff, within the intensity), FATAL,
// removal, giving up; and the supervisor's own shutdown.

#include "state.hpp"

#include <pkit/actors/error.hpp>

#include <caf/atom.hpp>

#include <algorithm>
#include <cmath>

namespace pkit::actors::detail::supervisor {

// How a run ended whose worker actor went down under it. A remote worker's relay ends
// with node_down when the node is lost: that run's exit status is lost, and its reason
// says node_down (placement.hpp); any other end is the actor's own.
run_end end_of_actor(self_pointer self, const caf::error& reason) {
  if (is_pkit_error(reason, error::node_down))
    return run_end{exit_status::lost(), self->system().render(reason), false, false, end_reason{end_kind::node_down}};
  return run_end{std::nullopt, "its process actor ended: " + self->system().render(reason), false, false,
                 end_reason{end_kind::actor_down}};
}

end_reason end_of_status(const std::optional<exit_status>& status) {
  if (!status) return {};
  if (status->is_lost()) return end_reason{end_kind::lost};
  return end_reason{status->is_killed() ? end_kind::signaled : end_kind::exited};
}

end_reason end_of_start_error(const caf::error& err) {
  // A start that failed because its node was lost is that node's loss (counted once with
  // its siblings' node_down ends: already_counted_node_loss), not a start failure.
  end_reason r{is_pkit_error(err, error::node_down) ? end_kind::node_down : end_kind::start_failed};
  if (auto f = start_failure_of(err)) {
    r.has_start = true;
    r.start = std::move(*f);
  }
  return r;
}

end_reason end_of_nested(const caf::error& reason) {
  if (!reason || reason == caf::exit_reason::normal) return end_reason{end_kind::shutdown};
  return end_reason{is_pkit_error(reason, error::restart_limit) ? end_kind::restart_limit : end_kind::error};
}


// -- restarts ---------------------------------------------------------------------------

std::int64_t backoff_delay(supervisor_state& st, child& c, clock::time_point now) {
  const backoff_spec& b = st.spec.flags.backoff;
  if (b.initial_ms <= 0) return 0;
  const auto uptime = std::chrono::duration_cast<ms>(now - c.started_at).count();
  if (uptime >= b.reset_after_ms) c.consecutive_restarts = 0;
  double delay = static_cast<double>(b.initial_ms) * std::pow(b.multiplier, c.consecutive_restarts);
  delay = std::min(delay, static_cast<double>(b.max_ms));
  ++c.consecutive_restarts;
  if (b.jitter > 0) {
    std::uniform_real_distribution<double> spread(-b.jitter, b.jitter);
    delay *= 1.0 + spread(st.rng);
  }
  return std::max<std::int64_t>(0, static_cast<std::int64_t>(delay));
}

// Sliding window on the monotonic clock: true when this restart exceeds the intensity.
bool over_intensity(supervisor_state& st, clock::time_point now) {
  st.restarts.push_back(now);
  const auto window = ms(st.spec.flags.period_ms);
  while (!st.restarts.empty() && now - st.restarts.front() > window) st.restarts.pop_front();
  return static_cast<std::int64_t>(st.restarts.size()) > st.spec.flags.intensity;
}

// One lost node is one cause: every program on it ends with node_down at once (its link's
// proxies are dropped together), and counting each toward the intensity would give the
// group up over a single node's loss — before any program could run on another node. As
// for siblings that die together in a group restart, the loss counts once: a node_down
// end within a second of the last counted one of the same node is not counted again.
bool already_counted_node_loss(supervisor_state& st, const child& c, clock::time_point now) {
  if (!c.is_remote() || c.node.empty() || c.last_end.kind != end_kind::node_down) return false;
  constexpr auto same_loss = std::chrono::seconds(1);
  auto [at, fresh] = st.node_losses.try_emplace(c.node, now);
  if (!fresh && now - at->second < same_loss) return true;
  at->second = now;
  return false;
}

// Whether a group restart (`generation`) starts member `c` now (group_start).
action member_start(const supervisor_state& st, const child& c, std::uint64_t generation) {
  facts f;
  f.shutting_down = st.shutting_down;
  f.out_of_group = c.group != generation;
  return decide(c.state, event::group_start, f).then;
}

// The group to restart: the child alone, all children, or it and those after it (a FATAL
// sibling stays as it is).
std::vector<std::string> group_of(supervisor_state& st, const std::string& id) {
  const restart_strategy strategy = st.spec.flags.strategy;
  std::vector<std::string> group;
  if (strategy == restart_strategy::one_for_all || strategy == restart_strategy::rest_for_one) {
    auto pos = st.position(id);
    auto first = strategy == restart_strategy::one_for_all ? st.children.begin() : pos;
    for (auto i = first; i != st.children.end(); ++i)
      if (i->spec.id == id || i->state != child_state::fatal) group.push_back(i->spec.id);
  } else {
    group.push_back(id);
  }
  return group;
}

// Starting the group (in order) is a plan of its own: the members still marked with
// this restart, not running, not FATAL.
void start_group(self_pointer self, const std::vector<std::string>& group, std::uint64_t generation) {
  auto& st = self->state;
  plan p;
  p.failure_mode = on_failure::restart;
  for (const auto& g : group) {
    const child* c = st.find(g);
    if (c == nullptr) continue;
    const action a = member_start(st, *c, generation);
    if (a == action::ignore) return;
    if (a == action::start) p.steps.push_back({step::kind::start, g});
  }
  schedule(self, std::move(p));
}

// The backoff before a group's start is a timer, not a step: a child waiting out its
// backoff holds up no other request.
void start_after_backoff(self_pointer self, std::int64_t delay, const std::vector<std::string>& group,
                         std::uint64_t generation) {
  if (delay > 0) {
    after(self, delay, [self, group, generation] { start_group(self, group, generation); });
  } else {
    start_group(self, group, generation);
  }
}

// The child died before min_uptime max_failed_starts times in a row: FATAL, told.
void make_fatal(self_pointer self, child& c) {
  const auto& flags = self->state.spec.flags;
  c.state = child_state::fatal;
  const std::string why = "died within " + std::to_string(flags.min_uptime_ms) + " ms of starting " +
                          std::to_string(c.failed_starts) + " times in a row";
  report(self, supervisor_report::give_up, "child '" + c.spec.id + "' is FATAL, not restarted any more: " + why);
  emit(self, c, event_kind::fatal, 0, why);
}

// A member the group restart (`generation`) has stopped waits for that restart's start:
// it is restarting, not stopped — status says it will be back, delete_child refuses it as
// OTP refuses a restarting child, and an all_significant supervisor counts it as alive.
// (OTP's group restart is synchronous and has no such wait; a backoff makes one.)
void await_group_start(self_pointer self, const std::string& id, std::uint64_t generation) {
  auto& st = self->state;
  child* m = st.find(id);
  if (m != nullptr && !st.shutting_down && m->group == generation && m->state == child_state::stopped)
    m->state = child_state::restarting;
}

void restart(self_pointer self, child& c) {
  auto& st = self->state;
  const auto now = self->clock().now();
  const auto& flags = st.spec.flags;
  const auto uptime = std::chrono::duration_cast<ms>(now - c.started_at).count();
  // The two limits compose: a death before min_uptime is a failed start, limited by
  // max_failed_starts (then FATAL: that child alone stops); every other restart counts
  // toward the intensity (then the supervisor gives up). Counting failed starts toward
  // the intensity too would make FATAL unreachable with the default intensity of 1.
  const bool failed_start = flags.min_uptime_ms > 0 && flags.max_failed_starts > 0 && uptime < flags.min_uptime_ms;
  facts f;
  f.over_intensity = !failed_start && !already_counted_node_loss(st, c, now) && over_intensity(st, now);
  const int failed_starts =
      flags.min_uptime_ms <= 0 ? c.failed_starts : uptime < flags.min_uptime_ms ? c.failed_starts + 1 : 0;
  f.start_limit_reached = flags.min_uptime_ms > 0 && flags.max_failed_starts > 0 && failed_starts >= flags.max_failed_starts;
  const action a = decide(c.state, event::restart_due, f).then;
  if (a == action::give_up) return give_up(self, c);
  c.failed_starts = failed_starts;
  if (a == action::fatal) return make_fatal(self, c);
  std::int64_t delay = backoff_delay(st, c, now);
  const std::string id = c.spec.id;
  const std::vector<std::string> group = group_of(st, id);
  // A member still waiting out its own backoff keeps it: the group starts no earlier.
  for (const auto& g : group) {
    const child* m = st.find(g);
    if (g != id && m->state == child_state::restarting && m->restart_due > now)
      delay = std::max<std::int64_t>(delay, std::chrono::ceil<ms>(m->restart_due - now).count());
  }
  ++c.automatic_restarts;
  c.state = child_state::restarting;
  c.restart_due = now + ms(delay);
  emit(self, c, event_kind::restarting, delay);
  // Each member is marked with this restart: it takes over a restart still pending for a
  // member (whose own start is then skipped, so the group starts in spec order), an exit
  // of a member's current run is part of it (see handle_exit), and a request about a
  // member (terminate_child, restart_child) takes the member out of it.
  const std::uint64_t generation = st.next_group++;
  for (const auto& g : group) {
    child* m = st.find(g);
    m->group = generation;
    m->group_stop_due = g != id;  // the stop plan below stops every member but `c`
    m->restart_due = c.restart_due;
  }
  if (group.size() == 1) return start_after_backoff(self, delay, group, generation);
  // Stop the rest of the group in reverse order first (temporary bystanders are dropped).
  plan stops;
  stops.failure_mode = on_failure::restart;
  for (auto i = group.rbegin(); i != group.rend(); ++i)
    if (*i != id)
      stops.steps.push_back({step::kind::stop, *i, true,
                             [self, member = *i, generation](const caf::error& err) {
                               if (!err) await_group_start(self, member, generation);
                             },
                             generation});
  stops.done = [self, delay, group, generation](const caf::error& err, const std::string&) {
    if (!err) start_after_backoff(self, delay, group, generation);
  };
  schedule(self, std::move(stops));
}

void shut_down(self_pointer self, caf::error reason);

// A significant child has ended without a restart: with any_significant the supervisor
// shuts down now; with all_significant once no significant child is left running.
void auto_shutdown_check(self_pointer self) {
  auto& st = self->state;
  facts f;
  f.no_auto_shutdown = st.spec.flags.shutdown == auto_shutdown::never;
  if (st.spec.flags.shutdown == auto_shutdown::all_significant)
    f.significant_left = std::any_of(st.children.begin(), st.children.end(), [](const child& c) {
      return c.spec.significant && (c.active() || c.state == child_state::restarting);
    });
  if (decide(event::significant_end, f).then == action::shut_down) shut_down(self, caf::exit_reason::normal);
}

// A group restart's start plan ended at a child whose start failed (step_failed). When
// that failure starts no new group restart — the child became FATAL, a transient child
// was not restarted, the supervisor gave up — the members after it would stay stopped
// for ever, a silent half-stopped group: they are started now.
void resume_group(self_pointer self, std::uint64_t generation) {
  auto& st = self->state;
  plan p;
  p.failure_mode = on_failure::restart;
  for (const auto& c : st.children) {
    const action a = member_start(st, c, generation);
    if (a == action::ignore) return;
    if (a == action::start) p.steps.push_back({step::kind::start, c.spec.id});
  }
  if (!p.steps.empty()) schedule(self, std::move(p));
}

void apply_exit(self_pointer self, const std::string& id, run_end end);

void handle_exit(self_pointer self, const std::string& id, run_end end) {
  const child* c = self->state.find(id);
  const std::uint64_t generation = c != nullptr && end.failed_start ? c->started_by_group : 0;
  apply_exit(self, id, std::move(end));
  // A new group restart (if the failure made one) marked the members with its own
  // generation: then there is nothing left to resume.
  if (generation != 0) resume_group(self, generation);
}

void apply_exit(self_pointer self, const std::string& id, run_end end) {
  auto& st = self->state;
  child* c = st.find(id);
  if (c == nullptr) return;
  c->last = end.status;
  c->last_reason = std::move(end.reason);
  c->last_end = end.end.kind != end_kind::none ? std::move(end.end) : end_of_status(end.status);
  // OTP's child_terminated report (an abnormal end: not a transient child's success).
  if (!end.success && !st.shutting_down)
    report(self, supervisor_report::all,
           "child_terminated: child '" + id + "'" + (c->pid > 0 ? " pid " + std::to_string(c->pid) : std::string()) +
               " " + end_of(*c));
  emit(self, *c, event_kind::exited);  // with the pid of the run that ended
  c->pid = 0;
  facts f;
  f.shutting_down = st.shutting_down;
  f.in_group = c->group != 0;
  f.restart = c->spec.restart;
  f.success = end.success;
  const bool significant = c->spec.significant;
  const action a = decide(c->state, event::run_ended, f).then;
  switch (a) {
    case action::record: return;
    case action::join_group:
      // A group restart planned to stop this run: it ended on its own first, and is part
      // of that restart (which starts it again in its turn).
      c->state = child_state::restarting;
      return;
    default: break;
  }
  // Whatever follows, the run is over: a child that exited is not running (a supervisor
  // that gives up below must not wait for its stop).
  c->state = child_state::stopped;
  if (a == action::restart) return restart(self, *c);
  if (a == action::remove) drop_child(self, id);
  // OTP's auto_shutdown: a significant child that ended for good may end the supervisor
  // (once shutting down, that changes nothing).
  if (significant) auto_shutdown_check(self);
}

// Stops every child in reverse start order, then exits with `reason`. Requests still
// queued are answered with `shutting_down`; a second call only waits for the first.
void shut_down(self_pointer self, caf::error reason) {
  auto& st = self->state;
  if (st.shutting_down) return;
  st.shutting_down = true;
  st.pending_timers.clear();  // a pending (backoff) restart starts nothing any more
  std::deque<plan> old;
  old.swap(st.plans);
  auto under_way = std::move(st.pending);
  st.pending.clear();
  const auto refused = caf::make_error(error::shutting_down, st.spec.name);
  for (auto& [id, f] : under_way)
    if (f.done) f.done(refused);
  for (auto& p : old) {
    for (auto& s : p.steps)
      if (s.done) s.done(refused);
    if (p.done && p.failure_mode != on_failure::fail_supervisor) p.done(refused, {});
  }
  plan p;
  p.steps = stop_all_steps(st, false);
  // OTP stops a simple_one_for_one supervisor's children all at once (they are
  // interchangeable instances, started in no meaningful order) and waits once; one at a
  // time, N children ignoring SIGTERM would take N shutdown timeouts.
  p.concurrent_stops = st.spec.flags.strategy == restart_strategy::simple_one_for_one;
  p.done = [self, reason = std::move(reason)](const caf::error&, const std::string&) {
    // Every child is stopped; their actors go now.
    for (auto& c : self->state.children) discard_actor(self, c);
    for (auto& rp : self->state.stop_waiters) rp.deliver(caf::ok_atom_v);
    self->state.stop_waiters.clear();
    self->quit(reason);
  };
  schedule(self, std::move(p));
}

void give_up(self_pointer self, const child& last) {
  auto& st = self->state;
  if (st.shutting_down) return;
  supervisor_event e;
  e.supervisor = st.spec.name;
  e.source = self->address();
  e.kind = event_kind::gave_up;
  e.end.kind = end_kind::restart_limit;
  e.reason = "more than " + std::to_string(st.spec.flags.intensity) + " restarts in " +
             std::to_string(st.spec.flags.period_ms) + " ms";
  // OTP's supervisor report: {reached_max_restart_intensity, ...} with the child whose
  // exit was one too many.
  report(self, supervisor_report::give_up,
         "reached_max_restart_intensity (" + e.reason + "); last: child '" + last.spec.id + "' " + end_of(last) +
             "; stopping every child and exiting with restart_limit");
  publish(self, e);
  shut_down(self, caf::make_error(error::restart_limit, st.spec.name + ": " + e.reason));
}


}  // namespace pkit::actors::detail::supervisor
