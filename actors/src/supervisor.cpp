#include <pkit/actors/supervisor.hpp>

#include <pkit/actors/error.hpp>

#include "send_from.hpp"
#include "supervisor_old_run.hpp"
#include "supervisor_names.hpp"
#include "supervisor_protocol.hpp"
#include "supervisor_report.hpp"
#include "timer_relay.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_clock.hpp>
#include <caf/actor_registry.hpp>
#include <caf/atom.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <csignal>
#include <functional>
#include <iterator>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>

namespace pkit::actors {
namespace {

// Time comes from the actor clock, so CAF's test_coordinator can drive it in tests.
using clock = caf::actor_clock;
using ms = std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------
// The rules, as one table: what a child's exit leads to. Everything else in this file is
// bookkeeping that carries these decisions out as scheduled steps.
//
//   child state        × event                          → action
//   -----------------------------------------------------------------------------------
//   stopping           × exited (a stop we asked for)   → none: the stop step completes
//   stopped / fatal    × exited (stale, older run)      → none
//   running / starting × exited, a group restart pending → restarting: part of that
//                        for the child (child::group)      restart, not a new one
//   running / starting × exited, restart = temporary    → remove the child
//   running / starting × exited(0), restart = transient → stopped, not restarted
//   running / starting × any other exit                 → stopped, then restart:
//        died before min_uptime (a failed start),       → fatal: no more restarts
//          max_failed_starts reached                      (not counted by intensity)
//        not a failed start, and restarts in the last   → give up: stop all, exit
//          period > intensity                             with restart_limit
//        otherwise                                      → per strategy, after backoff
//                                                         (FATAL siblings left out)
//   starting           × start failed (exec, not ready) → in a restart: as an exit
//                                                         (counted); on request or at
//                                                         the supervisor's own start:
//                                                         stopped (stopping until the
//                                                         process made is gone), the
//                                                         error to the caller
//   any                × exit_msg not from the parent   → ignored (OTP)
//   any                × request once shutting down     → error shutting_down
enum class exit_action { none, remove, stop, restart };

// How a child's run ended: its process's exit status when there was a process, and the
// reason when the status cannot tell it (a nested supervisor's exit reason, a start
// error: start_failed with its stage and errno).
struct run_end {
  std::optional<exit_status> status;
  std::string reason;
  bool success = false;  // transient children are not restarted after a success
  // The end of a start that failed in a restart (never a success, whatever the status):
  // the group restart's plan ended there (see resume_group).
  bool failed_start = false;
};

run_end ended_with(const exit_status& s) { return {s, {}, s.success()}; }

exit_action decide(child_state state, restart_type type, bool success) {
  if (state != child_state::running && state != child_state::starting) return exit_action::none;
  if (type == restart_type::temporary) return exit_action::remove;
  if (type == restart_type::transient && success) return exit_action::stop;
  return exit_action::restart;
}

struct child {
  child_spec spec;
  process_actor proc;    // workers
  supervisor_actor sup;  // nested supervisors
  child_state state = child_state::stopped;
  std::uint64_t incarnation = 0;
  /// The incarnation when the current process actor was spawned: a new actor numbers its
  /// runs from 1 again, so its reports are offset by this to stay increasing.
  std::uint64_t run_offset = 0;
  std::int32_t pid = 0;
  std::uint32_t automatic_restarts = 0;
  std::uint32_t manual_restarts = 0;
  std::optional<exit_status> last;
  std::string last_reason;  // see run_end
  int failed_starts = 0;         // consecutive starts that died before min_uptime
  int consecutive_restarts = 0;  // for backoff
  std::uint64_t stopped_run = 0;         // the last run we stopped: its exit report is no crash
  // The pending group restart (one_for_all / rest_for_one; a one_for_one restart is a
  // group of one) that will start this child, 0 if none. While it is set, an exit of the
  // child's current run is part of that restart, not a new one (OTP: the supervisor
  // stops the group synchronously, so a sibling's own exit is consumed by that stop).
  std::uint64_t group = 0;
  std::uint64_t started_by_group = 0;  // the group restart the current run's start was for
  bool drop_after_exit = false;  // a start_child that failed: report its exit, then remove it
  // The current run failed to start (not ready) but its process exists: its exit ends
  // the failed start. (A process exists once child_started came, which precedes the
  // process actor's error reply.)
  bool failed_run = false;
  std::uint64_t ready_token = 0;  // a start step that completes with this child's child_ready
  clock::time_point started_at{};
  // The process of a run whose actor died under it (killed): handed to pkit's stopper, it
  // may still be in its stop timeout. The next run starts only once it has exited.
  detail::old_run previous;
  std::int64_t previous_poll_ms = 0;  // how long the last look at `previous` waited

  std::string node;  // where the current/last run of a remote worker is (child_node)

  bool is_supervisor() const { return !spec.supervisor.empty(); }
  // A worker on another node (issue 11): its pid is the node's, never watched or
  // signalled here (supervisor_options::place).
  bool is_remote() const { return !is_supervisor() && !spec.nodes.empty(); }
  bool active() const {
    return state == child_state::starting || state == child_state::running ||
           state == child_state::stopping;
  }
};

struct step {
  enum class kind { start, stop } what;
  std::string id;
  bool drop_if_temporary = false;  // a bystander stopped by a group restart
  // For a plan of independent steps (on_failure::each): told how this step ended.
  std::function<void(const caf::error&)> done = {};
};

// What to do when a plan's step fails (a child could not be started).
enum class on_failure {
  fail_supervisor,  // the initial start: OTP's init failure
  report,           // restart_child: the caller gets the error
  each,             // start_child requests: each step reports to its own caller; the
                    // plan goes on (a later request joins it while it is the last plan)
  restart,          // a restart: counted, handled like an exit of that child
};

struct plan {
  std::deque<step> steps;
  on_failure failure_mode = on_failure::restart;
  // All its stop steps under way at once (a simple_one_for_one supervisor's shutdown,
  // OTP's terminate_dynamic_children: every child is told at once, one wait for all).
  bool concurrent_stops = false;
  std::function<void(const caf::error&, const std::string& failed_child)> done;
};

struct supervisor_state {
  static inline const char* name = "pkit.supervisor";

