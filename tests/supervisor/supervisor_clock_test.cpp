// The supervisor's time rules, driven deterministically: CAF's test_coordinator runs every
// actor on the test's thread, and its clock moves only when the test advances it. So the
// restart intensity window, backoff delays and minimum uptime are checked to the
// millisecond — at their exact boundaries — with no sleep and no real process. The
// children are nested supervisors without children of their own: killing one with an
// exit message is a crash the parent sees through its monitor, like any child's end,
// and restarting it spawns a new one (no reaper thread, nothing outside the coordinator).

#define BOOST_TEST_MODULE pkit supervisor clock
#include <boost/test/unit_test.hpp>

#include "supervisor_clock_fixture.hpp"

#include <pkit/actors/error.hpp>

using namespace clock_test;

BOOST_FIXTURE_TEST_SUITE(supervisor_clock, clock_fixture)

BOOST_AUTO_TEST_CASE(a_backoff_delay_holds_the_restart_until_exactly_that_much_time_has_passed) {
  auto f = flags_with(100, 1000);
  f.backoff = {100, 300, 2.0, 0.0, 60000};
  auto s = start(f);
  const std::int64_t expected[] = {100, 200, 300, 300};  // doubling, capped at max_ms
  for (std::uint64_t inc = 1; inc <= 4; ++inc) {
    crash(s);
    BOOST_TEST_REQUIRE(count(event_kind::exited, inc) == 1u, history());
    BOOST_TEST(last_delay() == expected[inc - 1], history());
    advance(std::chrono::milliseconds(expected[inc - 1] - 1));
    BOOST_TEST(count(event_kind::started, inc + 1) == 0u, "restarted 1 ms early;" << history());
    advance(1ms);
    BOOST_TEST_REQUIRE(count(event_kind::ready, inc + 1) == 1u, "not restarted on time;" << history());
  }
}

BOOST_AUTO_TEST_CASE(the_backoff_starts_over_once_the_child_stayed_up_reset_after_ms) {
  auto f = flags_with(100, 1000);
  f.backoff = {100, 10000, 2.0, 0.0, 1000};
  auto s = start(f);
  crash(s);
  BOOST_TEST(last_delay() == 100);
  advance(100ms);
  crash(s);  // up for 0 ms: the backoff grows
  BOOST_TEST(last_delay() == 200);
  advance(200ms);
  advance(999ms);
  crash(s);  // up for 999 ms: still growing
  BOOST_TEST(last_delay() == 400, history());
  advance(400ms);
  advance(1000ms);
  crash(s);  // up for reset_after_ms: back to the initial delay
  BOOST_TEST(last_delay() == 100, history());
}

BOOST_AUTO_TEST_CASE(more_than_intensity_restarts_within_the_period_make_the_supervisor_give_up) {
  auto s = start(flags_with(2, 1000));
  // At t = 1000 the first restart is exactly `period` old: still inside the window.
  crash_at(s, {0, 500, 1000});
  BOOST_TEST(count(event_kind::gave_up) == 1u, "3 restarts within 1000 ms survived;" << history());
  BOOST_TEST(count(event_kind::ready, 4) == 0u, history());
  // Giving up is ending (FAULTS L5: one that said gave_up and lived on hung its parent).
  BOOST_TEST(!alive(s), "the supervisor gave up and still answers");
}

BOOST_AUTO_TEST_CASE(restarts_spread_just_wider_than_the_period_are_survived) {
  auto s = start(flags_with(2, 1000));
  crash_at(s, {0, 500, 1001});  // at t = 1001 the first restart has left the window
  BOOST_TEST(count(event_kind::gave_up) == 0u, history());
  BOOST_TEST(count(event_kind::ready, 4) == 1u, history());
  advance(1001ms);
  crash(s);  // t = 2002: the restart of t = 1001 has left the window too
  crash(s);  // two in the window
  BOOST_TEST(count(event_kind::gave_up) == 0u, history());
  BOOST_TEST(count(event_kind::ready, 6) == 1u, history());
}

