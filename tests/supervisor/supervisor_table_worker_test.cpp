// The rows of the supervisor's rule table about workers, carried out by the actor on CAF's
// test_coordinator: the workers are remote ones whose stand-ins follow a script
// (scripted_placement.hpp), so a report, a reply or an actor's end comes in the order the
// case needs, in virtual time. Part of supervisor_table_test (its module is there); each
// case names the rows it exercises as "event: action".

#include <boost/test/unit_test.hpp>

#include "supervisor_table_fixture.hpp"

#include "scripted_placement.hpp"

#include <csignal>

using namespace table_test;
using sup_test_placement::script;
using sup_test_placement::scripted_placement;

namespace {

// Whether `a` (a stand-in) still answers.
bool answers(caf::actor_system& sys, caf::scheduler::test_coordinator& sched, const caf::actor& a) {
  auto ok = std::make_shared<bool>(false);
  sys.spawn(
      [=](caf::event_based_actor* self, int) {
        self->request(caf::actor_cast<pa::process_actor>(a), caf::infinite, pa::status_atom_v)
            .then([ok](pa::process_info&) { *ok = true; }, [](caf::error&) {});
      },
      0);
  sched.run();
  return *ok;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(supervisor_table_worker, table_fixture)

// start_timeout: ignore — the start was answered (the run now waits for its readiness,
// which the stand-in bounds): the start timer due after that leaves the actor alone.
BOOST_AUTO_TEST_CASE(a_start_timer_due_after_the_start_was_answered_kills_nothing) {
  scripted_placement place{500ms};
  place.plan->start = script::on_start::answer;
  auto s = start_placed(place, flags_with(5, 5000), {});
  auto r = ask_later<pa::child_info>(*sys, s, pa::start_child_atom_v, far("w"));
  run();
  BOOST_TEST_REQUIRE(place.spawned.size() == 1u);
  advance(1500ms);  // the start's limit: the bound and a second
  BOOST_TEST(!r->has_value(), "the start was given up although it was answered;" << history());
  BOOST_TEST(answers(*sys, *sched, place.spawned.front()), "the stand-in was killed");
  BOOST_TEST(count_of("w", event_kind::exited) == 0u, history());
  BOOST_TEST(state_of(s, "w") == "running", history());
}

// stop_step: stop; ready_report: skip — a run being stopped (the supervisor shuts down
// while the run of a restart_child waits for its readiness) reports ready: it is ready
// for no one, and no `ready` is told.
BOOST_AUTO_TEST_CASE(a_ready_report_of_a_run_being_stopped_is_not_told) {
  scripted_placement place{500ms};
  auto s = start_placed(place, flags_with(5, 5000), {far("w")});
  place.plan->start = script::on_start::answer;
  auto r = ask_later<pa::child_info>(*sys, s, pa::restart_child_atom_v, std::string("w"));
  run();
  BOOST_TEST_REQUIRE(count_of("w", event_kind::started) == 2u, history());
  BOOST_TEST_REQUIRE(!r->has_value(), "the run was ready without its report");
  place.plan->stop = script::on_stop::ready_then_answer;
  caf::anon_send(s, pa::stop_atom_v);
  run();
  BOOST_TEST(count_of("w", event_kind::ready) == 1u, "a run being stopped was told ready;" << history());
  BOOST_TEST(count_of("w", event_kind::stopped) == 2u, history());
  BOOST_TEST(r->has_value(), "restart_child was not answered");
  BOOST_TEST(!alive(s));
}

// exit_report: ignore — the run exits on its own while its stop is under way (its exit
// report comes before the stop's reply): the stop's reply tells its end.
BOOST_AUTO_TEST_CASE(an_exit_report_during_the_stop_is_left_to_the_stops_reply) {
  scripted_placement place{500ms};
  auto s = start_placed(place, flags_with(5, 5000), {far("w")});
  place.plan->stop = script::on_stop::exit_then_answer;
  auto stop = ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string("w"));
  BOOST_TEST_REQUIRE((stop && static_cast<bool>(*stop)), what(stop));
  BOOST_TEST(count_of("w", event_kind::exited) == 0u, history());
  BOOST_TEST(count_of("w", event_kind::stopped) == 1u, history());
  BOOST_TEST(count(event_kind::restarting) == 0u, history());
  const auto cs = which(s);
  BOOST_TEST((cs.front().last_exit == pkit::exit_status::killed(SIGTERM)), "the exit report, not the stop's reply, set the status");
  BOOST_TEST(state_of(s, "w") == "stopped");
}

// worker_down: ignore — the process actor of a child stopped on request ends later: the
// child's state and events stay as they are, and the next start gets a new actor.
BOOST_AUTO_TEST_CASE(the_end_of_a_stopped_childs_actor_changes_nothing) {
  scripted_placement place{500ms};
  auto s = start_placed(place, flags_with(5, 5000), {far("w")});
  auto stop = ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string("w"));
  BOOST_TEST_REQUIRE((stop && static_cast<bool>(*stop)), what(stop));
  caf::anon_send_exit(place.spawned.front(), caf::exit_reason::kill);
  run();
  BOOST_TEST(count_of("w", event_kind::exited) == 0u, history());
  BOOST_TEST(count(event_kind::restarting) == 0u, history());
  BOOST_TEST(state_of(s, "w") == "stopped");
  auto again = ask<pa::child_info>(s, pa::restart_child_atom_v, std::string("w"));
  BOOST_TEST_REQUIRE((again && static_cast<bool>(*again)), "restart_child failed;" << history());
  BOOST_TEST(place.spawned.size() == 2u, "the dead actor was reused");
  BOOST_TEST(state_of(s, "w") == "running");
}