  supervisor_spec spec;  // flags and name; children live in `children`
  const fork_server* server = nullptr;
  const placement* place = nullptr;  // remote workers (issue 11); may be null
  // The parent (the observer given at spawn), by address: a strong handle here and one
  // to us in the parent would be a cycle that keeps both alive, and the actor system
  // with them, after the application released the tree.
  caf::actor_addr parent;
  std::string parent_id;  // our child id in the parent
  std::list<child> children;  // in start order; a list, so removing one is O(1)
  std::deque<clock::time_point> restarts;  // the intensity window
  std::map<std::string, clock::time_point> node_losses;  // when a lost node last counted (one_node_loss)
  std::deque<plan> plans;                  // the head one runs
  std::uint64_t token = 0;  // the last step token handed out (see pending)
  // The head plan's steps under way, by child id, each with its token: a reply that does
  // not match is late (its step was abandoned) and only updates the child. One step at a
  // time, except start steps: up to flags.start_concurrency of them.
  struct in_flight {
    step::kind what;
    std::uint64_t token;
    std::function<void(const caf::error&)> done;
  };
  std::map<std::string, in_flight> pending;
  bool in_run = false, run_again = false;  // run_next_step is not reentrant
  bool shutting_down = false;
  bool started = false;  // the initial start completed
  std::uint64_t next_simple_id = 1;
  std::uint64_t next_group = 1;  // names group restarts (child::group)
  std::optional<child_spec> template_spec;  // simple_one_for_one
  std::vector<caf::typed_response_promise<caf::ok_atom>> stop_waiters;
  std::vector<event_subscriber> subscribers;
  caf::actor timers;  // see timer_relay.hpp
  std::uint64_t next_timer = 1;
  std::map<std::uint64_t, std::function<void()>> pending_timers;  // by restart_timer token
  std::mt19937_64 rng{std::random_device{}()};

  // See ~process_actor_state: the relay must not outlive us until CAF's shutdown.
  ~supervisor_state() {
    if (timers) caf::anon_send_exit(timers, caf::exit_reason::user_shutdown);
    // Children are monitored, not linked (see start_child_step): when we end, however we
    // end (even killed), they are told here and stop their processes — nested
    // supervisors their whole subtree. The stops run side by side (OTP: a killed
    // supervisor's linked children get their exit signals at once), each with its own
    // stop signal and shutdown timeout; they are issued in reverse start order.
    for (auto i = children.rbegin(); i != children.rend(); ++i) {
      auto& c = *i;
      if (c.proc) caf::anon_send_exit(c.proc, caf::exit_reason::user_shutdown);
      if (c.sup) caf::anon_send_exit(c.sup, caf::exit_reason::user_shutdown);
    }
  }

  // Children by id, so that an event about one child costs the same with 10 or 10,000
  // (linear searches made starting or terminating N children O(N²)).
  std::unordered_map<std::string, std::list<child>::iterator> index;
  // Child ids by the address of their actor (process actor or nested supervisor), for
  // down messages. An entry lives while the child's actor is its current one.
  std::unordered_map<caf::actor_addr, std::string> by_actor;

