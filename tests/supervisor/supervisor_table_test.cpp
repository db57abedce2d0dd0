// The rows of the supervisor's rule table (actors/src/supervisor/rules.cpp) carried out by
// the actor, on CAF's test_coordinator: deterministic, virtual time, no processes (the
// children are nested supervisors). Each case names the rows it exercises as
// "event: action". The rows about workers are carried out with scripted stand-ins in
// supervisor_table_worker_test.cpp; supervisor_table_coverage.cpp fails the suite when a
// row is carried out by none of them and is not listed there (as carried out by a
// real-process test, or as unreachable, with the reason). Every row is exercised as a
// pure function in supervisor_rules_test.

#define BOOST_TEST_MODULE pkit supervisor table
#include <boost/test/unit_test.hpp>

#include "supervisor_table_fixture.hpp"

#include "mute_placement.hpp"

using namespace table_test;


BOOST_FIXTURE_TEST_SUITE(supervisor_table, table_fixture)

// exit_signal: ignore (not from the parent); exit_signal: shut_down.
BOOST_AUTO_TEST_CASE(an_exit_signal_from_a_stranger_is_ignored_and_an_anonymous_one_is_obeyed) {
  auto s = start_children(flags_with(1, 5000), {nested("a")});
  sys->spawn(
      [s](caf::event_based_actor* self, int) {
        self->send_exit(s, caf::exit_reason::user_shutdown);
        self->quit();
      },
      0);
  run();
  BOOST_TEST(alive(s), "a stranger's exit signal ended the supervisor;" << history());
  BOOST_TEST(count(event_kind::stopped) == 0u, history());
  caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  run();
  BOOST_TEST(!alive(s), "an anonymous exit signal was not obeyed");
  BOOST_TEST(count_of("a", event_kind::stopped) == 1u, history());
}

// request: refuse (shutting down).
BOOST_AUTO_TEST_CASE(a_request_queued_behind_a_stop_is_refused_with_shutting_down) {
  auto s = start_children(flags_with(1, 5000), {nested("a"), nested("b")});
  caf::anon_send(s, pa::stop_atom_v);
  auto r = ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string("a"));
  BOOST_TEST(is(r, pa::error::shutting_down), what(r));
  BOOST_TEST(count(event_kind::started) == 2u, "something was started during shutdown;" << history());
}

// delete_request: refuse; stop_step: stop; nested_down: stopped; delete_request: remove;
// stop_step: skip (a second terminate).
BOOST_AUTO_TEST_CASE(delete_child_refuses_a_live_child_and_removes_a_terminated_one) {
  auto s = start_children(flags_with(1, 5000), {nested("a"), nested("b")});
  auto live = ask<caf::ok_atom>(s, pa::delete_child_atom_v, std::string("a"));
  BOOST_TEST(is(live, pa::error::still_running), what(live));
  auto stop = ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string("a"));
  BOOST_TEST((stop && static_cast<bool>(*stop)), what(stop));
  BOOST_TEST(count_of("a", event_kind::stopped) == 1u, history());
  BOOST_TEST(state_of(s, "a") == "stopped");
  auto again = ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string("a"));
  BOOST_TEST((again && static_cast<bool>(*again)), what(again));
  BOOST_TEST(count_of("a", event_kind::stopped) == 1u, "a stopped child was stopped again;" << history());
  auto gone = ask<caf::ok_atom>(s, pa::delete_child_atom_v, std::string("a"));
  BOOST_TEST((gone && static_cast<bool>(*gone)), what(gone));
  BOOST_TEST(state_of(s, "a") == "gone");
  BOOST_TEST(state_of(s, "b") == "running");
}

