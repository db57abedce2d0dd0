// The steps of a plan: starting one child (a process actor or a nested supervisor) and
// stopping one.

#include "state.hpp"

#include <pkit/actors/error.hpp>

#include <caf/actor_cast.hpp>
#include <caf/atom.hpp>
#include <caf/sec.hpp>

#include <algorithm>
#include <csignal>

namespace pkit::actors::detail::supervisor {

// supervisor, the process spec's stop timeout for a worker.
std::int64_t shutdown_of(const child& c) {
  if (c.spec.shutdown_ms != default_shutdown) return c.spec.shutdown_ms;
  return c.is_supervisor() ? -1 : c.spec.process.stop_timeout_ms;
}

// Why a stopped worker's status is what it is, when that is worth saying: the stop had to
// escalate — its shutdown timeout passed and libpkit sent SIGKILL to the child or to what
// was left of its process group (systemd's result 'timeout'). libpkit says so in the
// status: a SIGKILL from anyone else during the grace period is not one, a group killed
// around a leader that obeyed is. Empty for an orderly stop and for a brutal kill (asked).
std::string stop_verdict(const child& c, const exit_status& status) {
  const std::int64_t shutdown = shutdown_of(c);
  if (!status.stop_escalated() || shutdown <= 0) return {};
  const bool leader_killed = status.is_killed() && status.signal() == SIGKILL;
  return std::string(stop_timeout_reason) + (leader_killed ? ": killed after " : ": its process group killed after ") +
         std::to_string(shutdown) + " ms";
}

process_spec worker_spec(const child& c) {
  process_spec p = c.spec.process;
  if (p.name.empty()) p.name = c.spec.id;
  p.stop_timeout_ms = shutdown_of(c);
  return p;
}

void start_child_step(self_pointer self, const step& s, std::uint64_t token);

// Time for a start beyond the readiness deadline: a fork-server target's launch (its round
// trip is bounded by the server's request_timeout, 10 s by default) and the exec.
constexpr std::int64_t start_margin_ms = 30000;
// Beyond a remote stand-in's own bound (placement::start_bound).
constexpr std::int64_t remote_start_margin_ms = 1000;

// How long a start request to a process actor may take before the actor counts as wedged
// (review D5): its readiness deadline plus the margin; none when the spec waits for
// readiness for ever (ready_timeout_ms -1). check_child bounds ready_timeout_ms, so the
// sum cannot overflow.
// A plain program's start (argv, no readiness protocol, no user or group) is answered by the process
// actor's handler itself, at once: no timer for it (the common case stays as cheap).
std::optional<std::int64_t> start_timeout_ms(const child& c, const placement* place) {
  const process_spec& p = c.spec.process;
  // A remote start crosses the network (a connect, a spawn): its stand-in bounds it, and
  // says how long it may take; ours is that and a margin, so that the stand-in's own,
  // clearer error (node_unreachable, ready_timeout) comes first.
  if (c.is_remote() && place != nullptr)
    if (const auto bound = place->start_bound(c.spec.nodes, worker_spec(c)))
      return bound->count() + remote_start_margin_ms;
  // A placement that does not know its bound: as any start, what the start may wait for
  // (start_wait_ms: readiness, the lookup of a user) and the margin (none when it may wait
  // for ever).
  const auto wait = start_wait_ms(p);
  if (wait == 0 && p.target.empty() && !c.is_remote()) return std::nullopt;
  if (!wait) return std::nullopt;
  return *wait + start_margin_ms;
}

// The start request `token` got no reply in time: the process actor is wedged. It goes,
// with whatever it started (libpkit stops that process; the next run waits for it), and
// the start fails. A timer of ours, not CAF's request timeout: that one holds the
// supervisor strongly until it is due, so a released tree could not end meanwhile.
void start_timed_out(self_pointer self, const std::string& id, std::uint64_t token, std::int64_t limit_ms) {
  auto& st = self->state;
  child* c = st.find(id);
  if (c == nullptr) return;
  // Answered (the step now waits for child_ready), or abandoned: nothing is wedged.
  facts f;
  f.step_current = is_current(st, id, token) && c->ready_token != token;
  f.has_actor = static_cast<bool>(c->proc);
  if (decide(c->state, event::start_timeout, f).then != action::kill) return;
  if (c->pid > 0 && !c->is_remote()) c->previous.watch(c->pid);
  discard_actor(self, *c);
  c->pid = 0;
  step_failed(self, id,
              caf::make_error(error::start_failed, "the process actor of '" + id + "' did not answer its start within " +
                                                       std::to_string(limit_ms) + " ms"));
}

// How often a start waiting for the previous run's process to exit looks again: after
// 10 ms, then twice as long each time up to once a second. With an infinite shutdown the
// old process may take for ever; the supervisor then looks once a second, not 100 times.
constexpr std::int64_t previous_run_first_poll_ms = 10;
constexpr std::int64_t previous_run_max_poll_ms = 1000;

// The child's previous process is still ending (see child::previous): the step (a start,
// or a stop that must not complete before the process is gone) goes on once it has
// exited. Polled on a timer, not waited for: the actor must not block, and the process is
// the reaper thread's to collect. (Event-driven would need the reaper thread to report the
// pidfd; the wait ends anyway with the step — a shutdown, a failed plan, terminate_child
// abandon it.)
void await_previous_run(self_pointer self, child& c, std::uint64_t token, const step& s) {
  c.previous_poll_ms = std::clamp<std::int64_t>(c.previous_poll_ms * 2, previous_run_first_poll_ms,
                                                previous_run_max_poll_ms);
  after(self, c.previous_poll_ms, [self, s, token] {
    if (!is_current(self->state, s.id, token)) return;  // abandoned (shutdown, a failed plan)
    if (s.what == step::kind::start) {
      start_child_step(self, s, token);
    } else {
      stop_child_step(self, s, token);
    }
  });
}

// Starts a nested supervisor; the step completes with its child_ready (or fails by its
// down message).
void start_nested(self_pointer self, child& c) {
  auto& st = self->state;
  const std::string id = c.spec.id;
  // An actor left from an earlier run (a completed stop leaves none) must not stay
  // beside the new one; the step always goes on.
  if (c.sup) discard_actor(self, c);
  supervisor_options nested;
  nested.server = st.server;
  nested.place = st.place;
  nested.observer = process_observer{caf::actor_cast<caf::actor>(self), id};
  nested.subscribers = inherited_subscribers(self);
  c.sup = spawn_supervisor(self->system(), c.spec.supervisor.front(), std::move(nested));
  // Monitored, not linked: a link would carry a `kill` of the child to us, and CAF's
  // kill cannot be trapped — OTP turns it into `killed` so the supervisor restarts the
  // child; here the monitor's down message does the same. (Our own end reaches the
  // children through ~supervisor_state.)
  self->monitor(c.sup);
  st.by_actor.emplace(c.sup.address(), id);
}

// Drops the handle of a worker's actor that has ended (or is ending) and the monitor on
// it: its down message, if already sent, finds no child. A local run it still had is
// handed to pkit's stopper: the next run waits for that pid (see start_child_step).
void forget_worker(self_pointer self, child& c) {
  // A remote worker's pid is the node's, not ours to watch (supervisor_options::place).
  if (c.pid > 0 && !c.is_remote()) c.previous.watch(c.pid);
  if (c.proc) {
    self->demonitor(c.proc.address());
    self->state.by_actor.erase(c.proc.address());
    // Nothing for an actor that ended. One that only said so (a relay passing on a node's
    // node_down) ends now: forgotten, it would keep its child running beside the next run.
    self->send_exit(c.proc, caf::exit_reason::user_shutdown);
    c.proc = nullptr;
  }
}

// Spawns the process actor of a worker that has none. False (the step failed) if it
// cannot be.
bool spawn_worker(self_pointer self, child& c) {
  auto& st = self->state;
  const std::string id = c.spec.id;
  if (c.is_remote() && st.place == nullptr) {
    step_failed(self, id,
                caf::make_error(error::start_failed, "child '" + id +
                                                         "': nodes: no placement was given to the "
                                                         "supervisor, so it cannot run on another node"));
    return false;
  }
  c.run_offset = c.incarnation;
  process_observer observer{caf::actor_cast<caf::actor>(self), id};
  c.proc = c.is_remote() ? st.place->spawn_remote(self->system(), c.spec.nodes, worker_spec(c), std::move(observer))
                         : spawn_process(self->system(), worker_spec(c), st.server, std::move(observer));
  self->monitor(c.proc);
  st.by_actor.emplace(c.proc.address(), id);
  return true;
}

// The process actor answered start request `token` with the pid.
void worker_started(self_pointer self, const std::string& id, std::uint64_t token, std::int32_t pid) {
  auto& st = self->state;
  child* c = st.find(id);
  if (c != nullptr && c->state == child_state::starting) {
    c->state = child_state::running;
    c->pid = pid;
  }
  // The incarnation arrives with child_ready, which follows this reply; the step
  // completes there, once the `ready` event is out — so a supervisor reports
  // itself ready (to its parent) only after all its children's ready events.
  if (is_current(st, id, token)) {
    if (c != nullptr && c->proc) {
      c->ready_token = token;
    } else {
      step_done(self, id);
    }
  }
}

// Whether a start's error says the worker's actor has ended (or is ending): a remote
// worker's relay answers node_down only as it ends with its node (placement.hpp), a
// process actor answers shutting_down only from its destructor, and a request an ended
// actor could not take comes back as request_receiver_down.
bool ended_worker(const caf::error& err) {
  return is_pkit_error(err, error::node_down) || is_pkit_error(err, error::shutting_down) ||
         err == caf::sec::request_receiver_down;
}

// The process actor answered start request `token` with an error.
void worker_start_failed(self_pointer self, const std::string& id, std::uint64_t token, const caf::error& err) {
  auto& st = self->state;
  if (!is_current(st, id, token)) return;
  child* c = st.find(id);
  if (c != nullptr && ended_worker(err)) {
    // Forgotten now, ahead of its down message: the restart this failure leads to may come
    // at once (no backoff), and must spawn a new actor, not send its start to the one that
    // ended — which refused it (request_receiver_down: one more failed start), and whose
    // down message then ended the new run too; a relay still draining its mailbox after
    // quit() refused restart after restart until the supervisor gave up. No exit report
    // of this run will come: the failure is its end.
    forget_worker(self, *c);
  } else if (c != nullptr && c->state == child_state::starting && c->pid > 0) {
    // A process was made iff its child_started came (it precedes this reply):
    // then its exit is on the way and ends the failed start.
    c->failed_run = true;
  }
  step_failed(self, id, err);
}

void start_child_step(self_pointer self, const step& s, std::uint64_t token) {
  child* c = self->state.find(s.id);
  if (c == nullptr) return step_done(self, s.id);
  facts f;
  // Never two instances of one child: not before the last run's process has exited.
  f.previous_lingers = !c->active() && !c->is_supervisor() && c->previous.lingers();
  switch (decide(c->state, event::start_step, f).then) {
    case action::skip: return step_done(self, s.id);
    case action::wait_previous: return await_previous_run(self, *c, token, s);
    default: break;  // start
  }
  c->previous_poll_ms = 0;
  c->state = child_state::starting;
  c->pid = 0;
  c->failed_run = false;
  // This start is the one a pending group restart was for — unless that restart has yet
  // to stop the child (a start of a plan queued ahead of its stop plan: the initial start,
  // an earlier restart's start, a request): the mark stays, so that the restart starts
  // the child again after its stop, and an exit meanwhile is part of it (join_group).
  if (c->group != 0 && c->group_stop_due) {
    c->started_by_group = 0;
  } else {
    c->started_by_group = std::exchange(c->group, 0);
  }
  c->started_at = self->clock().now();
  const std::string id = c->spec.id;
  if (c->is_supervisor()) return start_nested(self, *c);
  if (!c->proc && !spawn_worker(self, *c)) return;
  if (auto limit = start_timeout_ms(*c, self->state.place))
    after(self, *limit, [self, id, token, limit = *limit] { start_timed_out(self, id, token, limit); });
  self->request(c->proc, caf::infinite, start_atom_v)
      .then([self, id, token](std::int32_t pid) { worker_started(self, id, token, pid); },
            [self, id, token](caf::error& err) { worker_start_failed(self, id, token, err); });
}

// Stops a nested supervisor: completed by its down message; brutal_kill and a missed
// shutdown timeout kill it.
void stop_nested(self_pointer self, child& c, std::uint64_t token) {
  const std::string id = c.spec.id;
  const std::int64_t shutdown = shutdown_of(c);
  if (shutdown == 0) {
    self->send_exit(c.sup, caf::exit_reason::kill);
    return;
  }
  self->request(c.sup, caf::infinite, stop_atom_v).then([](caf::ok_atom) {}, [](caf::error&) {});
  if (shutdown > 0)
    after(self, shutdown, [self, token, id] {
      // A nested supervisor missed its shutdown timeout.
      auto& st = self->state;
      child* c = st.find(id);
      if (c == nullptr) return;
      facts f;
      f.step_current = is_current(st, id, token);
      f.has_actor = static_cast<bool>(c->sup);
      if (decide(c->state, event::shutdown_timeout, f).then == action::kill)
        self->send_exit(c->sup, caf::exit_reason::kill);
    });
}

// The process actor answered stop request `token` with how the run ended.
void worker_stopped(self_pointer self, const std::string& id, std::uint64_t token, bool drop,
                    const exit_status& status) {
  auto& st = self->state;
  if (child* c = st.find(id); c != nullptr && c->state == child_state::stopping) {
    c->state = child_state::stopped;
    c->last = status;
    c->last_reason = stop_verdict(*c, status);
    c->last_end = end_reason{c->last_reason.empty() ? end_kind::stopped : end_kind::stop_timeout};
    c->stopped_run = c->incarnation;  // its child_exited report follows: no crash
    emit(self, *c, event_kind::stopped);
    c->pid = 0;
    if (drop) drop_child(self, id);
  }
  if (is_current(st, id, token)) step_done(self, id);
}

// Stop request `token` ended without the run's status: the process actor died during
// the stop (its down message, worker_down), or refused it (no run to stop). The step
// completes as a stop step of a stopped child does: once the old process is gone (OTP
// answers terminate_child only when the child is dead; never two instances).
void worker_stop_lost(self_pointer self, const std::string& id, std::uint64_t token, bool drop_if_temporary) {
  auto& st = self->state;
  if (child* c = st.find(id); c != nullptr && c->state == child_state::stopping) {
    // It handed its process to pkit's stopper, which may still be stopping it. (A
    // remote one's is the node's to stop: its agent stops the children of a relay that
    // ended.)
    if (!c->is_remote() && c->pid > 0) c->previous.watch(c->pid);  // (0: watched already, by worker_down)
    c->state = child_state::stopped;
    c->stopped_run = c->incarnation;
    c->pid = 0;
  }
  if (is_current(st, id, token)) stop_child_step(self, step{step::kind::stop, id, drop_if_temporary}, token);
}

namespace {

// Stop request `token`, sent to actor `to`, was answered with an error.
void worker_stop_refused(self_pointer self, const std::string& id, std::uint64_t token, bool drop_if_temporary,
                         const caf::actor_addr& to, const caf::error& err) {
  child* c = self->state.find(id);
  // Not about the child's current actor: its down came first and ended the stop
  // (worker_down), and the child may have moved on since — a newer run is not touched.
  if (c == nullptr || !c->proc || c->proc.address() != to) return;
  // The actor is ending: pkit's process actor answers its held stops with shutting_down
  // from its state's destructor, CAF bounces a queued request; its down message follows
  // and ends the stop with the run's end (worker_down), for a local worker as for a
  // remote one.
  if (is_pkit_error(err, error::shutting_down) || err == caf::sec::request_receiver_down) return;
  worker_stop_lost(self, id, token, drop_if_temporary);
}

}  // namespace

void stop_child_step(self_pointer self, const step& s, std::uint64_t token) {
  child* c = self->state.find(s.id);
  if (c == nullptr) return step_done(self, s.id);
  const std::string id = c->spec.id;
  // The group restart's own stop of this member: a start after it takes the restart over.
  if (s.group != 0 && c->group == s.group) c->group_stop_due = false;
  // A temporary bystander of a group restart is dropped.
  const bool drop = s.drop_if_temporary && c->spec.restart == restart_type::temporary;
  facts f;
  // Its down message came already (handle_exit leaves no nested supervisor running
  // without its actor): nothing left to wait for.
  f.nested_without_actor = c->is_supervisor() && !c->sup;
  // A worker whose actor died: its process may still be in its grace period, under
  // pkit's stopper. The stop completes when it is gone.
  f.previous_lingers = !c->active() && !c->is_supervisor() && c->previous.lingers();
  const action a = decide(c->state, event::stop_step, f).then;
  if (a == action::wait_previous) {
    if (c->state == child_state::restarting) c->state = child_state::stopped;  // the restart is cancelled
    return await_previous_run(self, *c, token, s);
  }
  c->previous_poll_ms = 0;
  if (a == action::stopped || a == action::skip) {
    if (a == action::stopped) c->state = child_state::stopped;
    if (drop) drop_child(self, s.id);
    return step_done(self, s.id);
  }
  c->state = child_state::stopping;
  if (c->is_supervisor()) return stop_nested(self, *c, token);
  self->request(c->proc, caf::infinite, stop_atom_v)
      .then([self, id, token, drop](exit_status status) { worker_stopped(self, id, token, drop, status); },
            [self, id, token, temp = s.drop_if_temporary, to = c->proc.address()](caf::error& err) {
              worker_stop_refused(self, id, token, temp, to, err);
            });
}

}  // namespace pkit::actors::detail::supervisor
