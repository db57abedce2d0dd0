// The supervisor's message handlers for what its children report (child_started,
// child_ready, child_exited, down messages), exit signals and its own timers.

#include "state.hpp"

#include <pkit/actors/error.hpp>

#include <optional>
#include <utility>

namespace pkit::actors::detail::supervisor {

namespace {

run_end ended_with(const exit_status& s) { return {s, {}, s.success(), false, end_reason{}}; }

// A nested supervisor's actor went down: it has no exit status, its exit reason is the truth.
void nested_down(self_pointer self, child& c, const caf::error& reason) {
  auto& st = self->state;
  const std::string id = c.spec.id;
  c.sup = nullptr;
  std::string why = reason ? self->system().render(reason) : std::string();
  facts f;
  f.start_step_under_way = current_step_is(st, step::kind::start, id);
  switch (decide(c.state, event::nested_down, f).then) {
    case action::stopped:
      c.state = child_state::stopped;
      c.last.reset();
      c.last_reason = std::move(why);
      // Killed because it missed its shutdown time: a stop timeout, as for a worker.
      c.last_end = end_reason{reason == caf::exit_reason::kill && shutdown_of(c) > 0 ? end_kind::stop_timeout
                                                                                    : end_kind::stopped};
      emit(self, c, event_kind::stopped);
      step_done(self, id);
      return;
    case action::fail_start:
      // It failed while starting its own children: a failed start (step_failed).
      step_failed(self, id, reason ? reason : caf::make_error(error::start_failed, id));
      return;
    default: handle_exit(self, id, run_end{std::nullopt, std::move(why), !reason, false, end_of_nested(reason)});
  }
}

// The end of a start that failed on request (start_child, restart_child, the initial
// start) and made a process: the child stays terminated; its start error stays its reason.
// `status`: that process's, if its exit report came.
void end_failed_start(self_pointer self, child& c, std::optional<exit_status> status) {
  c.failed_run = false;
  c.state = child_state::stopped;
  c.last = std::move(status);
  emit(self, c, event_kind::exited);
  c.pid = 0;
  if (c.drop_after_exit) drop_child(self, c.spec.id);
}

// A process actor died under us (killed): it handed its process, if one still ran, to
// pkit's stopper, which gives it its stop signal and stop timeout. The next run waits for
// it (see start_child_step).
void worker_down(self_pointer self, child& c, const caf::error& reason) {
  forget_worker(self, c);
  complete_ready_step(self, c);  // its child_ready will not come
  const std::string id = c.spec.id;
  facts f;
  f.process_made = c.failed_run;
  const action a = decide(c.state, event::worker_down, f).then;
  // A failed start waited for its process's exit report, which will not come now: without
  // this the child stayed stopping with no actor, and every later stop of it hung.
  if (a == action::end_failed_start)
    end_failed_start(self, c, is_pkit_error(reason, error::node_down) ? std::optional{exit_status::lost()}
                                                                      : std::nullopt);
  else if (a == action::end_run)
    handle_exit(self, id, end_of_actor(self, reason));
  // (`c` may be gone from here on: dropped.)
  // Nor will the reply to a stop it had taken: CAF 0.17 answers no request its receiver
  // had taken when it ends (only those still queued, with an error). The stop ends with the
  // actor (the exit above kept the child stopping: run_ended: record), else it would wait
  // for ever — terminate_child unanswered, a shutdown that never completes.
  auto& pending = self->state.pending;
  if (auto i = pending.find(id); i != pending.end() && i->second.what == step::kind::stop)
    worker_stop_lost(self, id, i->second.token, i->second.drop_if_temporary);
}

}  // namespace

void on_down(self_pointer self, caf::down_msg& dm) {
  auto& st = self->state;
  unsubscribe(self, dm.source);  // a subscriber that terminated
  auto whose = st.by_actor.find(dm.source);
  if (whose == st.by_actor.end()) return;
  const std::string id = whose->second;
  st.by_actor.erase(whose);
  child* c = st.find(id);
  if (c == nullptr) return;
  if (c->is_supervisor()) {
    nested_down(self, *c, dm.reason);
  } else {
    worker_down(self, *c, dm.reason);
  }
}

// Children are not linked to us. OTP: a supervisor ends when its parent tells it to; an
// exit signal from anyone else is a message it ignores. An anonymous exit
// (caf::anon_send_exit: its source is the receiver itself) is an order from the
// application or from a parent that is going away (~supervisor_state), and is obeyed.
void on_exit(self_pointer self, caf::exit_msg& em) {
  facts f;
  f.from_parent = em.source == self->address() || (em.source && em.source == self->state.parent);
  if (decide(event::exit_signal, f).then == action::shut_down) shut_down(self, em.reason);
}

void on_child_node(self_pointer self, const std::string& id, std::string node) {
  // A remote worker's relay placed its child (placement.hpp): shown in child_info.
  child* c = self->state.find(id);
  if (c != nullptr && c->is_remote() && from_child(self, *c)) c->node = std::move(node);
}

namespace {

enum class report_kind { started, ready, exited };

// The one check of a report's freshness: whether it comes from the child's current actor
// (see from_child) about its current run or a newer one — and, for an exit, not about a
// run we stopped ourselves (its stop's reply came first and told its end: stopped_run). A
// process actor numbers its runs from 1, so its numbers are offset by the incarnation when
// it was spawned (run_offset); a nested supervisor reports its start once (child_ready),
// while it is starting. Returns the run's incarnation, or nothing if the report is stale.
std::optional<std::uint64_t> current_run(self_pointer self, const child& c, std::uint64_t inc, report_kind kind) {
  if (!from_child(self, c)) return std::nullopt;
  if (c.is_supervisor()) {
    if (kind != report_kind::ready || c.state != child_state::starting) return std::nullopt;
    return c.incarnation + 1;
  }
  inc += c.run_offset;
  if (inc < c.incarnation) return std::nullopt;
  if (kind == report_kind::exited && inc <= c.stopped_run) return std::nullopt;
  return inc;
}

}  // namespace

void on_child_started(self_pointer self, const std::string& id, std::uint64_t inc, std::int32_t pid) {
  child* c = self->state.find(id);
  if (c == nullptr) return;
  const auto run = current_run(self, *c, inc, report_kind::started);
  if (!run) return;
  c->incarnation = *run;
  c->pid = pid;
  emit(self, *c, event_kind::started);
}

void on_child_ready(self_pointer self, const std::string& id, std::uint64_t inc, std::int32_t pid) {
  child* c = self->state.find(id);
  if (c == nullptr) return;
  const auto run = current_run(self, *c, inc, report_kind::ready);
  facts f;
  f.stale = !run;
  const action a = decide(c->state, event::ready_report, f).then;
  if (a == action::ignore) return;
  c->incarnation = *run;
  if (c->is_supervisor()) {  // its run begins with its ready: it has no pid
    c->state = child_state::running;
    emit(self, *c, event_kind::started);
    emit(self, *c, event_kind::ready);
    return step_done(self, id);
  }
  c->pid = pid;
  // Not for a run already being stopped (or ended): it is not ready for anyone.
  if (a == action::ready) emit(self, *c, event_kind::ready);
  complete_ready_step(self, *c);
}

void on_child_exited(self_pointer self, const std::string& id, std::uint64_t inc, const exit_status& status) {
  child* c = self->state.find(id);
  if (c == nullptr) return;
  const auto run = current_run(self, *c, inc, report_kind::exited);
  facts f;
  f.stale = !run;
  f.process_made = c->failed_run;
  const action a = decide(c->state, event::exit_report, f).then;
  if (f.stale) return;
  c->incarnation = *run;
  if (a == action::end_failed_start) return end_failed_start(self, *c, status);
  if (a != action::end_run) return;
  run_end end = ended_with(status);
  if (std::exchange(c->failed_run, false)) {
    // A run that never got ready did not succeed, even if it exited with 0.
    end.reason = c->last_reason;
    end.end = c->last_end;
    end.success = false;
    end.failed_start = true;
  }
  handle_exit(self, id, std::move(end));
}

void on_timer(self_pointer self, const restart_timer& timer) {
  auto& timers = self->state.pending_timers;
  auto i = timers.find(timer.token);
  if (i == timers.end()) return;
  auto fn = std::move(i->second);
  timers.erase(i);
  fn();
}

}  // namespace pkit::actors::detail::supervisor
