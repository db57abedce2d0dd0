// The supervisor's rules (see rules.hpp): every decision about a child, one row each.
//
// Read a row as: a child in one of these states, on this event, when the condition holds,
// leads to this action. Rows are tried top to bottom; the first match is the rule.
// `active` = starting, running, stopping; `alive` = starting, running.

#include "rules.hpp"

#include <array>
#include <atomic>
#include <iterator>

namespace pkit::actors::detail::supervisor {

namespace {

constexpr state_set any = any_state;
constexpr state_set stopped_ = bit(child_state::stopped);
constexpr state_set starting_ = bit(child_state::starting);
constexpr state_set restarting_ = bit(child_state::restarting);
constexpr state_set stopping_ = bit(child_state::stopping);
constexpr state_set fatal_ = bit(child_state::fatal);
constexpr state_set not_active = stopped_ | restarting_ | fatal_;  // the run is over (or not begun)

using E = event;
using W = when;
using A = action;

// clang-format off
constexpr std::array table{
//    states                     event               condition                    action                  why
// -- the supervisor's own end ---------------------------------------------------------------------------
rule{any,                        E::exit_signal,     W::not_from_parent,          A::ignore,             "an exit signal from anyone but the parent is ignored (OTP)"},
rule{any,                        E::exit_signal,     W::always,                   A::shut_down,          "the parent's (or an anonymous) exit signal shuts the supervisor down"},
rule{any,                        E::significant_end, W::no_auto_shutdown,         A::ignore,             "auto_shutdown never: a significant child's end changes nothing"},
rule{any,                        E::significant_end, W::significant_left,         A::ignore,             "all_significant: another significant child is still alive"},
rule{any,                        E::significant_end, W::always,                   A::shut_down,          "any_significant, or the last significant child ended: shut down"},
// -- requests ---------------------------------------------------------------------------------------------
rule{any,                        E::request,         W::shutting_down,            A::refuse,             "a request once shutting down is refused (shutting_down)"},
rule{any,                        E::request,         W::always,                   A::accept,             "start/terminate/restart_child become a plan of steps"},
rule{active_states|restarting_,  E::delete_request,  W::always,                   A::refuse,             "delete_child of a live or restarting child: still_running"},
rule{any,                        E::delete_request,  W::always,                   A::remove,             "delete_child of a stopped or FATAL child removes it"},
// -- the steps of a plan ----------------------------------------------------------------------------------
rule{active_states,              E::start_step,      W::always,                   A::skip,               "a start step for a child that runs already is done"},
rule{any,                        E::start_step,      W::previous_lingers,         A::wait_previous,      "never two instances: wait for the previous run's process"},
rule{any,                        E::start_step,      W::always,                   A::start,              "start a run"},
rule{not_active,                 E::stop_step,       W::previous_lingers,         A::wait_previous,      "a worker whose actor died: the stop completes once its process is gone"},
rule{restarting_,                E::stop_step,       W::always,                   A::stopped,            "a stop step cancels a pending restart: stopped"},
rule{stopped_|fatal_,            E::stop_step,       W::always,                   A::skip,               "a stop step for a stopped or FATAL child is done"},
rule{any,                        E::stop_step,       W::nested_without_actor,     A::stopped,            "a nested supervisor already gone: stopped"},
rule{any,                        E::stop_step,       W::always,                   A::stop,               "stopping: stop the actor (kill for brutal_kill)"},
// -- start failures ---------------------------------------------------------------------------------------
rule{starting_,                  E::start_failed,    W::on_request_with_process,  A::terminate_awaiting, "on request, a process was made: terminated once it has exited"},
rule{starting_,                  E::start_failed,    W::on_request,               A::terminate,          "on request: terminated (OTP), the error to the caller"},
rule{starting_,                  E::start_failed,    W::with_process,             A::await_exit,         "in a restart, a process was made: its exit counts"},
rule{starting_,                  E::start_failed,    W::always,                   A::end_run,            "in a restart: the failure counts as the run's end"},
rule{any,                        E::start_failed,    W::always,                   A::ignore,             "no longer starting: only the plan fails"},
// -- what the children report -----------------------------------------------------------------------------
rule{any,                        E::ready_report,    W::stale,                    A::ignore,             "a ready report from an older run or another actor"},
rule{alive,                      E::ready_report,    W::always,                   A::ready,              "ready: the event, and the start step completes"},
rule{any,                        E::ready_report,    W::always,                   A::skip,               "a run already stopping is ready for no one: the step completes"},
rule{any,                        E::exit_report,     W::stale,                    A::ignore,             "an exit report from an older run, a stopped run or another actor"},
rule{stopping_,                  E::exit_report,     W::failed_start_process,     A::end_failed_start,   "the exit of a start that failed on request: stopped"},
rule{alive,                      E::exit_report,     W::always,                   A::end_run,            "a live run exited"},
rule{any,                        E::exit_report,     W::always,                   A::ignore,             "a run being stopped: its stop's reply tells its end"},
rule{stopping_,                  E::nested_down,     W::always,                   A::stopped,            "a nested supervisor we stopped has ended: the stop step completes"},
rule{starting_,                  E::nested_down,     W::start_step_under_way,     A::fail_start,         "a nested supervisor ended during its start: a failed start"},
rule{any,                        E::nested_down,     W::always,                   A::end_run,            "a nested supervisor ended on its own"},
rule{stopping_,                  E::worker_down,     W::failed_start_process,     A::end_failed_start,   "the actor of a start that failed on request died before its exit report: stopped"},
rule{active_states,              E::worker_down,     W::always,                   A::end_run,            "a worker's process actor died under it"},
rule{any,                        E::worker_down,     W::always,                   A::ignore,             "a process actor of a child not running died"},
// -- a run's end -------------------------------------------------------------------------------------------
rule{any,                        E::run_ended,       W::shutting_down,            A::stopped,            "shutting down: no restart"},
rule{alive,                      E::run_ended,       W::in_group,                 A::join_group,         "a group restart planned to stop this run: part of it"},
rule{alive,                      E::run_ended,       W::temporary,                A::remove,             "temporary: removed"},
rule{alive,                      E::run_ended,       W::transient_success,        A::stopped,            "transient and a success: not restarted"},
rule{alive,                      E::run_ended,       W::always,                   A::restart,            "restart (see restart_due)"},
rule{any,                        E::run_ended,       W::always,                   A::record,             "a run not alive (stopping, ...) ended: told, state kept"},
rule{any,                        E::restart_due,     W::start_limit_reached,      A::fatal,              "died before min_uptime max_failed_starts times: FATAL"},
rule{any,                        E::restart_due,     W::over_intensity,           A::give_up,            "more than intensity restarts in period: give up"},
rule{any,                        E::restart_due,     W::always,                   A::restart_group,      "restart per strategy, after the backoff"},
// -- timers ------------------------------------------------------------------------------------------------
rule{any,                        E::group_start,     W::shutting_down,            A::ignore,             "a backoff that ends during shutdown starts nothing"},
rule{any,                        E::group_start,     W::out_of_group,             A::skip,               "a member taken out of the group (a request, a newer restart)"},
// (unreachable, kept as a guard: see tests/supervisor/supervisor_table_coverage.cpp)
rule{active_states|fatal_,       E::group_start,     W::always,                   A::skip,               "a member running already, or FATAL, is not started"},
rule{any,                        E::group_start,     W::always,                   A::start,              "start the member (in spec order)"},
rule{any,                        E::start_timeout,   W::not_current,              A::ignore,             "a start timer whose start was answered or abandoned"},
rule{any,                        E::start_timeout,   W::always,                   A::kill,               "no answer to a start: the actor goes, the start fails"},
rule{stopping_,                  E::shutdown_timeout,W::current_with_actor,       A::kill,               "a nested supervisor missed its shutdown timeout: killed"},
rule{any,                        E::shutdown_timeout,W::always,                   A::ignore,             "a shutdown timer whose stop has completed"},
};
// clang-format on

bool holds(when w, const facts& f) {
  switch (w) {
    case W::always: return true;
    case W::not_from_parent: return !f.from_parent;
    case W::shutting_down: return f.shutting_down;
    case W::stale: return f.stale;
    case W::previous_lingers: return f.previous_lingers;
    case W::nested_without_actor: return f.nested_without_actor;
    case W::on_request_with_process: return f.on_request && f.process_made;
    case W::on_request: return f.on_request;
    case W::with_process: return f.process_made;
    case W::failed_start_process: return f.process_made;
    case W::start_step_under_way: return f.start_step_under_way;
    case W::in_group: return f.in_group;
    case W::temporary: return f.restart == restart_type::temporary;
    case W::transient_success: return f.restart == restart_type::transient && f.success;
    case W::start_limit_reached: return f.start_limit_reached;
    case W::over_intensity: return f.over_intensity;
    case W::out_of_group: return f.out_of_group;
    case W::not_current: return !f.step_current || !f.has_actor;
    case W::current_with_actor: return f.step_current && f.has_actor;
    case W::no_auto_shutdown: return f.no_auto_shutdown;
    case W::significant_left: return f.significant_left;
  }
  return false;
}

// Checked when pkit is compiled: every event ends with a catch-all row.
constexpr bool every_event_has_a_last_row() {
  for (std::size_t e = 0; e < event_count; ++e) {
    const rule* last = nullptr;
    for (const rule& r : table)
      if (static_cast<std::size_t>(r.on) == e) last = &r;
    if (last == nullptr || last->states != any || last->condition != W::always) return false;
  }
  return true;
}
static_assert(every_event_has_a_last_row(), "each event needs a last row for any state, always");

std::atomic<row_observer> observer{nullptr};

const rule& told(const rule& r) {
  if (const row_observer o = observer.load(std::memory_order_relaxed)) o(row_of(r));
  return r;
}

}  // namespace

std::span<const rule> rules() { return table; }

const rule& decide(child_state state, event on, const facts& f) {
  for (const rule& r : table)
    if (r.on == on && (r.states & bit(state)) != 0 && holds(r.condition, f)) return told(r);
  return table.back();  // unreachable (every_event_has_a_last_row)
}

void observe_rows(row_observer o) { observer.store(o, std::memory_order_relaxed); }

const rule& decide(event on, const facts& f) { return decide(child_state::stopped, on, f); }

std::size_t row_of(const rule& r) { return static_cast<std::size_t>(&r - table.data()); }

const char* to_string(event e) {
  static constexpr const char* names[] = {
      "exit_signal", "request",     "delete_request", "start_step",   "stop_step",    "start_failed",
      "exit_report", "nested_down", "worker_down",    "run_ended",    "restart_due",  "group_start",
      "ready_report", "significant_end", "start_timeout", "shutdown_timeout"};
  return names[static_cast<std::size_t>(e)];
}

const char* to_string(action a) {
  static constexpr const char* names[] = {
      "ignore",     "shut_down",  "refuse",     "accept",     "remove",        "skip",
      "wait_previous", "start",   "stopped",    "stop",       "terminate_awaiting", "terminate",
      "await_exit", "end_failed_start", "fail_start", "end_run", "record",   "join_group",
      "restart",    "fatal",      "give_up",    "restart_group", "kill",    "ready"};
  return names[static_cast<std::size_t>(a)];
}

}  // namespace pkit::actors::detail::supervisor
