#pragma once

// The supervisor's state (internal): its children (the registry), the plans of steps it
// carries out, and the functions of its parts, one section per source file of this
// directory. One supervisor actor owns one supervisor_state; nothing here is thread-safe,
// every function runs in that actor.

#include <pkit/actors/error.hpp>
#include <pkit/actors/supervisor.hpp>

#include "../supervisor_old_run.hpp"
#include "../supervisor_protocol.hpp"
#include "rules.hpp"

#include <caf/actor_clock.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace pkit::actors::detail::supervisor {

// Time comes from the actor clock, so CAF's test_coordinator can drive it in tests.
using clock = caf::actor_clock;
using ms = std::chrono::milliseconds;

// Whether `e` is pkit's error `code` (category "pkit").
inline bool is_pkit_error(const caf::error& e, error code) {
  return e.category() == caf::atom("pkit") && e.code() == static_cast<std::uint8_t>(code);
}

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
  // The reason, machine-readable; kind none: derived from `status` (end_of_status).
  end_reason end;
};


// Stale news — a report, a reply or a timer about a run, a step or a restart that is no
// longer the current one — is recognised in one function per kind of news:
//   * the children's reports (child_started, child_ready, child_exited): current_run
//     (reports.cpp) — the sender is the child's current actor (from_child), the run's
//     incarnation is not older than the child's (run_offset), and an exit is not of a
//     run we stopped ourselves (stopped_run);
//   * the replies to a plan's steps (start, stop) and the timers of a step (start
//     timeout, shutdown timeout, waiting for the previous run): is_current (plan.cpp), the
//     step's token (the start step's reply then waits for child_ready: ready_token);
//   * a group restart's start after its backoff: the member's `group` is still that
//     restart's (member_start in restarts.cpp, the group_start rows);
//   * the supervisor's timers after shutdown: on_timer finds no token (pending_timers is
//     cleared by shut_down).
// The two flags failed_run and drop_after_exit are not staleness: they say what the exit
// of a run whose start failed means (the start_failed and exit_report rows of rules.cpp).
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
  end_reason last_end;      // last_reason, machine-readable (child_info::last_end)
  int failed_starts = 0;         // consecutive starts that died before min_uptime
  int consecutive_restarts = 0;  // for backoff
  std::uint64_t stopped_run = 0;         // the last run we stopped: its exit report is no crash
  // The pending group restart (one_for_all / rest_for_one; a one_for_one restart is a
  // group of one) that will start this child, 0 if none. While it is set, an exit of the
  // child's current run is part of that restart, not a new one (OTP: the supervisor
  // stops the group synchronously, so a sibling's own exit is consumed by that stop).
  std::uint64_t group = 0;
  // That restart still has to stop this child (a member other than the one whose exit
  // caused it): a start before that stop — a step of a plan queued ahead of the restart's
  // stop plan — does not take the restart over; it keeps `group`, and the restart stops
  // that run and starts the child again (OTP: the restart waits for the start under way,
  // then terminates the child like the rest of the group). Cleared by that stop step.
  bool group_stop_due = false;
  std::uint64_t started_by_group = 0;  // the group restart the current run's start was for
  bool drop_after_exit = false;  // a start_child that failed: report its exit, then remove it
  // The current run failed to start (not ready) but its process exists: its exit ends
  // the failed start. (A process exists once child_started came, which precedes the
  // process actor's error reply.)
  bool failed_run = false;
  std::uint64_t ready_token = 0;  // a start step that completes with this child's child_ready
  clock::time_point started_at{};
  // When the restart this child waits for is due (its backoff's end): a wider group restart
  // that takes this one over waits at least as long, so that a crash-looping member's
  // backoff is not cut short by a sibling's first, short one.
  clock::time_point restart_due{};
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
  // Told how this step ended (each start_child request's own answer; a group restart's
  // stop of a member, which then waits for the restart).
  std::function<void(const caf::error&)> done = {};
  std::uint64_t group = 0;  // a group restart's stop of a member: that restart (child::group_stop_due)
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
    bool drop_if_temporary = false;  // the step's (a stop's), for a stop its actor's end completes
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
  // The previous runs of children removed while their process may still be ending (a
  // start_child that failed after making a process, a temporary child dropped): a child
  // added again under the same id waits for it as for its own — never two instances of
  // one id. An entry goes once its process has exited (pruned on each remove) or when a
  // child of its id takes it.
  std::unordered_map<std::string, detail::old_run> removed_runs;

  // Last, or before the child `before` (which must exist).
  void add(child c, const std::string& before = {}) {
    const std::string id = c.spec.id;
    if (auto r = removed_runs.find(id); r != removed_runs.end()) {
      if (!c.previous.lingers()) c.previous = std::move(r->second);
      removed_runs.erase(r);
    }
    const auto at = before.empty() ? children.end() : index.at(before);
    index.emplace(id, children.insert(at, std::move(c)));
  }
  void remove(const std::string& id) {
    auto i = index.find(id);
    if (i == index.end()) return;
    for (auto r = removed_runs.begin(); r != removed_runs.end();) r = r->second.lingers() ? std::next(r) : removed_runs.erase(r);
    if (i->second->previous.lingers()) removed_runs[id] = std::move(i->second->previous);
    children.erase(i->second);
    index.erase(i);
  }
  void clear() {
    children.clear();
    index.clear();
    by_actor.clear();
  }
};