// stop_step: stop; worker_down: end_run; run_ended: record — the process actor dies
// during a stop on request (as a remote worker's relay does when its node is lost): its
// end is told (exited), nothing is restarted, and the stop ends with the actor — its
// request will not be answered (CAF 0.17 answers no request its receiver had taken).
BOOST_AUTO_TEST_CASE(a_worker_whose_actor_dies_during_its_stop_ends_the_stop) {
  scripted_placement place{500ms};
  auto s = start_placed(place, flags_with(5, 5000), {far("w")});
  place.plan->stop = script::on_stop::keep;
  auto stop = ask_later<caf::ok_atom>(*sys, s, pa::terminate_child_atom_v, std::string("w"));
  run();
  BOOST_TEST_REQUIRE(place.kept->stops.size() == 1u);
  caf::anon_send_exit(place.spawned.front(), caf::exit_reason::kill);
  run();
  BOOST_TEST(count_of("w", event_kind::exited) == 1u, history());
  BOOST_TEST(count(event_kind::restarting) == 0u, history());
  BOOST_TEST_REQUIRE(stop->has_value(), "terminate_child was not answered;" << history());
  BOOST_TEST(static_cast<bool>(**stop), what(*stop));
  BOOST_TEST(state_of(s, "w") == "stopped", history());
  auto again = ask<pa::child_info>(s, pa::restart_child_atom_v, std::string("w"));
  BOOST_TEST((again && static_cast<bool>(*again)), "restart_child failed;" << history());
}

// exit_report: end_run; start_failed: ignore — a restart_child whose run exits before the
// start's reply (an error): the exit already led to a restart; the late error only fails
// the request.
BOOST_AUTO_TEST_CASE(a_start_error_after_the_run_ended_only_fails_the_request) {
  scripted_placement place{500ms};
  auto f = flags_with(5, 5000);
  f.backoff = {100, 1000, 2.0, 0.0, 60000};
  auto s = start_placed(place, f, {far("w")});
  place.plan->start = script::on_start::exit_then_fail;
  auto r = ask<pa::child_info>(s, pa::restart_child_atom_v, std::string("w"));
  BOOST_TEST_REQUIRE(r.has_value(), "restart_child was not answered;" << history());
  BOOST_TEST_REQUIRE(!static_cast<bool>(*r));
  BOOST_TEST((r->error() == pa::error::died_before_ready), caf::to_string(r->error()));
  BOOST_TEST(state_of(s, "w") == "restarting", "the late start error changed the child;" << history());
  BOOST_TEST(count_of("w", event_kind::restarting) == 1u, history());
  place.plan->start = script::on_start::ready;
  advance(100ms);
  BOOST_TEST(state_of(s, "w") == "running", history());
}

// shutdown_timeout: kill — a nested supervisor whose stop does not complete in its
// shutdown time (its worker's stop is never answered) is killed at that time.
BOOST_AUTO_TEST_CASE(a_nested_supervisor_past_its_shutdown_time_is_killed) {
  scripted_placement place{500ms};
  pa::child_spec n = nested("n");
  n.shutdown_ms = 100;
  n.supervisor.front().children = {far("w")};
  auto s = start_placed(place, flags_with(5, 5000), {n});
  place.plan->stop = script::on_stop::keep;
  auto stop = ask_later<caf::ok_atom>(*sys, s, pa::terminate_child_atom_v, std::string("n"));
  run();
  BOOST_TEST_REQUIRE(place.kept->stops.size() == 1u, "the nested supervisor did not stop its worker");
  advance(99ms);
  BOOST_TEST(!stop->has_value(), "the stop completed although the worker did not stop");
  advance(1ms);
  BOOST_TEST_REQUIRE(stop->has_value(), "not killed at its shutdown time;" << history());
  BOOST_TEST(static_cast<bool>(**stop), what(*stop));
  BOOST_TEST(state_of(s, "n") == "stopped", history());
  // Its end says why, as a worker's does (review 15 #8): the stop had to kill it.
  for (const auto& info : which(s))
    if (info.id == "n") BOOST_TEST(pa::to_string(info.last_end.kind) == "stop_timeout");
}