  child* find(const std::string& id) {
    auto i = index.find(id);
    return i == index.end() ? nullptr : &*i->second;
  }
  std::list<child>::iterator position(const std::string& id) const { return index.at(id); }
  // Last, or before the child `before` (which must exist).
  void add(child c, const std::string& before = {}) {
    const std::string id = c.spec.id;
    const auto at = before.empty() ? children.end() : index.at(before);
    index.emplace(id, children.insert(at, std::move(c)));
  }
  void remove(const std::string& id) {
    auto i = index.find(id);
    if (i == index.end()) return;
    children.erase(i->second);
    index.erase(i);
  }
  void clear() {
    children.clear();
    index.clear();
    by_actor.clear();
  }
};

using detail::private_supervisor_actor;
using detail::restart_timer;
using self_pointer = private_supervisor_actor::stateful_pointer<supervisor_state>;

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

void subscribe(self_pointer self, caf::actor who, event_mask kinds, bool whole_tree = false) {
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

void emit(self_pointer self, const child& c, event_kind kind, std::int64_t delay_ms = 0,
          std::string reason = {}) {
  auto& st = self->state;
  if (st.subscribers.empty()) return;
  supervisor_event e;
  e.supervisor = st.spec.name;
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

void run_next_step(self_pointer self);

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

void handle_exit(self_pointer self, const std::string& id, run_end end);
void give_up(self_pointer self, const child& last);

// How a run ended whose worker actor went down under it. A remote worker's relay ends
// with node_down when the node is lost: that run's exit status is lost, and its reason
// says node_down (placement.hpp); any other end is the actor's own.
run_end end_of_actor(self_pointer self, const caf::error& reason) {
  if (reason.category() == caf::atom("pkit") && reason.code() == static_cast<std::uint8_t>(error::node_down))
    return run_end{exit_status::lost(), self->system().render(reason), false};
  return run_end{std::nullopt, "its process actor ended: " + self->system().render(reason), false};
}

// -- plan execution ----------------------------------------------------------------------

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
  const bool was_starting = c != nullptr && c->state == child_state::starting;
  std::string why = self->system().render(err);
  if (was_starting && mode != on_failure::restart) {
    // OTP: a failed start leaves the child terminated, and the caller gets the error. A
    // process it made is being killed: the child is stopping until its exit comes.
    c->last_reason = why;
    c->state = c->failed_run ? child_state::stopping : child_state::stopped;
    if (!c->failed_run) c->pid = 0;
  }
  if (mode == on_failure::each) return end_step(self, id, err);
  finish_plan(self, err, id);
  if (mode == on_failure::restart && was_starting) {
    // In a restart the failure counts as the child's exit: now if no process was made,
    // else when its exit comes (see child_exited).
    c = st.find(id);
    if (c != nullptr && c->state == child_state::starting && !c->failed_run)
      handle_exit(self, id, run_end{std::nullopt, std::move(why), false, true});
  }
}

// A start step whose reply came completes with the child's child_ready (see
// start_child_step), unless the plan was abandoned meanwhile.
void complete_ready_step(self_pointer self, child& c) {
  const std::uint64_t token = std::exchange(c.ready_token, 0);
  if (token != 0 && is_current(self->state, c.spec.id, token)) step_done(self, c.spec.id);
}

// OTP's shutdown: 0 brutal_kill, -1 infinity, else a timeout; by default infinity for a
// supervisor, the process spec's stop timeout for a worker.
std::int64_t shutdown_of(const child& c) {
  if (c.spec.shutdown_ms != default_shutdown) return c.spec.shutdown_ms;
  return c.is_supervisor() ? -1 : c.spec.process.stop_timeout_ms;
}

// Why a stopped worker's status is what it is, when that is worth saying: SIGKILL that
// the stop did not ask for first means it outlived its shutdown timeout (systemd's
// result 'timeout') — a stop that had to be forced. Empty for an orderly stop.
std::string stop_verdict(const child& c, const exit_status& status) {
  const std::int64_t shutdown = shutdown_of(c);
  if (!status.is_killed() || status.signal() != SIGKILL || shutdown <= 0 || c.spec.process.stop_signal == SIGKILL)
    return {};
  return std::string(stop_timeout_reason) + ": killed after " + std::to_string(shutdown) + " ms";
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

// How long a start request to a process actor may take before the actor counts as wedged
// (review D5): its readiness deadline plus the margin; none when the spec waits for
// readiness for ever (ready_timeout_ms -1). check_child bounds ready_timeout_ms, so the
// sum cannot overflow.
// A plain program's start (argv, no readiness protocol) is answered by the process
// actor's handler itself, at once: no timer for it (the common case stays as cheap).
std::optional<std::int64_t> start_timeout_ms(const child& c) {
  const process_spec& p = c.spec.process;
  const bool waits_for_readiness = p.notify_fd >= 0 || p.notify_socket;
  // A remote start crosses the network (a connect, a spawn): always bounded, though the
  // placement's actor bounds each of its own requests too.
  if (!waits_for_readiness && p.target.empty() && !c.is_remote()) return std::nullopt;
  if (waits_for_readiness && p.ready_timeout_ms < 0) return std::nullopt;
  return (waits_for_readiness ? p.ready_timeout_ms : 0) + start_margin_ms;
}

// The start request `token` got no reply in time: the process actor is wedged. It goes,
// with whatever it started (libpkit stops that process; the next run waits for it), and
// the start fails. A timer of ours, not CAF's request timeout: that one holds the
// supervisor strongly until it is due, so a released tree could not end meanwhile.
void start_timed_out(self_pointer self, const std::string& id, std::uint64_t token, std::int64_t limit_ms) {
  auto& st = self->state;
  child* c = st.find(id);
  // Answered (the step now waits for child_ready), or abandoned: nothing is wedged.
  if (!is_current(st, id, token) || c == nullptr || c->ready_token == token || !c->proc) return;
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

// The child's previous process is still ending (see child::previous): the start step
// goes on once it has exited. Polled on a timer, not waited for: the actor must not block,
// and the process is the reaper thread's to collect. (Event-driven would need the reaper
// thread to report the pidfd; the wait ends anyway with the step — a shutdown, a failed
// plan, terminate_child abandon it.)
void await_previous_run(self_pointer self, child& c, std::uint64_t token) {
  c.previous_poll_ms = std::clamp<std::int64_t>(c.previous_poll_ms * 2, previous_run_first_poll_ms,
                                                previous_run_max_poll_ms);
  after(self, c.previous_poll_ms, [self, id = c.spec.id, token] {
    if (!is_current(self->state, id, token)) return;  // abandoned (shutdown, a failed plan)
    start_child_step(self, step{step::kind::start, id}, token);
  });
}

void start_child_step(self_pointer self, const step& s, std::uint64_t token) {
  auto& st = self->state;
  child* c = st.find(s.id);
  if (c == nullptr || c->active()) return step_done(self, s.id);
  // Never two instances of one child: not before the last run's process has exited.
  if (!c->is_supervisor() && c->previous.lingers()) return await_previous_run(self, *c, token);
  c->previous_poll_ms = 0;
  c->state = child_state::starting;
  c->pid = 0;
  c->failed_run = false;
  c->started_by_group = std::exchange(c->group, 0);  // this start is the one a pending group restart was for
  c->started_at = self->clock().now();
  const std::string id = c->spec.id;
  if (c->is_supervisor()) {
    // An actor left from an earlier run (a completed stop leaves none) must not stay
    // beside the new one; the step always goes on.
    if (c->sup) discard_actor(self, *c);
    supervisor_options nested;
    nested.server = st.server;
    nested.place = st.place;
    nested.observer = process_observer{caf::actor_cast<caf::actor>(self), id};
    nested.subscribers = inherited_subscribers(self);
    c->sup = spawn_supervisor(self->system(), c->spec.supervisor.front(), std::move(nested));
    // Monitored, not linked: a link would carry a `kill` of the child to us, and CAF's
    // kill cannot be trapped — OTP turns it into `killed` so the supervisor restarts the
    // child; here the monitor's down message does the same. (Our own end reaches the
    // children through ~supervisor_state.)
    self->monitor(c->sup);
    st.by_actor.emplace(c->sup.address(), id);
    // Completed by child_ready (or failed by the down message).
    return;
  }
  if (!c->proc) {
    if (c->is_remote() && st.place == nullptr)
      return step_failed(self, id,
                         caf::make_error(error::start_failed, "child '" + id +
                                                                  "': nodes: no placement was given to the "
                                                                  "supervisor, so it cannot run on another node"));
    c->run_offset = c->incarnation;
    process_observer observer{caf::actor_cast<caf::actor>(self), id};
    c->proc = c->is_remote() ? st.place->spawn_remote(self->system(), c->spec.nodes, worker_spec(*c), std::move(observer))
                             : spawn_process(self->system(), worker_spec(*c), st.server, std::move(observer));
    self->monitor(c->proc);
    st.by_actor.emplace(c->proc.address(), id);
  }
  if (auto limit = start_timeout_ms(*c))
    after(self, *limit, [self, id, token, limit = *limit] { start_timed_out(self, id, token, limit); });
  self->request(c->proc, caf::infinite, start_atom_v)
      .then(
          [self, id, token](std::int32_t pid) {
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
          },
          [self, id, token](caf::error& err) {
            auto& st = self->state;
            if (!is_current(st, id, token)) return;
            child* c = st.find(id);
            // A process was made iff its child_started came (it precedes this reply):
            // then its exit is on the way and ends the failed start.
            if (c != nullptr && c->state == child_state::starting && c->pid > 0) c->failed_run = true;
            step_failed(self, id, err);
          });
}

void stop_child_step(self_pointer self, const step& s, std::uint64_t token) {
  auto& st = self->state;
  child* c = st.find(s.id);
  if (c == nullptr) return step_done(self, s.id);
  if (c->state == child_state::restarting || c->state == child_state::fatal ||
      c->state == child_state::stopped) {
    if (c->state == child_state::restarting) c->state = child_state::stopped;
    if (s.drop_if_temporary && c->spec.restart == restart_type::temporary) drop_child(self, s.id);
    return step_done(self, s.id);
  }
  c->state = child_state::stopping;
  const std::string id = c->spec.id;
  const bool drop = s.drop_if_temporary && c->spec.restart == restart_type::temporary;
  if (c->is_supervisor() && !c->sup) {
    // Its down message came already (handle_exit leaves no nested supervisor running
    // without its actor): nothing left to wait for.
    c->state = child_state::stopped;
    if (drop) drop_child(self, s.id);
    return step_done(self, s.id);
  }
  if (c->is_supervisor()) {
    // Completed by the down message; brutal_kill and a missed shutdown timeout kill it.
    const std::int64_t shutdown = shutdown_of(*c);
    if (shutdown == 0) {
      self->send_exit(c->sup, caf::exit_reason::kill);
    } else {
      self->request(c->sup, caf::infinite, stop_atom_v).then([](caf::ok_atom) {}, [](caf::error&) {});
      if (shutdown > 0)
        after(self, shutdown, [self, token, id] {
          // A nested supervisor missed its shutdown timeout.
          auto& st = self->state;
          child* c = st.find(id);
          if (is_current(st, id, token) && c != nullptr && c->state == child_state::stopping && c->sup)
            self->send_exit(c->sup, caf::exit_reason::kill);
        });
    }
    return;
  }
  self->request(c->proc, caf::infinite, stop_atom_v)
      .then(
          [self, id, token, drop](exit_status status) {
            auto& st = self->state;
            if (child* c = st.find(id); c != nullptr && c->state == child_state::stopping) {
              c->state = child_state::stopped;
              c->last = status;
              c->last_reason = stop_verdict(*c, status);
              c->stopped_run = c->incarnation;  // its child_exited report follows: no crash
              emit(self, *c, event_kind::stopped);
              c->pid = 0;
              if (drop) drop_child(self, id);
            }
            if (is_current(st, id, token)) step_done(self, id);
          },
          [self, id, token](caf::error&) {
            auto& st = self->state;
            if (child* c = st.find(id); c != nullptr && c->state == child_state::stopping) {
              // No reply: the process actor died during the stop and handed its process
              // to pkit's stopper, which may still be stopping it. (A remote one's is the
              // node's to stop: its agent stops the children of a relay that ended.)
              if (!c->is_remote()) c->previous.watch(c->pid);
              c->state = child_state::stopped;
              c->stopped_run = c->incarnation;
              c->pid = 0;
            }
            if (is_current(st, id, token)) step_done(self, id);
          });
}

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
      st.pending[s.id] = {s.what, token, std::move(s.done)};
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
  if (!c.is_remote() || c.node.empty() || c.last_reason.find("node_down") == std::string::npos) return false;
  constexpr auto same_loss = std::chrono::seconds(1);
  auto [at, fresh] = st.node_losses.try_emplace(c.node, now);
  if (!fresh && now - at->second < same_loss) return true;
  at->second = now;
  return false;
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
  if (!failed_start && !already_counted_node_loss(st, c, now) && over_intensity(st, now)) return give_up(self, c);
  if (flags.min_uptime_ms > 0) {
    c.failed_starts = uptime < flags.min_uptime_ms ? c.failed_starts + 1 : 0;
    if (flags.max_failed_starts > 0 && c.failed_starts >= flags.max_failed_starts) {
      c.state = child_state::fatal;
      const std::string why = "died within " + std::to_string(flags.min_uptime_ms) + " ms of starting " +
                              std::to_string(c.failed_starts) + " times in a row";
      report(self, supervisor_report::give_up, "child '" + c.spec.id + "' is FATAL, not restarted any more: " + why);
      emit(self, c, event_kind::fatal, 0, why);
      return;
    }
  }
  const std::int64_t delay = backoff_delay(st, c, now);
  ++c.automatic_restarts;
  c.state = child_state::restarting;
  emit(self, c, event_kind::restarting, delay);

  // The group to restart: the child alone, all children, or it and those after it (a
  // FATAL sibling stays as it is). Each member is marked with this restart: it takes over
  // a restart still pending for a member (whose own start is then skipped, so the group
  // starts in spec order), an exit of a member's current run is part of it (see
  // handle_exit), and a request about a member (terminate_child, restart_child) takes
  // the member out of it.
  const std::string id = c.spec.id;
  const std::uint64_t generation = st.next_group++;
  std::vector<std::string> group;
  if (flags.strategy == restart_strategy::one_for_all || flags.strategy == restart_strategy::rest_for_one) {
    auto pos = st.position(id);
    auto first = flags.strategy == restart_strategy::one_for_all ? st.children.begin() : pos;
    for (auto i = first; i != st.children.end(); ++i)
      if (i->spec.id == id || i->state != child_state::fatal) group.push_back(i->spec.id);
  } else {
    group.push_back(id);
  }
  for (const auto& g : group) st.find(g)->group = generation;
  // Starting the group (in order) is a plan of its own. The backoff before it is a timer,
  // not a step: a child waiting out its backoff holds up no other request.
  auto start_group = [self, group, generation] {
    auto& st = self->state;
    if (st.shutting_down) return;
    plan p;
    p.failure_mode = on_failure::restart;
    for (const auto& g : group) {
      child* c = st.find(g);
      if (c == nullptr || c->group != generation || c->active() || c->state == child_state::fatal) continue;
      p.steps.push_back({step::kind::start, g});
    }
    schedule(self, std::move(p));
  };
  auto start_after_backoff = [self, delay, start_group] {
    if (delay > 0) {
      after(self, delay, start_group);
    } else {
      start_group();
    }
  };
  if (group.size() == 1) return start_after_backoff();
  // Stop the rest of the group in reverse order first (temporary bystanders are dropped).
  plan stops;
  stops.failure_mode = on_failure::restart;
  for (auto i = group.rbegin(); i != group.rend(); ++i)
    if (*i != id) stops.steps.push_back({step::kind::stop, *i, true});
  stops.done = [start_after_backoff](const caf::error& err, const std::string&) {
    if (!err) start_after_backoff();
  };
  schedule(self, std::move(stops));
}

void shut_down(self_pointer self, caf::error reason);

// A significant child has ended without a restart: with any_significant the supervisor
// shuts down now; with all_significant once no significant child is left running.
void auto_shutdown_check(self_pointer self) {
  auto& st = self->state;
  switch (st.spec.flags.shutdown) {
    case auto_shutdown::never: return;
    case auto_shutdown::any_significant: break;
    case auto_shutdown::all_significant:
      for (const auto& c : st.children)
        if (c.spec.significant && (c.active() || c.state == child_state::restarting)) return;
      break;
  }
  shut_down(self, caf::exit_reason::normal);
}

// A group restart's start plan ended at a child whose start failed (step_failed). When
// that failure starts no new group restart — the child became FATAL, a transient child
// was not restarted, the supervisor gave up — the members after it would stay stopped
// for ever, a silent half-stopped group: they are started now.
void resume_group(self_pointer self, std::uint64_t generation) {
  auto& st = self->state;
  if (st.shutting_down) return;
  plan p;
  p.failure_mode = on_failure::restart;
  for (const auto& c : st.children)
    if (c.group == generation && !c.active() && c.state != child_state::fatal)
      p.steps.push_back({step::kind::start, c.spec.id});
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
  // OTP's child_terminated report (an abnormal end: not a transient child's success).
  if (!end.success && !st.shutting_down)
    report(self, supervisor_report::all,
           "child_terminated: child '" + id + "'" + (c->pid > 0 ? " pid " + std::to_string(c->pid) : std::string()) +
               " " + end_of(*c));
  emit(self, *c, event_kind::exited);  // with the pid of the run that ended
  c->pid = 0;
  const child_state was = c->state;
  if (st.shutting_down) {
    c->state = child_state::stopped;
    return;
  }
  if (c->group != 0 && (was == child_state::running || was == child_state::starting)) {
    // A group restart planned to stop this run: it ended on its own first, and is part
    // of that restart (which starts it again in its turn).
    c->state = child_state::restarting;
    return;
  }
  const bool significant = c->spec.significant;
  const exit_action action = decide(was, c->spec.restart, end.success);
  // Whatever follows, the run is over: a child that exited is not running (a supervisor
  // that gives up below must not wait for its stop).
  if (action != exit_action::none) c->state = child_state::stopped;
  switch (action) {
    case exit_action::none: return;
    case exit_action::remove: drop_child(self, id); break;
    case exit_action::stop: break;
    case exit_action::restart: restart(self, *c); return;
  }
  // OTP's auto_shutdown: a significant child that ended for good may end the supervisor.
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
  e.kind = event_kind::gave_up;
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

// -- requests ---------------------------------------------------------------------------

caf::result<child_info> add_and_start(self_pointer self, child_spec spec, const std::string& before = {}) {
  auto& st = self->state;
  if (st.shutting_down) return caf::make_error(error::shutting_down, st.spec.name);
  if (auto err = check_child(spec)) return err;
  if (st.find(spec.id) != nullptr) return caf::make_error(error::already_present, spec.id);
  if (!before.empty() && st.find(before) == nullptr)
    return caf::make_error(error::unknown_child, "start_child before '" + before + "': no such child");
  const std::string id = spec.id;
  child c;
  c.spec = std::move(spec);
  st.add(std::move(c), before);
  auto rp = self->make_response_promise<child_info>();
  step s{step::kind::start, id};
  s.done = [self, rp, id](const caf::error& err) mutable {
    auto& st = self->state;
    child* c = st.find(id);
    if (err) {
      // OTP: a child whose start fails is not added. If a process was made it is gone
      // (or going): its actor goes with the spec.
      if (c != nullptr) {
        if (c->failed_run && c->state == child_state::stopping) {
          // A process was made (it never got ready and is being killed): its exit is
          // reported to subscribers before the child goes.
          c->drop_after_exit = true;
        } else {
          drop_child(self, id);
        }
      }
      rp.deliver(err);
      return;
    }
    deliver_info(self, rp, id);
  };
  // Requests are served in order: this start joins the last plan only if that is a batch
  // of start_child requests too (then up to start_concurrency of them run at once).
  if (!st.plans.empty() && st.plans.back().failure_mode == on_failure::each) {
    st.plans.back().steps.push_back(std::move(s));
    run_next_step(self);
  } else {
    plan p;
    p.failure_mode = on_failure::each;
    p.steps.push_back(std::move(s));
    schedule(self, std::move(p));
  }
  return rp;
}

// OTP's {local, Name}: registered before any child starts, removed when the supervisor
// ends (however it ends), if the name is still ours. The name does not keep the
// supervisor alive (supervisor_names.hpp: not CAF's registry, which holds actors strongly).
caf::error register_name(self_pointer self) {
  const std::string& name = self->state.spec.flags.registered_name;
  if (!detail::register_supervisor_name(self->system(), name, self->address()))
    return caf::make_error(error::already_present, "registered_name '" + name + "' is taken");
  self->attach_functor([system = &self->system(), name, me = self->address()] {
    detail::unregister_supervisor_name(*system, name, me);
  });
  return caf::none;
}

private_supervisor_actor::behavior_type supervisor_impl(self_pointer self, supervisor_spec spec,
                                                        supervisor_options options) {
  auto& st = self->state;
  for (auto& s : options.subscribers)
    if (s.who) subscribe(self, std::move(s.who), s.kinds, s.whole_tree);
  process_observer& observer = options.observer;
  st.server = options.server;
  st.place = options.place;
  st.parent = observer.actor.address();
  st.parent_id = std::move(observer.id);
  observer.actor = nullptr;
  st.timers = detail::make_timer_relay(self->system());
  // OTP's init checks the child specs (check_childspecs) before starting any.
  caf::error invalid = check_supervisor_spec(spec);
  std::vector<child_spec> initial = std::move(spec.children);
  st.spec = std::move(spec);
  if (st.spec.name.empty()) st.spec.name = "supervisor";

  // Children report through anon messages and monitors; ~supervisor_state ends them with us.
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    unsubscribe(self, dm.source);  // a subscriber that terminated
    auto whose = st.by_actor.find(dm.source);
    if (whose == st.by_actor.end()) return;
    const std::string id = whose->second;
    st.by_actor.erase(whose);
    if (child* cp = st.find(id)) {
      child& c = *cp;
      if (c.is_supervisor()) {
        // A nested supervisor has no exit status: its exit reason is the truth.
        c.sup = nullptr;
        std::string why = dm.reason ? self->system().render(dm.reason) : std::string();
        if (c.state == child_state::stopping) {
          c.state = child_state::stopped;
          c.last.reset();
          c.last_reason = std::move(why);
          emit(self, c, event_kind::stopped);
          step_done(self, id);
        } else if (c.state == child_state::starting && current_step_is(st, step::kind::start, id)) {
          // It failed while starting its own children: a failed start (step_failed).
          step_failed(self, id, dm.reason ? dm.reason : caf::make_error(error::start_failed, id));
        } else {
          handle_exit(self, id, run_end{std::nullopt, std::move(why), !dm.reason});
        }
      } else {
        // A process actor died under us (killed): it handed its process, if one still
        // ran, to pkit's stopper, which gives it its stop signal and stop timeout. The
        // next run waits for it (see start_child_step).
        // A remote worker's pid is the node's, not ours to watch (supervisor_options::place).
        if (c.pid > 0 && !c.is_remote()) c.previous.watch(c.pid);
        c.proc = nullptr;
        complete_ready_step(self, c);  // its child_ready will not come
        if (c.active()) handle_exit(self, id, end_of_actor(self, dm.reason));
      }
    }
  });
  // Children are not linked to us. OTP: a supervisor ends when its parent tells it to;
  // an exit signal from anyone else is a message it ignores. An anonymous exit
  // (caf::anon_send_exit: its source is the receiver itself) is an order from the
  // application or from a parent that is going away (~supervisor_state), and is obeyed.
  self->set_exit_handler([self](caf::exit_msg& em) {
    if (em.source == self->address() || (em.source && em.source == self->state.parent))
      shut_down(self, em.reason);
  });

  // The initial start: every child in order, each after the previous is ready.
  plan boot;
  boot.failure_mode = on_failure::fail_supervisor;
  if (!invalid && st.spec.flags.strategy == restart_strategy::simple_one_for_one) {
    // OTP: one child spec, a template for the children start_child makes; none at start.
    st.template_spec = std::move(initial.front());
    initial.clear();
  }
  if (!invalid) {
    for (auto& c : initial) {
      boot.steps.push_back({step::kind::start, c.id});
      child ch;
      ch.spec = std::move(c);
      st.add(std::move(ch));
    }
  }
  boot.done = [self](const caf::error& err, const std::string& failed) {
    auto& st = self->state;
    if (err) {
      shut_down(self, caf::make_error(error::start_failed, st.spec.name + ": child " + failed +
                                                              " failed to start: " + self->system().render(err)));
      return;
    }
    st.started = true;
    // With us as the sender: the parent accepts it only from the supervisor it spawned.
    detail::send_from(self, caf::actor_cast<caf::actor>(st.parent), child_ready_atom_v, st.parent_id,
                      std::uint64_t{1}, std::int32_t{0});
  };
  if (!invalid && !st.spec.flags.registered_name.empty()) invalid = register_name(self);
  if (invalid) {
    st.clear();
    self->quit(invalid);  // a malformed spec: the supervisor never starts
  } else {
    schedule(self, std::move(boot));
  }

  return {
      [self](start_child_atom, child_spec spec) -> caf::result<child_info> {
        if (self->state.spec.flags.strategy == restart_strategy::simple_one_for_one)
          return caf::make_error(error::wrong_strategy, "simple_one_for_one takes start_child with args");
        return add_and_start(self, std::move(spec));
      },
      [self](start_child_atom, child_spec spec, std::string before) -> caf::result<child_info> {
        if (self->state.spec.flags.strategy == restart_strategy::simple_one_for_one)
          return caf::make_error(error::wrong_strategy, "simple_one_for_one takes start_child with args");
        return add_and_start(self, std::move(spec), before);
      },
      [self](start_child_atom, std::vector<std::string> args) -> caf::result<child_info> {
        auto& st = self->state;
        if (st.spec.flags.strategy != restart_strategy::simple_one_for_one || !st.template_spec)
          return caf::make_error(error::wrong_strategy, "start_child with args needs simple_one_for_one and a template child");
        child_spec c = *st.template_spec;
        c.id = c.id + "-" + std::to_string(st.next_simple_id++);
        auto& target_args = c.process.argv.empty() ? c.process.args : c.process.argv;
        target_args.insert(target_args.end(), args.begin(), args.end());
        return add_and_start(self, std::move(c));
      },
      [self](terminate_child_atom, std::string id) -> caf::result<caf::ok_atom> {
        auto& st = self->state;
        if (st.shutting_down) return caf::make_error(error::shutting_down, st.spec.name);
        child* c = st.find(id);
        if (c == nullptr) return caf::make_error(error::unknown_child, id);
        c->group = 0;  // a restart pending for it is cancelled
        auto rp = self->make_response_promise<caf::ok_atom>();
        plan p;
        p.steps = {{step::kind::stop, id}};
        p.done = [self, rp, id](const caf::error& err, const std::string&) mutable {
          auto& st = self->state;
          if (err) {
            rp.deliver(err);
            return;
          }
          child* c = st.find(id);
          if (c != nullptr && (c->spec.restart == restart_type::temporary ||
                               st.spec.flags.strategy == restart_strategy::simple_one_for_one))
            drop_child(self, id);
          rp.deliver(caf::ok_atom_v);
        };
        schedule(self, std::move(p));
        return rp;
      },
      [self](restart_child_atom, std::string id) -> caf::result<child_info> {
        auto& st = self->state;
        if (st.shutting_down) return caf::make_error(error::shutting_down, st.spec.name);
        if (st.spec.flags.strategy == restart_strategy::simple_one_for_one)
          return caf::make_error(error::wrong_strategy, "simple_one_for_one: restart_child is not supported (OTP)");
        child* c = st.find(id);
        if (c == nullptr) return caf::make_error(error::unknown_child, id);
        ++c->manual_restarts;
        c->failed_starts = 0;
        c->group = 0;  // this request starts it
        auto rp = self->make_response_promise<child_info>();
        plan p;
        p.failure_mode = on_failure::report;
        p.steps = {{step::kind::stop, id}, {step::kind::start, id}};
        p.done = [self, rp, id](const caf::error& err, const std::string&) mutable {
          if (err) {
            rp.deliver(err);
            return;
          }
          deliver_info(self, rp, id);
        };
        schedule(self, std::move(p));
        return rp;
      },
      [self](delete_child_atom, std::string id) -> caf::result<caf::ok_atom> {
        auto& st = self->state;
        // OTP's {error, simple_one_for_one}: its children are deleted when they stop.
        if (st.spec.flags.strategy == restart_strategy::simple_one_for_one)
          return caf::make_error(error::wrong_strategy, "simple_one_for_one: delete_child is not supported (OTP)");
        child* c = st.find(id);
        if (c == nullptr) return caf::make_error(error::unknown_child, id);
        if (c->active() || c->state == child_state::restarting)
          return caf::make_error(error::still_running, id);
        drop_child(self, id);
        return caf::ok_atom_v;
      },
      [self](which_children_atom) {
        std::vector<child_info> out;
        for (const auto& c : self->state.children) out.push_back(info_of(c));
        return out;
      },
      [self](get_childspec_atom, const std::string& id) -> caf::result<child_spec> {
        if (const child* c = self->state.find(id)) return c->spec;
        return caf::make_error(error::unknown_child, id);
      },
      [self](count_children_atom) {
        child_counts n;
        for (const auto& c : self->state.children) {
          ++n.specs;
          if (c.active()) ++n.active;
          if (c.is_supervisor()) {
            ++n.supervisors;
          } else {
            ++n.workers;
          }
        }
        return n;
      },
      [self](subscribe_atom, caf::actor subscriber) {
        subscribe(self, std::move(subscriber), all_events);
        return caf::ok_atom_v;
      },
      [self](subscribe_atom, caf::actor subscriber, event_mask kinds) {
        subscribe(self, std::move(subscriber), kinds);
        return caf::ok_atom_v;
      },
      [self](unsubscribe_atom, caf::actor subscriber) {
        unsubscribe(self, subscriber.address());
        // Its monitor goes too, unless it is also one of our children (monitored as such).
        if (self->state.by_actor.count(subscriber.address()) == 0) self->demonitor(subscriber);
        return caf::ok_atom_v;
      },
      [self](stop_atom) -> caf::result<caf::ok_atom> {
        auto rp = self->make_response_promise<caf::ok_atom>();
        self->state.stop_waiters.push_back(rp);
        shut_down(self, caf::exit_reason::normal);
        return rp;
      },
      [self](child_node_atom, std::string id, std::string node) {
        // A remote worker's relay placed its child (placement.hpp): shown in child_info.
        child* c = self->state.find(id);
        if (c != nullptr && c->is_remote() && from_child(self, *c)) c->node = std::move(node);
      },
      [self](child_started_atom, std::string id, std::uint64_t inc, std::int32_t pid) {
        auto& st = self->state;
        child* c = st.find(id);
        if (c == nullptr || !from_child(self, *c)) return;
        if (!c->is_supervisor()) inc += c->run_offset;
        if (inc < c->incarnation) return;
        c->incarnation = inc;
        c->pid = pid;
        emit(self, *c, event_kind::started);
      },
      [self](child_ready_atom, std::string id, std::uint64_t inc, std::int32_t pid) {
        auto& st = self->state;
        child* c = st.find(id);
        if (c == nullptr || !from_child(self, *c)) return;
        if (c->is_supervisor()) {
          if (c->state != child_state::starting) return;
          c->state = child_state::running;
          ++c->incarnation;
          emit(self, *c, event_kind::started);
          emit(self, *c, event_kind::ready);
          step_done(self, id);
          return;
        }
        inc += c->run_offset;
        if (inc < c->incarnation) return;
        c->incarnation = inc;
        c->pid = pid;
        // Not for a run already being stopped (or ended): it is not ready for anyone.
        if (c->state == child_state::starting || c->state == child_state::running) emit(self, *c, event_kind::ready);
        complete_ready_step(self, *c);
      },
      [self](child_exited_atom, std::string id, std::uint64_t inc, exit_status status) {
        auto& st = self->state;
        child* c = st.find(id);
        if (c == nullptr || !from_child(self, *c)) return;
        // Stale (an older run), or the end of a run we stopped ourselves (its stop reply
        // came first and told it).
        if (!c->is_supervisor()) inc += c->run_offset;
        if (c == nullptr || inc < c->incarnation || inc <= c->stopped_run) return;
        c->incarnation = inc;
        if (c->failed_run && c->state == child_state::stopping) {
          // The end of a start that failed on request (start_child, restart_child, the
          // initial start): the child stays terminated; its start error stays its reason.
          c->failed_run = false;
          c->state = child_state::stopped;
          c->last = status;
          emit(self, *c, event_kind::exited);
          c->pid = 0;
          if (c->drop_after_exit) drop_child(self, id);
          return;
        }
        // Only a run we consider alive can end on its own; the end of one we are stopping
        // is told by the stop's reply. (The end of a failed restart counts: it is starting.)
        if (c->state != child_state::running && c->state != child_state::starting) return;
        const bool failed_start = std::exchange(c->failed_run, false);
        run_end end = ended_with(status);
        if (failed_start) {
          // A run that never got ready did not succeed, even if it exited with 0.
          end.reason = c->last_reason;
          end.success = false;
          end.failed_start = true;
        }
        handle_exit(self, id, std::move(end));
      },
      [self](const restart_timer& timer) {
        const std::uint64_t token = timer.token;
        auto& timers = self->state.pending_timers;
        auto i = timers.find(token);
        if (i == timers.end()) return;
        auto fn = std::move(i->second);
        timers.erase(i);
        fn();
      },
  };
}

}  // namespace

supervisor_actor spawn_supervisor(caf::actor_system& system, supervisor_spec spec,
                                  const fork_server* server, process_observer observer,
                                  std::vector<event_subscriber> subscribers) {
  // Converted to the public interface: the private protocol stays in pkit's sources.
  supervisor_options options;
  options.server = server;
  options.observer = std::move(observer);
  options.subscribers = std::move(subscribers);
  return spawn_supervisor(system, std::move(spec), std::move(options));
}

supervisor_actor spawn_supervisor(caf::actor_system& system, supervisor_spec spec, supervisor_options options) {
  private_supervisor_actor handle = system.spawn(supervisor_impl, std::move(spec), std::move(options));
  return handle;
}

}  // namespace pkit::actors