BOOST_AUTO_TEST_CASE(a_child_that_dies_before_min_uptime_too_often_in_a_row_is_fatal) {
  auto f = flags_with(100, 1000);
  f.min_uptime_ms = 500;
  f.max_failed_starts = 2;
  auto s = start(f);
  advance(499ms);
  crash(s);  // up 499 ms: a failed start (1)
  BOOST_TEST(count(event_kind::ready, 2) == 1u, history());
  advance(500ms);
  crash(s);  // up exactly min_uptime: healthy, the count starts over
  BOOST_TEST(count(event_kind::ready, 3) == 1u, history());
  crash(s);  // failed start (1)
  BOOST_TEST(count(event_kind::ready, 4) == 1u, history());
  crash(s);  // failed start (2): fatal
  BOOST_TEST(count(event_kind::fatal) == 1u, history());
  BOOST_TEST(count(event_kind::ready, 5) == 0u, history());
  advance(60000ms);
  BOOST_TEST(count(event_kind::started, 5) == 0u, "a fatal child was restarted later;" << history());
  const auto cs = which(s);
  BOOST_TEST(pa::to_string(cs.front().state) == pa::to_string(pa::child_state::fatal));
}

BOOST_AUTO_TEST_CASE(a_child_killed_unconditionally_is_restarted_and_its_supervisor_lives_on) {
  // CAF's exit_reason::kill cannot be trapped; through a link it would have ended the
  // supervisor too. OTP restarts a child killed this way, and so does pkit.
  auto s = start(flags_with(5, 1000));
  crash(s, caf::exit_reason::kill);
  BOOST_TEST(count(event_kind::exited, 1) == 1u, history());
  BOOST_TEST(count(event_kind::ready, 2) == 1u, "not restarted;" << history());
  BOOST_TEST(which(s).size() == 1u);
}

BOOST_AUTO_TEST_CASE(one_for_all_children_ending_together_are_one_restart_and_restart_in_spec_order_after_backoff) {
  auto f = flags_with(1, 5000);
  f.strategy = pa::restart_strategy::one_for_all;
  f.backoff = {100, 1000, 2.0, 0.0, 60000};
  auto s = start_group(f, {"a", "b", "c"});
  events.clear();
  crash_together(s, {"c", "a"});
  BOOST_TEST(count(event_kind::restarting) == 1u, history());
  BOOST_TEST(count(event_kind::gave_up) == 0u, history());
  advance(100ms);
  BOOST_TEST(trace_of({event_kind::ready}) == (std::vector<std::string>{"ready:a", "ready:b", "ready:c"}),
             history());
}

BOOST_AUTO_TEST_CASE(rest_for_one_a_later_child_ending_with_the_earlier_one_is_part_of_its_restart) {
  auto f = flags_with(1, 5000);
  f.strategy = pa::restart_strategy::rest_for_one;
  f.backoff = {100, 1000, 2.0, 0.0, 60000};
  auto s = start_group(f, {"a", "b", "c"});
  events.clear();
  crash_together(s, {"b", "c"});
  BOOST_TEST(count(event_kind::restarting) == 1u, history());
  BOOST_TEST(count(event_kind::gave_up) == 0u, history());
  advance(100ms);
  BOOST_TEST(trace_of({event_kind::ready}) == (std::vector<std::string>{"ready:b", "ready:c"}), history());
}

BOOST_AUTO_TEST_CASE(a_pending_restart_joined_by_a_wider_group_restart_keeps_the_spec_order) {
  // b's own restart waits out its backoff when a crashes: a's group restart (rest_for_one:
  // a, b, c) takes b's over; the children start a, b, c — never c or b first.
  auto f = flags_with(5, 5000);
  f.strategy = pa::restart_strategy::rest_for_one;
  f.backoff = {100, 1000, 2.0, 0.0, 60000};
  auto s = start_group(f, {"a", "b", "c"});
  events.clear();
  crash_together(s, {"b"});
  advance(50ms);
  crash_together(s, {"a"});
  advance(1000ms);
  BOOST_TEST(trace_of({event_kind::ready}) == (std::vector<std::string>{"ready:a", "ready:b", "ready:c"}),
             history());
}

