// The supervisor's rule table (actors/src/supervisor/rules.hpp), as a pure function: one
// case per row at least, plus the cases where rows compete (the first match wins), and a
// check that the cases reach every row — a row added without a case fails the suite.
// What the rows do inside the actor is checked on CAF's test_coordinator
// (supervisor_table_test.cpp) and with real processes (supervisor_test.cpp & co).

#define BOOST_TEST_MODULE pkit supervisor rules
#include <boost/test/unit_test.hpp>

#include "supervisor/rules.hpp"

#include <set>
#include <sstream>
#include <string>

namespace sv = pkit::actors::detail::supervisor;
using pkit::actors::child_state;
using pkit::actors::restart_type;
using sv::action;
using sv::event;
using sv::facts;

namespace {

struct a_case {
  child_state state;
  event on;
  facts f;
  action expected;
};

constexpr child_state stopped = child_state::stopped;
constexpr child_state starting = child_state::starting;
constexpr child_state running = child_state::running;
constexpr child_state restarting = child_state::restarting;
constexpr child_state stopping = child_state::stopping;
constexpr child_state fatal = child_state::fatal;

// clang-format off
const a_case cases[] = {
  // the supervisor's own end
  {running,    event::exit_signal,     {},                                              action::ignore},
  {running,    event::exit_signal,     {.from_parent = true},                           action::shut_down},
  {stopped,    event::significant_end, {.no_auto_shutdown = true},                      action::ignore},
  {stopped,    event::significant_end, {.significant_left = true},                      action::ignore},
  {stopped,    event::significant_end, {},                                              action::shut_down},
  // requests
  {running,    event::request,         {.shutting_down = true},                         action::refuse},
  {running,    event::request,         {},                                              action::accept},
  {stopped,    event::request,         {},                                              action::accept},
  {running,    event::delete_request,  {},                                              action::refuse},
  {starting,   event::delete_request,  {},                                              action::refuse},
  {stopping,   event::delete_request,  {},                                              action::refuse},
  {restarting, event::delete_request,  {},                                              action::refuse},
  {stopped,    event::delete_request,  {},                                              action::remove},
  {fatal,      event::delete_request,  {},                                              action::remove},
  // steps
  {running,    event::start_step,      {},                                              action::skip},
  {stopping,   event::start_step,      {},                                              action::skip},
  {stopped,    event::start_step,      {.previous_lingers = true},                      action::wait_previous},
  {stopped,    event::start_step,      {},                                              action::start},
  {restarting, event::start_step,      {},                                              action::start},
  {fatal,      event::start_step,      {},                                              action::start},  // restart_child
  {stopped,    event::stop_step,       {.previous_lingers = true},                      action::wait_previous},
  {restarting, event::stop_step,       {.previous_lingers = true},                      action::wait_previous},
  {fatal,      event::stop_step,       {.previous_lingers = true},                      action::wait_previous},
  {restarting, event::stop_step,       {},                                              action::stopped},
  {restarting, event::stop_step,       {.nested_without_actor = true},                  action::stopped},
  {stopped,    event::stop_step,       {},                                              action::skip},
  {fatal,      event::stop_step,       {},                                              action::skip},
  {running,    event::stop_step,       {.nested_without_actor = true},                  action::stopped},
  {running,    event::stop_step,       {},                                              action::stop},
  {starting,   event::stop_step,       {},                                              action::stop},
  {stopping,   event::stop_step,       {},                                              action::stop},
  // start failures
  {starting,   event::start_failed,    {.on_request = true, .process_made = true},      action::terminate_awaiting},
  {starting,   event::start_failed,    {.on_request = true},                            action::terminate},
  {starting,   event::start_failed,    {.process_made = true},                          action::await_exit},
  {starting,   event::start_failed,    {},                                              action::end_run},
  {stopping,   event::start_failed,    {.on_request = true},                            action::ignore},
  {running,    event::start_failed,    {},                                              action::ignore},
  // reports
  {running,    event::ready_report,    {.stale = true},                                 action::ignore},
  {starting,   event::ready_report,    {},                                              action::ready},
  {running,    event::ready_report,    {},                                              action::ready},
  {stopping,   event::ready_report,    {},                                              action::skip},
  {running,    event::exit_report,     {.stale = true},                                 action::ignore},
  {stopping,   event::exit_report,     {.stale = true, .process_made = true},           action::ignore},
  {stopping,   event::exit_report,     {.process_made = true},                          action::end_failed_start},
  {running,    event::exit_report,     {},                                              action::end_run},
  {starting,   event::exit_report,     {.process_made = true},                          action::end_run},
  {stopping,   event::exit_report,     {},                                              action::ignore},
  {restarting, event::exit_report,     {},                                              action::ignore},
  {stopping,   event::nested_down,     {.start_step_under_way = true},                  action::stopped},
  {starting,   event::nested_down,     {.start_step_under_way = true},                  action::fail_start},
  {starting,   event::nested_down,     {},                                              action::end_run},
  {running,    event::nested_down,     {},                                              action::end_run},
  {stopping,   event::worker_down,     {},                                              action::end_run},
  {stopping,   event::worker_down,     {.process_made = true},                          action::end_failed_start},
  {starting,   event::worker_down,     {.process_made = true},                          action::end_run},
  {running,    event::worker_down,     {},                                              action::end_run},
  {stopped,    event::worker_down,     {},                                              action::ignore},
  // a run's end
  {running,    event::run_ended,       {.shutting_down = true, .in_group = true},       action::stopped},
  {running,    event::run_ended,       {.in_group = true, .restart = restart_type::temporary}, action::join_group},
  {starting,   event::run_ended,       {.restart = restart_type::temporary},            action::remove},
  {running,    event::run_ended,       {.restart = restart_type::transient, .success = true}, action::stopped},
  {running,    event::run_ended,       {.restart = restart_type::transient},            action::restart},
  {running,    event::run_ended,       {.success = true},                               action::restart},  // permanent
  {stopping,   event::run_ended,       {},                                              action::record},
  {stopped,    event::restart_due,     {.start_limit_reached = true},                   action::fatal},
  {stopped,    event::restart_due,     {.over_intensity = true},                        action::give_up},
  {stopped,    event::restart_due,     {},                                              action::restart_group},
  // timers
  {restarting, event::group_start,     {.shutting_down = true},                         action::ignore},
  {restarting, event::group_start,     {.out_of_group = true},                          action::skip},
  {running,    event::group_start,     {},                                              action::skip},
  {fatal,      event::group_start,     {},                                              action::skip},
  {restarting, event::group_start,     {},                                              action::start},
  {stopped,    event::group_start,     {},                                              action::start},
  {starting,   event::start_timeout,   {.has_actor = true},                             action::ignore},
  {starting,   event::start_timeout,   {.step_current = true},                          action::ignore},
  {starting,   event::start_timeout,   {.step_current = true, .has_actor = true},       action::kill},
  {stopping,   event::shutdown_timeout,{.step_current = true, .has_actor = true},       action::kill},
  {stopping,   event::shutdown_timeout,{.step_current = true},                          action::ignore},
  {stopped,    event::shutdown_timeout,{.step_current = true, .has_actor = true},       action::ignore},
};
// clang-format on

std::string describe(const a_case& c) {
  std::ostringstream out;
  out << pkit::actors::to_string(c.state) << " x " << sv::to_string(c.on) << ": expected "
      << sv::to_string(c.expected);
  return out.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_case_gets_its_action) {
  for (const a_case& c : cases) {
    const sv::rule& r = sv::decide(c.state, c.on, c.f);
    BOOST_TEST((r.then == c.expected), describe(c) << ", got " << sv::to_string(r.then) << " (row "
                                                    << sv::row_of(r) << ": " << r.why << ")");
    BOOST_TEST((r.on == c.on), describe(c) << ": a row of another event answered");
  }
}

BOOST_AUTO_TEST_CASE(the_cases_reach_every_row_of_the_table) {
  std::set<std::size_t> reached;
  for (const a_case& c : cases) reached.insert(sv::row_of(sv::decide(c.state, c.on, c.f)));
  for (std::size_t i = 0; i < sv::rules().size(); ++i)
    BOOST_TEST(reached.count(i) == 1u, "no case reaches row " << i << ": " << sv::rules()[i].why);
}

BOOST_AUTO_TEST_CASE(every_row_can_match_some_state) {
  for (const sv::rule& r : sv::rules()) BOOST_TEST(r.states != 0, r.why);
}