// stop_step: stopped (restarting); group_start: skip (out of the group).
BOOST_AUTO_TEST_CASE(terminate_child_during_a_backoff_cancels_the_restart) {
  auto f = flags_with(5, 5000);
  f.backoff = {100, 1000, 2.0, 0.0, 60000};
  auto s = start_children(f, {nested("a")});
  crash_child(s, "a");
  BOOST_TEST_REQUIRE(state_of(s, "a") == "restarting", history());
  auto r = ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string("a"));
  BOOST_TEST((r && static_cast<bool>(*r)), what(r));
  BOOST_TEST(state_of(s, "a") == "stopped");
  advance(1000ms);
  BOOST_TEST(count_of("a", event_kind::started) == 1u, "the cancelled restart ran;" << history());
  BOOST_TEST(state_of(s, "a") == "stopped");
}

// request: accept; group_start: skip (a member taken out of its group by restart_child).
BOOST_AUTO_TEST_CASE(restart_child_during_a_backoff_starts_the_child_once) {
  auto f = flags_with(5, 5000);
  f.backoff = {100, 1000, 2.0, 0.0, 60000};
  auto s = start_children(f, {nested("a")});
  crash_child(s, "a");
  auto r = ask<pa::child_info>(s, pa::restart_child_atom_v, std::string("a"));
  BOOST_TEST_REQUIRE((r && static_cast<bool>(*r)), "restart_child failed;" << history());
  BOOST_TEST(pa::to_string((*r)->state) == "running");
  advance(1000ms);
  BOOST_TEST(count_of("a", event_kind::started) == 2u, "started again after the backoff;" << history());
}

// group_start: ignore (shutting down): a backoff that ends after the stop starts nothing.
BOOST_AUTO_TEST_CASE(a_backoff_pending_at_shutdown_starts_nothing) {
  auto f = flags_with(5, 5000);
  f.backoff = {100, 1000, 2.0, 0.0, 60000};
  auto s = start_children(f, {nested("a"), nested("b")});
  crash_child(s, "a");
  caf::anon_send(s, pa::stop_atom_v);
  run();
  advance(1000ms);
  BOOST_TEST(count_of("a", event_kind::started) == 1u, "started after the stop;" << history());
  BOOST_TEST(!alive(s));
}

// run_ended: stopped (shutting down): a child that ends during the shutdown is not restarted.
BOOST_AUTO_TEST_CASE(a_child_ending_during_shutdown_is_not_restarted) {
  auto s = start_children(flags_with(5, 5000), {nested("a"), nested("b")});
  const auto cs = which(s);
  caf::anon_send(s, pa::stop_atom_v);  // stops b first (reverse order) ...
  caf::anon_send_exit(cs.front().handle, caf::exit_reason::user_shutdown);  // ... while a ends
  run();
  BOOST_TEST(count(event_kind::restarting) == 0u, history());
  BOOST_TEST(count_of("a", event_kind::started) == 1u, history());
  BOOST_TEST(!alive(s));
}

// run_ended: remove (temporary).
BOOST_AUTO_TEST_CASE(a_temporary_child_that_ends_is_removed) {
  auto s = start_children(flags_with(5, 5000), {nested("t", pa::restart_type::temporary), nested("p")});
  crash_child(s, "t");
  BOOST_TEST(state_of(s, "t") == "gone", history());
  BOOST_TEST(count(event_kind::restarting) == 0u, history());
}

// run_ended: stopped (transient success); run_ended: restart (transient failure);
// significant_end: ignore (never).
BOOST_AUTO_TEST_CASE(a_transient_child_is_restarted_only_after_a_failure) {
  auto s = start_children(flags_with(5, 5000), {nested("t", pa::restart_type::transient, true)});
  crash_child(s, "t");  // user_shutdown: a failure
  BOOST_TEST(count_of("t", event_kind::restarting) == 1u, history());
  crash_child(s, "t", caf::exit_reason::normal);  // its own stop: a success
  BOOST_TEST(state_of(s, "t") == "stopped", history());
  BOOST_TEST(count_of("t", event_kind::restarting) == 1u, history());
  BOOST_TEST(alive(s), "auto_shutdown never, yet a significant child's end ended the supervisor");
}