// Review 15 #3: a temporary bystander of a group restart whose actor dies during its stop
// is dropped, as when its stop is answered (OTP never restarts a temporary child); it
// was left stopped and marked, and the group's start started it again.
BOOST_AUTO_TEST_CASE(a_temporary_bystander_whose_actor_dies_during_its_stop_is_dropped) {
  scripted_placement place{500ms};
  auto f = flags_with(5, 5000);
  f.strategy = pa::restart_strategy::one_for_all;
  auto t = far("t");
  t.restart = pa::restart_type::temporary;
  auto s = start_placed(place, f, {far("a"), t, far("c")});
  place.plan->stop = script::on_stop::keep;
  crash_child(s, "c");  // the group restart stops t first (reverse order): kept
  BOOST_TEST_REQUIRE(place.kept->stops.size() == 1u, history());
  place.plan->stop = script::on_stop::answer;
  caf::anon_send_exit(place.spawned.at(1), caf::exit_reason::kill);
  run();
  std::vector<std::string> ids;
  for (const auto& info : which(s)) ids.push_back(info.id);
  BOOST_TEST((ids == std::vector<std::string>{"a", "c"}), history());
  BOOST_TEST(count_of("t", event_kind::started) == 1u, history());
  BOOST_TEST(count_of("a", event_kind::ready) == 2u, history());
  BOOST_TEST(count_of("c", event_kind::ready) == 2u, history());
}

// Review 15 #6: a restart whose start fails because the node was lost is the same loss as
// the node_down end before it (within a second): counted once toward the intensity. Its
// end was start_failed, so it counted again and the supervisor (intensity 1) gave up.
BOOST_AUTO_TEST_CASE(a_start_that_fails_with_its_node_lost_is_the_same_node_loss) {
  scripted_placement place{500ms};
  place.plan->node = "x";
  auto f = flags_with(1, 5000);
  f.backoff = {100, 1000, 2.0, 0.0, 60000};
  auto s = start_placed(place, f, {far("a")});
  place.plan->start = script::on_start::node_lost;
  // As a relay ends when its node is lost (caf::anon_send_exit takes no error).
  const caf::actor& relay = place.spawned.front();
  relay->enqueue(nullptr, caf::make_message_id(),
                 caf::make_message(caf::exit_msg{relay.address(), caf::make_error(pa::error::node_down, "node 'x'")}),
                 nullptr);
  run();
  BOOST_TEST_REQUIRE(state_of(s, "a") == "restarting", history());
  advance(100ms);  // the restart's start fails: node x lost while starting
  BOOST_TEST(count(event_kind::gave_up) == 0u, history());
  BOOST_TEST_REQUIRE(alive(s));
  for (const auto& info : which(s))
    if (info.id == "a") BOOST_TEST((info.last_end.kind == pa::end_kind::node_down), history());
  place.plan->start = script::on_start::ready;
  advance(1000ms);
  BOOST_TEST(state_of(s, "a") == "running", history());
}

// start_failed: end_run, the worker's actor ended with it — a remote worker's stand-in
// answers node_down only as it ends (placement.hpp). The restart spawns a new one, and the
// loss is told once. The restart (no backoff) came at once and went to the stand-in that
// had just ended: its request_receiver_down failed one more start, its down message ended
// one more run. The real relay, still draining its mailbox after quit(), answered each
// such restart so until the supervisor gave up (net_remote_child_test, seen in CI).
// The same for a process actor's destructor, which answers the start it held with
// shutting_down (review 18 #2: a local worker killed while its launch was under way).
BOOST_AUTO_TEST_CASE(a_start_that_ends_its_remote_worker_restarts_on_a_new_one) {
  for (const pa::error ending : {pa::error::node_down, pa::error::shutting_down}) {
    BOOST_TEST_CONTEXT("the start answered " << caf::to_string(caf::make_error(ending))) {
      events.clear();
      scripted_placement place{500ms};
      place.plan->node = "x";
      auto s = start_placed(place, flags_with(5, 5000), {far("a")});
      BOOST_TEST_REQUIRE(place.spawned.size() == 1u);
      place.plan->start = script::on_start::node_lost;
      place.plan->ending_error = ending;
      place.plan->node_lost_starts = 1;  // the restart's start finds node x lost; the next one runs
      const caf::actor& relay = place.spawned.front();
      relay->enqueue(nullptr, caf::make_message_id(),
                     caf::make_message(caf::exit_msg{relay.address(), caf::make_error(pa::error::node_down, "node 'x'")}),
                     nullptr);
      run();
      BOOST_TEST(place.spawned.size() == 3u, history());
      BOOST_TEST(count_of("a", event_kind::exited) == 2u, "one start's failure was told as more than one end;" << history());
      BOOST_TEST(history().find("request_receiver_down") == std::string::npos,
                 "a start went to a stand-in that had ended;" << history());
      BOOST_TEST(count(event_kind::gave_up) == 0u, history());
      BOOST_TEST(state_of(s, "a") == "running", history());
      // A run lost with its node has the lost status, however the loss was learnt (review 18 #4).
      if (ending == pa::error::node_down)
        for (const auto& e : events)
          if (e.kind == event_kind::exited) BOOST_TEST((e.has_status && e.status.is_lost()), history());
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
      run();
    }
  }
}

