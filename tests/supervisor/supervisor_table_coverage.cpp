// Part of supervisor_table_test: the check that every row of the supervisor's rule table
// is carried out by an actor test. The rows `decide` returns while this binary's cases run
// are recorded (rules.hpp's observe_rows); a row none of them reaches must be listed below,
// either as carried out by a real-process test (it needs a real pid) or as unreachable by
// any message sequence, with the reason. A row added without an actor test fails here.

#include <boost/test/unit_test.hpp>

#include "supervisor/rules.hpp"

#include <cstring>
#include <vector>

namespace sv = pkit::actors::detail::supervisor;

namespace {

std::vector<bool>& reached() {
  static std::vector<bool> rows(sv::rules().size(), false);
  return rows;
}

// The test_coordinator runs every actor on the test's thread: no lock needed.
void record(std::size_t row) { reached().at(row) = true; }

struct observe_the_rows {
  observe_the_rows() { sv::observe_rows(&record); }
  ~observe_the_rows() { sv::observe_rows(nullptr); }
};
BOOST_TEST_GLOBAL_FIXTURE(observe_the_rows);

// A row is named by its event, action and the start of its `why` (unique in the table).
struct listed_row {
  sv::event on;
  sv::action then;
  const char* why_starts;
  const char* where;  ///< the test carrying it out, or why nothing can reach it
};

// clang-format off
// Carried out by other actor tests: on test_coordinator in supervisor_clock_test, or with
// real processes (a pid that lingers, a readiness protocol, a process made by a start
// that failed, a forged report).
const std::vector<listed_row> elsewhere = {
  {sv::event::start_step,   sv::action::wait_previous,      "never two instances",
   "supervisor_shutdown_test: a_worker_whose_process_actor_was_killed_is_restarted_only_once_its_old_process_is_gone"},
  {sv::event::stop_step,    sv::action::wait_previous,      "a worker whose actor died",
   "supervisor_shutdown_test: terminate_child_of_a_worker_whose_actor_dies_during_the_stop_answers_once_its_process_is_gone"},
  {sv::event::start_failed, sv::action::terminate_awaiting, "on request, a process was made",
   "supervisor_identity_test: start_child_answers_after_READY_1_or_with_the_reason"},
  {sv::event::start_failed, sv::action::await_exit,         "in a restart, a process was made",
   "supervisor_review_test: a_transient_child_exiting_0_before_ready_in_a_group_restart_is_a_failed_start"},
  {sv::event::ready_report, sv::action::ignore,             "a ready report from an older run",
   "supervisor_review_test: forged_child_reports_and_restart_tokens_are_ignored"},
  {sv::event::exit_report,  sv::action::ignore,             "an exit report from an older run",
   "supervisor_shutdown_test: a_stopped_event_carries_the_status_and_says_when_the_stop_had_to_kill"},
  {sv::event::exit_report,  sv::action::end_failed_start,   "the exit of a start that failed",
   "supervisor_identity_test: start_child_answers_after_READY_1_or_with_the_reason"},
  {sv::event::run_ended,    sv::action::join_group,         "a group restart planned",
   "supervisor_clock_test: one_for_all_children_ending_together_are_one_restart_and_restart_in_spec_order_after_backoff"},
  {sv::event::restart_due,  sv::action::fatal,              "died before min_uptime",
   "supervisor_clock_test: a_child_that_dies_before_min_uptime_too_often_in_a_row_is_fatal"},
};

// Reached by no message sequence (defensive rows: the first match would otherwise be a
// catch-all that does the wrong thing). Each keeps its pure-function case in
// supervisor_rules_test.
const std::vector<listed_row> unreachable = {
  // A group restart marks its members (child::group) in restart(): the child that ended
  // (restarting) and its siblings, which a plan stops before the group's start is
  // scheduled; a FATAL sibling is not marked (group_of). A member becomes active only
  // through a start step, which unmarks it (start_child_step), and FATAL only through
  // restart_due, which a marked member never reaches (run_ended: join_group comes
  // first). So a marked member is never active or FATAL when its group starts; the row
  // keeps such a member from being started twice should that ever change.
  {sv::event::group_start,  sv::action::skip,               "a member running already",
   "unreachable: a member marked for a group restart is neither active nor FATAL"},
};
// clang-format on

bool matches(const sv::rule& r, const listed_row& l) {
  return r.on == l.on && r.then == l.then && std::strncmp(r.why, l.why_starts, std::strlen(l.why_starts)) == 0;
}

const listed_row* find(const sv::rule& r, const std::vector<listed_row>& list) {
  for (const auto& l : list)
    if (matches(r, l)) return &l;
  return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_row_is_carried_out_by_an_actor_test_or_listed,
                     *boost::unit_test::depends_on("supervisor_table") *
                         boost::unit_test::depends_on("supervisor_table_worker")) {
  const auto rows = sv::rules();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const sv::rule& r = rows[i];
    const listed_row* there = find(r, elsewhere);
    const listed_row* never = find(r, unreachable);
    const bool here = reached()[i];
    BOOST_TEST((here || there != nullptr || never != nullptr),
               "row " << i << " (" << sv::to_string(r.on) << ": " << sv::to_string(r.then) << ", " << r.why
                      << ") is carried out by no actor test and not listed");
    BOOST_TEST(!(here && never != nullptr),
               "row " << i << " is listed as unreachable, yet a case reached it: " << r.why);
  }
  for (const auto& l : elsewhere) {
    bool named = false;
    for (const auto& r : rows) named = named || matches(r, l);
    BOOST_TEST(named, "a listed row is not in the table: " << l.why_starts);
  }
  for (const auto& l : unreachable) {
    bool named = false;
    for (const auto& r : rows) named = named || matches(r, l);
    BOOST_TEST(named, "a listed row is not in the table: " << l.why_starts);
  }
}