// significant_end: ignore (another significant child left); significant_end: shut_down.
BOOST_AUTO_TEST_CASE(all_significant_shuts_down_once_the_last_significant_child_ended) {
  auto f = flags_with(5, 5000);
  f.shutdown = pa::auto_shutdown::all_significant;
  auto s = start_children(f, {nested("x", pa::restart_type::transient, true),
                              nested("y", pa::restart_type::transient, true), nested("z")});
  crash_child(s, "x", caf::exit_reason::normal);
  BOOST_TEST(alive(s), "y still runs;" << history());
  crash_child(s, "y", caf::exit_reason::normal);
  BOOST_TEST(!alive(s), "the last significant child ended;" << history());
  BOOST_TEST(count_of("z", event_kind::stopped) == 1u, history());
}

// significant_end: ignore (another significant child left) — one waiting in a group
// restart's backoff: rest_for_one stops y after a, and y is back after 500 ms. x ending
// then must not end the supervisor (it did: y counted as stopped for good).
BOOST_AUTO_TEST_CASE(all_significant_counts_a_member_waiting_in_a_group_restart_as_left) {
  auto f = flags_with(5, 5000);
  f.strategy = pa::restart_strategy::rest_for_one;
  f.backoff = {500, 10000, 2.0, 0.0, 60000};
  f.shutdown = pa::auto_shutdown::all_significant;
  auto s = start_children(f, {nested("x", pa::restart_type::transient, true), nested("a"),
                              nested("y", pa::restart_type::transient, true)});
  crash_child(s, "a");
  BOOST_TEST_REQUIRE(count_of("y", event_kind::stopped) == 1u, history());
  crash_child(s, "x", caf::exit_reason::normal);
  BOOST_TEST(alive(s), "y is about to be restarted;" << history());
  advance(500ms);
  BOOST_TEST(state_of(s, "y") == "running", history());
}

// significant_end: shut_down (any_significant).
BOOST_AUTO_TEST_CASE(any_significant_shuts_down_when_one_significant_child_ended) {
  auto f = flags_with(5, 5000);
  f.shutdown = pa::auto_shutdown::any_significant;
  auto s = start_children(f, {nested("x", pa::restart_type::temporary, true), nested("z")});
  crash_child(s, "x");
  BOOST_TEST(!alive(s), history());
}

// nested_down: fail_start; start_failed: terminate (on request): the caller gets the
// error, and a start_child that failed leaves no child.
BOOST_AUTO_TEST_CASE(a_start_child_whose_nested_supervisor_fails_its_start_leaves_no_child) {
  auto s = start_children(flags_with(5, 5000), {nested("a")});
  pa::supervisor_spec holder{"holder", {}, {}};
  holder.flags.registered_name = "taken";
  sups.push_back(pa::spawn_supervisor(*sys, holder));
  run();
  pa::child_spec c = nested("b");
  c.supervisor.front().flags.registered_name = "taken";
  auto r = ask<pa::child_info>(s, pa::start_child_atom_v, c);
  BOOST_TEST_REQUIRE(r.has_value(), "start_child was not answered");
  BOOST_TEST(!static_cast<bool>(*r), "a failed start was answered as a success");
  BOOST_TEST(state_of(s, "b") == "gone", history());
  BOOST_TEST(count(event_kind::restarting) == 0u, "a failed start on request was restarted;" << history());
}