// worker_down: end_failed_start — a restart_child whose start made a process (child_started)
// and failed (ready_timeout): the child is stopping until that process's exit report. The
// actor died before sending it (a relay whose node was lost right after it passed the
// failure on): the failed start ends there — stopped, its status lost. Before, the child
// stayed stopping with no actor, and a terminate_child (or the shutdown) never completed.
BOOST_AUTO_TEST_CASE(a_failed_start_whose_actor_dies_before_its_exit_report_is_stopped) {
  scripted_placement place{500ms};
  place.plan->node = "x";
  auto s = start_placed(place, flags_with(5, 5000), {far("w")});
  place.plan->start = script::on_start::started_failed_then_ended;
  auto r = ask<pa::child_info>(s, pa::restart_child_atom_v, std::string("w"));
  BOOST_TEST_REQUIRE(r.has_value(), "restart_child was not answered;" << history());
  BOOST_TEST_REQUIRE(!static_cast<bool>(*r));
  BOOST_TEST((r->error() == pa::error::ready_timeout), caf::to_string(r->error()));
  BOOST_TEST(state_of(s, "w") == "stopped", history());
  for (const auto& info : which(s))
    if (info.id == "w") BOOST_TEST((info.has_last_exit && info.last_exit.is_lost()), history());
  auto stop = ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string("w"));
  BOOST_TEST(stop.has_value(), "terminate_child of the child was never answered;" << history());
  place.plan->start = script::on_start::ready;
  auto again = ask<pa::child_info>(s, pa::restart_child_atom_v, std::string("w"));
  BOOST_TEST((again && static_cast<bool>(*again)), "restart_child failed;" << history());
  BOOST_TEST(state_of(s, "w") == "running", history());
}

// request: refuse; stop_step: stop — the supervisor is stopped while a start_child waits
// for its child's readiness. The caller gets shutting_down, and the run that start made is
// stopped by the shutdown like any other child's: stop is answered once it has stopped
// (OTP: the stop waits for start_child, then terminates that child too). Before the fix
// the child was dropped at once — its actor told to exit, nobody waiting for its run —
// and stop was answered, and the supervisor gone, while that run was still being stopped.
BOOST_AUTO_TEST_CASE(stop_waits_for_the_run_of_a_start_child_still_in_progress) {
  scripted_placement place{500ms};
  auto s = start_placed(place, flags_with(5, 5000), {});
  place.plan->start = script::on_start::answer;  // started, never ready: the start stays in progress
  place.plan->stop = script::on_stop::keep;      // its stop ends when the test says
  auto started = ask_later<pa::child_info>(*sys, s, pa::start_child_atom_v, far("w"));
  run();
  BOOST_TEST_REQUIRE(place.spawned.size() == 1u);
  BOOST_TEST_REQUIRE(count_of("w", event_kind::started) == 1u, history());
  BOOST_TEST_REQUIRE(!started->has_value(), "start_child was answered before w was ready");
  auto stop = ask_later<caf::ok_atom>(*sys, s, pa::stop_atom_v);
  run();
  BOOST_TEST_REQUIRE(started->has_value(), "start_child was not answered");
  BOOST_TEST_REQUIRE(!static_cast<bool>(**started));
  BOOST_TEST(((*started)->error() == pa::error::shutting_down), caf::to_string((*started)->error()));
  BOOST_TEST(!stop->has_value(), "stop was answered while w's run was still being stopped;" << history());
  BOOST_TEST_REQUIRE(place.kept->stops.size() == 1u, "the shutdown did not stop w's run;" << history());
  BOOST_TEST(alive(s));
  // w's run ends (its stand-in dies, as a remote worker's relay does when its node is
  // lost): the stop step ends with it.
  caf::anon_send_exit(place.spawned.front(), caf::exit_reason::kill);
  run();
  BOOST_TEST_REQUIRE(stop->has_value(), "stop was not answered once w had stopped;" << history());
  BOOST_TEST(static_cast<bool>(**stop), what(*stop));
  BOOST_TEST(count_of("w", event_kind::exited) == 1u, history());
  BOOST_TEST(!alive(s));
}

BOOST_AUTO_TEST_SUITE_END()