// b crash-loops (its backoff has grown to 400 ms) and waits it out when a, up for long,
// crashes: a's group restart (rest_for_one: a, b, c) takes b's over — and before the fix
// started the group after a's own 100 ms, cutting b's backoff short (review 19s #3). The
// group now starts when the longest wait of its members is over.
BOOST_AUTO_TEST_CASE(a_wider_group_restart_keeps_a_members_longer_backoff) {
  auto f = flags_with(10, 60000);
  f.strategy = pa::restart_strategy::rest_for_one;
  f.backoff = {100, 10000, 2.0, 0.0, 60000};
  auto s = start_group(f, {"a", "b", "c"});
  crash_together(s, {"b"});  // b (and c, after it) restart after 100 ms
  advance(100ms);
  crash_together(s, {"b"});  // after 200 ms
  advance(200ms);
  events.clear();
  crash_together(s, {"b"});  // after 400 ms
  advance(50ms);
  crash_together(s, {"a"});  // a's first restart: 100 ms of its own, b still has 350 to wait
  advance(100ms);
  BOOST_TEST(count(event_kind::ready) == 0u, "the group started before b's backoff was over;" << history());
  advance(250ms);
  BOOST_TEST(trace_of({event_kind::ready}) == (std::vector<std::string>{"ready:a", "ready:b", "ready:c"}),
             history());
}

// a crashes; one_for_all stops b and restarts both after a 300 ms backoff. Meanwhile b
// waits for that restart as a does: it shows `restarting` (it showed `stopped`, as if it
// would stay down), delete_child refuses it as OTP refuses a restarting child (it was
// deleted, and the group came back without it), and a later, longer wait of b's is kept.
BOOST_AUTO_TEST_CASE(a_sibling_waiting_in_a_group_restart_is_restarting_and_cannot_be_deleted) {
  auto f = flags_with(10, 60000);
  f.strategy = pa::restart_strategy::one_for_all;
  f.backoff = {300, 10000, 2.0, 0.0, 60000};
  auto s = start_group(f, {"a", "b"});
  events.clear();
  crash_together(s, {"a"});
  BOOST_TEST_REQUIRE(count_of("b", event_kind::stopped) == 1u, history());
  BOOST_TEST(state_of(s, "a") == "restarting");
  BOOST_TEST(state_of(s, "b") == "restarting", "a member waiting for the group restart");
  auto deleted = ask<caf::ok_atom>(s, pa::delete_child_atom_v, std::string("b"));
  BOOST_TEST_REQUIRE(deleted.has_value(), "no reply to delete_child");
  BOOST_TEST((!*deleted && deleted->error() == pa::error::still_running), "delete_child of a restarting member");
  advance(300ms);
  BOOST_TEST(trace_of({event_kind::ready}) == (std::vector<std::string>{"ready:a", "ready:b"}), history());
  BOOST_TEST(state_of(s, "b") == "running");
}

BOOST_AUTO_TEST_CASE(with_the_default_intensity_a_child_failing_its_starts_reaches_fatal_and_the_supervisor_lives) {
  // intensity 1 (the default): failed starts (deaths before min_uptime) are counted by
  // max_failed_starts, not by the intensity.
  auto f = flags_with(1, 5000);
  f.min_uptime_ms = 500;
  f.max_failed_starts = 3;
  auto s = start(f);
  for (int i = 0; i < 3; ++i) crash(s);
  BOOST_TEST(count(event_kind::gave_up) == 0u, history());
  BOOST_TEST(count(event_kind::fatal) == 1u, history());
  BOOST_TEST(pa::to_string(which(s).front().state) == pa::to_string(pa::child_state::fatal));
}

BOOST_AUTO_TEST_CASE(a_group_restart_does_not_revive_a_fatal_sibling) {
  auto f = flags_with(10, 5000);
  f.strategy = pa::restart_strategy::one_for_all;
  f.min_uptime_ms = 500;
  f.max_failed_starts = 1;
  auto s = start_group(f, {"a", "b"});
  crash_together(s, {"a"});  // up 0 ms: one failed start is fatal
  BOOST_TEST_REQUIRE(count(event_kind::fatal) == 1u, history());
  advance(1000ms);
  events.clear();
  crash_together(s, {"b"});  // b was up long enough: restarted, with the group
  const auto cs = which(s);
  BOOST_TEST(pa::to_string(cs[0].state) == pa::to_string(pa::child_state::fatal), history());
  BOOST_TEST(count(event_kind::started) == 1u, history());
  BOOST_TEST(pa::to_string(cs[1].state) == pa::to_string(pa::child_state::running));
}

BOOST_AUTO_TEST_SUITE_END()