// start_failed: end_run (in a restart: counted as an exit); restart_due: give_up.
BOOST_AUTO_TEST_CASE(a_restart_whose_start_fails_counts_toward_the_intensity) {
  auto f = flags_with(1, 5000);
  f.backoff = {100, 1000, 2.0, 0.0, 60000};
  pa::child_spec c = nested("a");
  c.supervisor.front().flags.registered_name = "nm";
  auto s = start_children(f, {c});
  crash_child(s, "a");  // restart 1 of 1, after 100 ms
  pa::supervisor_spec holder{"holder", {}, {}};
  holder.flags.registered_name = "nm";  // free again: a's actor is gone
  sups.push_back(pa::spawn_supervisor(*sys, holder));
  run();
  advance(100ms);  // a's start fails: the name is taken
  BOOST_TEST(count_of("a", event_kind::exited) == 2u, history());
  BOOST_TEST(count(event_kind::gave_up) == 1u, "a failed restart was not counted;" << history());
  for (const auto& e : events)
    if (e.kind == event_kind::gave_up) BOOST_TEST((e.end.kind == pa::end_kind::restart_limit), pa::to_string(e.end.kind));
  BOOST_TEST(!alive(s));
}

// shutdown_timeout: ignore (the stop completed first): the timer of a nested supervisor
// that stopped in time, due while its next run is up, leaves that run alone.
BOOST_AUTO_TEST_CASE(a_shutdown_timer_after_a_completed_stop_changes_nothing) {
  pa::child_spec c = nested("a");
  c.shutdown_ms = 100;
  auto s = start_children(flags_with(5, 5000), {c});
  auto r = ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string("a"));
  BOOST_TEST((r && static_cast<bool>(*r)), what(r));
  auto again = ask<pa::child_info>(s, pa::restart_child_atom_v, std::string("a"));
  BOOST_TEST_REQUIRE((again && static_cast<bool>(*again)), "restart_child failed;" << history());
  advance(100ms);  // the first stop's timer is due
  BOOST_TEST(state_of(s, "a") == "running", history());
  BOOST_TEST(count_of("a", event_kind::exited) == 0u, "the new run was killed;" << history());
  BOOST_TEST(count_of("a", event_kind::started) == 2u, history());
}

// start_timeout: kill — with a remote worker (no process: its stand-in comes from a
// placement), whose stand-in never answers its start; the limit is the placement's bound
// plus a second, in virtual time.

BOOST_AUTO_TEST_CASE(a_start_nobody_answers_is_given_up_at_its_limit_and_its_actor_killed) {
  sup_test_placement::mute_placement place{std::chrono::milliseconds(500)};
  pa::supervisor_options o;
  o.place = &place;
  o.subscribers = {{collector}};
  pa::supervisor_spec spec;
  spec.name = "table";
  spec.flags = flags_with(5, 5000);
  auto s = pa::spawn_supervisor(*sys, spec, o);
  sups.push_back(s);
  run();
  pa::child_spec far;
  far.id = "far";
  far.nodes = {"x"};
  far.process.argv = {"/bin/sleep", "1000"};
  auto pending = std::make_shared<std::optional<caf::expected<pa::child_info>>>();
  sys->spawn(
      [=](caf::event_based_actor* self, int) {
        self->request(s, caf::infinite, pa::start_child_atom_v, far)
            .then([pending](pa::child_info& r) { *pending = std::move(r); },
                  [pending](caf::error& e) { *pending = std::move(e); });
      },
      0);
  run();
  BOOST_TEST_REQUIRE(place.spawned.size() == 1u);
  BOOST_TEST(!pending->has_value(), "answered before its limit");
  advance(std::chrono::milliseconds(1499));
  BOOST_TEST(!pending->has_value(), "given up before the bound and its second");
  advance(std::chrono::milliseconds(1));
  BOOST_TEST_REQUIRE(pending->has_value(), "no answer at the limit;" << history());
  BOOST_TEST(!static_cast<bool>(**pending));
  BOOST_TEST(((**pending).error() == pa::error::start_failed), caf::to_string((**pending).error()));
  // The stand-in was killed: a request to it fails.
  auto probe = std::make_shared<bool>(false);
  sys->spawn(
      [=](caf::event_based_actor* self, int) {
        self->request(caf::actor_cast<pa::process_actor>(place.spawned.front()), caf::infinite, pa::status_atom_v)
            .then([](pa::process_info&) {}, [probe](caf::error&) { *probe = true; });
      },
      0);
  run();
  BOOST_TEST(*probe, "the stand-in still answers");
}

