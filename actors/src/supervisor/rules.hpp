#pragma once

// The supervisor's rules, as one table: child state × event → action (internal).
//
// Every decision the supervisor makes about a child is a row of `rules` (rules.cpp, where
// the table is laid out to be read); the handlers (reports.cpp, requests.cpp), the plan
// executor (plan.cpp, steps.cpp) and the restart logic (restarts.cpp) gather the facts,
// ask `decide`, and carry out the action it names. The model is s6-supervise's state ×
// event table. Rows are tried in order; the first whose states, event and condition
// match is the rule. Pure: no actor, no clock, so every row is unit-tested
// (tests/supervisor/supervisor_rules_test.cpp).

#include <pkit/actors/messages.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

namespace pkit::actors::detail::supervisor {

/// What happened, to a child (or to the supervisor, for exit_signal and requests).
enum class event : std::uint8_t {
  exit_signal,       ///< an exit message came (from the parent, the supervisor itself, or anyone)
  request,           ///< start_child, terminate_child or restart_child
  delete_request,    ///< delete_child
  start_step,        ///< a plan's start step reached the child
  stop_step,         ///< a plan's stop step reached the child
  start_failed,      ///< a start step failed (exec, readiness, start timeout, nested init)
  exit_report,       ///< child_exited from the child's process actor
  nested_down,       ///< a nested supervisor's actor ended
  worker_down,       ///< a worker's process actor ended (killed)
  run_ended,         ///< the child's current run ended on its own (routed here by the rows above)
  restart_due,       ///< a run_ended that is to be restarted: FATAL, give up, or restart
  group_start,       ///< a group restart starts its members (after the backoff, or resumed)
  ready_report,      ///< child_ready from the child's actor
  significant_end,   ///< a significant child ended for good (auto_shutdown)
  start_timeout,     ///< a start request's timer fired
  shutdown_timeout,  ///< a nested supervisor's shutdown timer fired
};
inline constexpr std::size_t event_count = 16;

/// What the supervisor does.
enum class action : std::uint8_t {
  ignore,             ///< nothing (stale, or nothing left to do)
  shut_down,          ///< stop every child in reverse order, then exit
  refuse,             ///< answer the request with an error
  accept,             ///< carry the request out (a plan of steps)
  remove,             ///< forget the child (its actor goes)
  skip,               ///< the step is done at once: nothing to do for this child
  wait_previous,      ///< poll until the previous run's process has exited, then start (or complete the stop)
  start,              ///< start a run: spawn the actor / send start
  stopped,            ///< the child is stopped now (no stop to wait for)
  stop,               ///< stopping: ask the actor to stop (kill a brutal_kill supervisor)
  terminate_awaiting, ///< terminated (OTP), stopping until the exit of the process made
  terminate,          ///< terminated (OTP): stopped, the error to the caller
  await_exit,         ///< nothing yet: the exit of the process made follows and decides
  end_failed_start,   ///< the exit of a failed start's process: stopped (dropped if start_child)
  fail_start,         ///< the start step fails (→ start_failed)
  end_run,            ///< the run ended (→ run_ended)
  record,             ///< the end is told (event, pid cleared); the state stays
  join_group,         ///< restarting: part of the pending group restart
  restart,            ///< restart per strategy (→ restart_due)
  fatal,              ///< FATAL: this child is not restarted any more
  give_up,            ///< too many restarts: shut down with restart_limit
  restart_group,      ///< restart the group after the backoff
  kill,               ///< kill the child's actor
  ready,              ///< the run is ready: the `ready` event, the start step completes
};

/// The conditions a row can require, beyond state and event.
enum class when : std::uint8_t {
  always,
  not_from_parent,         ///< an exit signal from neither the parent nor the supervisor itself
  shutting_down,           ///< the supervisor is shutting down
  stale,                   ///< a report from an actor or run that is not the child's current one
  previous_lingers,        ///< the previous run's process has not exited yet
  nested_without_actor,    ///< a nested supervisor whose actor is gone already
  on_request_with_process, ///< a start on request (not a restart) that made a process
  on_request,              ///< a start on request (start_child, restart_child, the initial start)
  with_process,            ///< a start in a restart that made a process
  failed_start_process,    ///< the exit of a process whose start failed on request
  start_step_under_way,    ///< the child's start step is under way
  in_group,                ///< a group restart is pending for the child
  temporary,               ///< restart = temporary
  transient_success,       ///< restart = transient and the run succeeded
  start_limit_reached,     ///< died before min_uptime max_failed_starts times in a row
  over_intensity,          ///< more than intensity restarts within the period
  out_of_group,            ///< the member was taken out of this group restart
  not_current,             ///< the step of the timer was answered or abandoned
  current_with_actor,      ///< the step of the timer is under way and the actor lives
  no_auto_shutdown,        ///< auto_shutdown = never
  significant_left,        ///< all_significant, and a significant child is still alive
};

/// The facts `decide` looks at; the caller sets those its event's rows use.
struct facts {
  bool shutting_down = false;
  bool from_parent = false;
  bool stale = false;
  bool previous_lingers = false;
  bool nested_without_actor = false;
  bool on_request = false;
  bool process_made = false;
  bool start_step_under_way = false;
  bool in_group = false;
  restart_type restart = restart_type::permanent;
  bool success = false;
  bool start_limit_reached = false;
  bool over_intensity = false;
  bool out_of_group = false;
  bool step_current = false;
  bool has_actor = false;
  bool no_auto_shutdown = false;
  bool significant_left = false;
};

/// A set of child states (a bit per child_state).
using state_set = std::uint8_t;
constexpr state_set bit(child_state s) { return static_cast<state_set>(1u << static_cast<unsigned>(s)); }
inline constexpr state_set any_state = 0x3f;
inline constexpr state_set active_states =
    bit(child_state::starting) | bit(child_state::running) | bit(child_state::stopping);
inline constexpr state_set alive = bit(child_state::starting) | bit(child_state::running);

/// One row: in these states, on this event, when this holds → this action.
struct rule {
  state_set states;
  event on;
  when condition;
  action then;
  const char* why;  ///< the row in words, for tests and readers
};

/// The table, in the order rows are tried.
std::span<const rule> rules();

/// The first row matching (`state`, `on`, `f`). Every event has a last row that matches
/// any state with `always`, so there is always one.
const rule& decide(child_state state, event on, const facts& f);

/// A rule of the supervisor itself (exit_signal, request, significant_end): the child
/// state does not matter.
const rule& decide(event on, const facts& f);

/// The row's index in `rules()`.
std::size_t row_of(const rule& r);

/// For tests: a function told the index of every row `decide` returns (nullptr: none,
/// the default). Set before the actors run and reset after; it is called on whatever
/// thread runs a supervisor, so it must be thread-safe unless every actor runs on one
/// thread (CAF's test_coordinator). The actor tests use it to find the rows no test
/// carries out (tests/supervisor/supervisor_table_coverage.cpp).
using row_observer = void (*)(std::size_t row);
void observe_rows(row_observer observer);

const char* to_string(event e);
const char* to_string(action a);

}  // namespace pkit::actors::detail::supervisor