using self_pointer = private_supervisor_actor::stateful_pointer<supervisor_state>;

// -- the child registry and what it tells (registry.cpp) ---------------------------------

/// Whether the message being handled was sent by child `c`'s current actor.
bool from_child(self_pointer self, const child& c);
child_info info_of(const child& c);
/// Answers a start/restart request with the child's state, or unknown_child if it is gone.
void deliver_info(self_pointer self, caf::typed_response_promise<child_info>& rp, const std::string& id);
void publish(self_pointer self, const supervisor_event& e);
void subscribe(self_pointer self, caf::actor who, event_mask kinds, bool whole_tree = false);
std::vector<event_subscriber> inherited_subscribers(self_pointer self);
void unsubscribe(self_pointer self, const caf::actor_addr& who);
void emit(self_pointer self, const child& c, event_kind kind, std::int64_t delay_ms = 0, std::string reason = {});
std::string end_of(const child& c);
void report(self_pointer self, supervisor_report level, const std::string& text);
/// Runs `fn` after `delay_ms` (a restart_timer through the timer relay); returns its token.
std::uint64_t after(self_pointer self, std::int64_t delay_ms, std::function<void()> fn);
void discard_actor(self_pointer self, child& c);
void drop_child(self_pointer self, const std::string& id);

// -- the plan executor (plan.cpp) -------------------------------------------------------

bool current_step_is(const supervisor_state& st, step::kind what, const std::string& id);
bool is_current(const supervisor_state& st, const std::string& id, std::uint64_t token);
void finish_plan(self_pointer self, const caf::error& err, const std::string& failed);
void end_step(self_pointer self, const std::string& id, const caf::error& err);
void step_done(self_pointer self, const std::string& id);
void step_failed(self_pointer self, const std::string& id, const caf::error& err);
void complete_ready_step(self_pointer self, child& c);
void run_next_step(self_pointer self);
void schedule(self_pointer self, plan p);
std::deque<step> stop_all_steps(const supervisor_state& st, bool drop_temporary);

// -- the steps: starting and stopping one child (steps.cpp) ------------------------------

std::int64_t shutdown_of(const child& c);
void start_child_step(self_pointer self, const step& s, std::uint64_t token);
/// Drops child `c`'s worker actor, which has ended: no monitor, no handle; a local run it
/// had is watched until gone (the next run waits for it).
void forget_worker(self_pointer self, child& c);
void stop_child_step(self_pointer self, const step& s, std::uint64_t token);

// -- exits, restarts, shutdown (restarts.cpp) -------------------------------------------

run_end end_of_actor(self_pointer self, const caf::error& reason);
/// The end_reason of a run that ended with `status` (exited, signaled, lost; none if no status).
end_reason end_of_status(const std::optional<exit_status>& status);
/// The end_reason of a failed start: start_failed, with the start_failure `err` carries.
end_reason end_of_start_error(const caf::error& err);
/// The end_reason of a nested supervisor that ended with `reason` on its own.
end_reason end_of_nested(const caf::error& reason);
void handle_exit(self_pointer self, const std::string& id, run_end end);
/// Stop request `token` of child `id` got no reply, or will get none: its actor is gone.
void worker_stop_lost(self_pointer self, const std::string& id, std::uint64_t token, bool drop_if_temporary);
void give_up(self_pointer self, const child& last);
void shut_down(self_pointer self, caf::error reason);

// -- the actor's message handlers (requests.cpp, reports.cpp) ----------------------------

caf::result<child_info> add_and_start(self_pointer self, child_spec spec, const std::string& before = {});
caf::result<child_info> start_child(self_pointer self, child_spec spec, const std::string& before = {});
caf::result<child_info> start_child_with_args(self_pointer self, const std::vector<std::string>& args);
caf::result<caf::ok_atom> terminate_child(self_pointer self, const std::string& id);
caf::result<child_info> restart_child(self_pointer self, const std::string& id);
caf::result<caf::ok_atom> delete_child(self_pointer self, const std::string& id);
child_counts count_children(const supervisor_state& st);
caf::result<caf::ok_atom> stop(self_pointer self);
void on_child_node(self_pointer self, const std::string& id, std::string node);
void on_child_started(self_pointer self, const std::string& id, std::uint64_t inc, std::int32_t pid);
void on_child_ready(self_pointer self, const std::string& id, std::uint64_t inc, std::int32_t pid);
void on_child_exited(self_pointer self, const std::string& id, std::uint64_t inc, const exit_status& status);
void on_timer(self_pointer self, const restart_timer& timer);
void on_down(self_pointer self, caf::down_msg& dm);
void on_exit(self_pointer self, caf::exit_msg& em);

}  // namespace pkit::actors::detail::supervisor