// start_step: skip — a start step for a child that runs already. A group restart's start
// of `a` is queued behind restart_child(a) (both behind a start nobody answers): when it
// comes, restart_child has started `a` already.
BOOST_AUTO_TEST_CASE(a_restart_queued_behind_restart_child_does_not_start_the_child_twice) {
  sup_test_placement::mute_placement place{500ms};
  auto s = start_placed(place, flags_with(5, 5000), {nested("a")});
  auto blocked = ask_later<pa::child_info>(*sys, s, pa::start_child_atom_v, far("far"));
  run();
  BOOST_TEST_REQUIRE(place.spawned.size() == 1u);
  auto restarted = ask_later<pa::child_info>(*sys, s, pa::restart_child_atom_v, std::string("a"));
  run();
  crash_child(s, "a");  // its restart (no backoff) is queued behind restart_child
  BOOST_TEST_REQUIRE(count_of("a", event_kind::restarting) == 1u, history());
  BOOST_TEST_REQUIRE(!restarted->has_value());
  advance(1500ms);  // far's start is given up at its limit: the queue moves on
  BOOST_TEST_REQUIRE(restarted->has_value(), "restart_child was not answered;" << history());
  BOOST_TEST_REQUIRE(static_cast<bool>(**restarted), "restart_child failed;" << history());
  BOOST_TEST(count_of("a", event_kind::started) == 2u, "a was started again by its restart;" << history());
  BOOST_TEST(state_of(s, "a") == "running");
  const auto now = which(s);
  BOOST_TEST((now.front().handle == (**restarted)->handle), "a's actor was replaced after restart_child");
}

// stop_step: stopped (a nested supervisor already gone) — terminate_child queued behind a
// group restart whose start of `a` fails: the failure ends that plan, and the stop step
// that comes next finds `a` still starting, its actor gone. The failure's end is still
// told and kept (review 15 #5: it was dropped, a's last_end the crash's before it).
BOOST_AUTO_TEST_CASE(terminate_child_right_after_a_failed_nested_restart_finds_it_gone) {
  sup_test_placement::mute_placement place{500ms};
  auto f = flags_with(5, 5000);
  f.backoff = {100, 1000, 2.0, 0.0, 60000};
  pa::child_spec c = nested("a");
  c.supervisor.front().flags.registered_name = "nm14";
  auto s = start_placed(place, f, {c});
  crash_child(s, "a");  // restarted after 100 ms
  pa::supervisor_spec holder{"holder", {}, {}};
  holder.flags.registered_name = "nm14";  // a's next start fails: the name is taken
  sups.push_back(pa::spawn_supervisor(*sys, holder));
  auto blocked = ask_later<pa::child_info>(*sys, s, pa::start_child_atom_v, far("far"));
  run();
  advance(100ms);  // the backoff ends: a's start is queued behind far's
  auto stop = ask_later<caf::ok_atom>(*sys, s, pa::terminate_child_atom_v, std::string("a"));
  run();
  BOOST_TEST_REQUIRE(!stop->has_value(), history());
  advance(1400ms);  // far's start is given up; a's start fails; the terminate follows
  BOOST_TEST_REQUIRE(stop->has_value(), "terminate_child was not answered;" << history());
  BOOST_TEST(static_cast<bool>(**stop), what(*stop));
  BOOST_TEST(state_of(s, "a") == "stopped", history());
  BOOST_TEST(count(event_kind::gave_up) == 0u, history());
  BOOST_TEST(alive(s));
  BOOST_TEST(count_of("a", event_kind::exited) == 2u, "the crash's end and the failed start's;" << history());
  for (const auto& info : which(s))
    if (info.id == "a") BOOST_TEST((info.last_end.kind == pa::end_kind::start_failed), history());
}

BOOST_AUTO_TEST_SUITE_END()
