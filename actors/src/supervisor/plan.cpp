// The plan executor: a supervisor carries out its decisions as plans of start and stop
// steps, the head plan first; a step completes with its child's report.

#include "state.hpp"

#include <algorithm>

namespace pkit::actors::detail::supervisor {

bool current_step_is(const supervisor_state& st, step::kind what, const std::string& id) {
  auto i = st.pending.find(id);
  return i != st.pending.end() && i->second.what == what;
}

// Whether the step `token` of child `id` is still under way (not done, not abandoned).
bool is_current(const supervisor_state& st, const std::string& id, std::uint64_t token) {
  auto i = st.pending.find(id);
  return i != st.pending.end() && i->second.token == token;
}

std::size_t start_concurrency(const supervisor_state& st) {
  return static_cast<std::size_t>(std::max<std::int32_t>(1, st.spec.flags.start_concurrency));
}

void finish_plan(self_pointer self, const caf::error& err, const std::string& failed) {
  auto& st = self->state;
  if (st.plans.empty()) return;
  plan p = std::move(st.plans.front());
  st.plans.pop_front();
  st.pending.clear();  // late replies of abandoned steps are ignored
  if (p.done) p.done(err, failed);
  run_next_step(self);
}

// The step of child `id` under way has ended, with `err` (nothing if there is none): its
// own `done` is told, and the plan goes on.
void end_step(self_pointer self, const std::string& id, const caf::error& err) {
  auto& st = self->state;
  auto i = st.pending.find(id);
  if (i == st.pending.end()) return;
  auto done = std::move(i->second.done);
  st.pending.erase(i);
  if (done) done(err);
  run_next_step(self);
}

// The step of child `id` under way has completed.
void step_done(self_pointer self, const std::string& id) { end_step(self, id, caf::none); }

// A start failed: what happens next depends on the plan (see on_failure).
void step_failed(self_pointer self, const std::string& id, const caf::error& err) {
  auto& st = self->state;
  if (st.plans.empty()) return;
  const on_failure mode = st.plans.front().failure_mode;
  child* c = st.find(id);
  std::string why = self->system().render(err);
  facts f;
  f.on_request = mode != on_failure::restart;
  f.process_made = c != nullptr && c->failed_run;
  const action a = c != nullptr ? decide(c->state, event::start_failed, f).then : action::ignore;
  // A run lost with its node has the lost status (placement.hpp), however the loss was
  // learnt; any other failed start made no run with a status of its own.
  const std::optional<exit_status> status =
      is_pkit_error(err, error::node_down) ? std::optional{exit_status::lost()} : std::nullopt;
  if (a == action::terminate || a == action::terminate_awaiting || a == action::await_exit) {
    // OTP: a failed start leaves the child terminated, and the caller gets the error. A
    // process it made is being killed: the child is stopping until its exit comes. In a
    // restart (await_exit) that exit ends the run, and tells this failure as its end
    // (on_child_exited), not the previous run's.
    c->last_reason = why;
    c->last_end = end_of_start_error(err);
    if (a != action::await_exit)
      c->state = a == action::terminate_awaiting ? child_state::stopping : child_state::stopped;
    if (a == action::terminate) {
      c->pid = 0;
      if (status) c->last = status;  // not the run before's status beside a node_down end
    }
  }
  if (mode == on_failure::each) return end_step(self, id, err);
  end_reason end = end_of_start_error(err);  // `err` may not outlive the plan
  const std::uint64_t run = c != nullptr ? c->incarnation : 0;
  finish_plan(self, err, id);
  if (a == action::end_run) {
    // In a restart the failure counts as the child's exit (with a process made, its exit
    // does: await_exit).
    c = st.find(id);
    if (c != nullptr && c->state == child_state::starting && !c->failed_run)
      return handle_exit(self, id, run_end{status, std::move(why), false, true, std::move(end)});
    // The next plan moved the child first (terminate_child stopped it, a request started
    // it again): no restart is due, but the failed run's end is still told and kept —
    // unless a newer run has begun.
    if (c != nullptr && !c->active() && c->incarnation == run) {
      c->last = status;
      c->last_reason = std::move(why);
      c->last_end = std::move(end);
      emit(self, *c, event_kind::exited);
    }
  }
}

// A start step whose reply came completes with the child's child_ready (see
// start_child_step), unless the plan was abandoned meanwhile.
void complete_ready_step(self_pointer self, child& c) {
  const std::uint64_t token = std::exchange(c.ready_token, 0);
  if (token != 0 && is_current(self->state, c.spec.id, token)) step_done(self, c.spec.id);
}

// OTP's shutdown: 0 brutal_kill, -1 infinity, else a timeout; by default infinity for a

// Issues the head plan's next steps: one at a time, or — for consecutive start steps —
// up to start_concurrency at once (in order: each child is started after all the ones
// before it have been). A plan ends when its last step has completed.
void run_next_step(self_pointer self) {
  auto& st = self->state;
  if (st.in_run) {  // called from a step that completed at once, or from a plan's done
    st.run_again = true;
    return;
  }
  st.in_run = true;
  do {
    st.run_again = false;
    while (!st.plans.empty()) {
      plan& p = st.plans.front();
      if (p.steps.empty()) {
        if (!st.pending.empty()) break;
        finish_plan(self, caf::none, {});
        continue;
      }
      const step& next = p.steps.front();
      if (!st.pending.empty()) {
        const auto only = [&st](step::kind what) {
          return std::all_of(st.pending.begin(), st.pending.end(),
                             [what](const auto& kv) { return kv.second.what == what; });
        };
        const bool another_start = next.what == step::kind::start && only(step::kind::start) &&
                                   st.pending.size() < start_concurrency(st);
        const bool another_stop = p.concurrent_stops && next.what == step::kind::stop && only(step::kind::stop);
        if (!(another_start || another_stop) || st.pending.count(next.id) != 0) break;
      }
      step s = std::move(p.steps.front());
      p.steps.pop_front();
      const std::uint64_t token = ++st.token;
      st.pending[s.id] = {s.what, token, std::move(s.done), s.drop_if_temporary};
      if (s.what == step::kind::start) {
        start_child_step(self, s, token);
      } else {
        stop_child_step(self, s, token);
      }
    }
  } while (st.run_again);
  st.in_run = false;
}

void schedule(self_pointer self, plan p) {
  self->state.plans.push_back(std::move(p));
  run_next_step(self);
}

std::deque<step> stop_all_steps(const supervisor_state& st, bool drop_temporary) {
  std::deque<step> steps;
  for (auto i = st.children.rbegin(); i != st.children.rend(); ++i)
    steps.push_back({step::kind::stop, i->spec.id, drop_temporary});
  return steps;
}

}  // namespace pkit::actors::detail::supervisor
