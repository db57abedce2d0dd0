// Shutdown rules of the supervisor actor that need slow children (issue 9 items 5 and 8):
// how a simple_one_for_one supervisor stops its children, the shutdown a nested
// supervisor gets by default, and that a restarted worker never runs beside the process
// of its previous run. Children run tests/helper/pkit_test_child.

#define BOOST_TEST_MODULE pkit supervisor shutdown
#include "supervisor_test_support.hpp"

#include <fstream>
#include <iterator>

using namespace sup_test;
using namespace std::chrono_literals;
using pa::restart_strategy;
using pa::restart_type;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(supervisor_shutdown, sup_fixture)

// OTP (terminate_dynamic_children): a simple_one_for_one supervisor sends every child its
// shutdown at once and waits once for all of them. Stopping them one at a time would take
// one shutdown timeout per child that ignores SIGTERM.
BOOST_AUTO_TEST_CASE(simple_one_for_one_shutdown_stops_every_child_at_once_and_waits_once) {
  constexpr int n = 12;
  constexpr auto timeout = 600ms;
  auto tmpl = ready_line_worker("stubborn", {"ignore-term"});
  tmpl.shutdown_ms = timeout.count();
  auto s = start_sup(sup_spec("dyn", restart_strategy::simple_one_for_one, {tmpl}));
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    auto r = ask<pa::child_info>(s, pa::start_child_atom_v, std::vector<std::string>{});
    BOOST_TEST_REQUIRE(r.ok(), r.describe());
    pids.push_back(r.value->pid);
  }
  const auto t0 = clock_type::now();
  auto r = ask<caf::ok_atom>(s, pa::stop_atom_v);
  const auto took = since(t0);
  BOOST_TEST_REQUIRE(r.ok(), r.describe());
  // One after the other: n * 600 ms = 7.2 s. At once: one timeout.
  BOOST_TEST(took >= timeout - 20ms, "stop answered after " << took.count() << " ms, before the shutdown timeout");
  BOOST_TEST(took < 4 * timeout, "stop took " << took.count() << " ms: children were stopped one at a time");
  for (pid_t p : pids) BOOST_TEST(gone_within(p, 1s), "pid " << p << " still there");
  for (int i = 0; i < n; ++i) require(ev(event_kind::stopped), "every instance stopped");
}

// OTP: a supervisor child's shutdown defaults to infinity (a worker's to 5000 ms), so that
// a subtree is given the time its own children's shutdowns need. A 5 s default killed a
// nested supervisor whose worker had a longer shutdown before that worker's stop ended.
BOOST_AUTO_TEST_CASE(a_nested_supervisor_child_defaults_to_an_infinite_shutdown) {
  auto slow = ready_line_worker("slow", {"ignore-term"});
  slow.shutdown_ms = 6500;  // longer than the old 5 s default
  pa::child_spec inner;
  inner.id = "inner";
  inner.supervisor.push_back(sup_spec("inner", restart_strategy::one_for_one, {slow}));
  BOOST_TEST(inner.shutdown_ms == pa::default_shutdown);
  auto s = spawn_sup(sup_spec("outer", restart_strategy::one_for_one, {inner}));
  if (!expect(ev(event_kind::ready, "inner"))) {
    auto why = await_down(s, 1s);
    BOOST_FAIL("inner not ready; outer " << (why ? "exited: " + render(*why) : std::string("lives")) << history_text());
  }
  BOOST_TEST_REQUIRE(await_boot(), "the supervisor did not complete its initial start");
  const auto worker_pid = await_marker_pid(marker_of(slow));
  BOOST_TEST_REQUIRE(worker_pid > 0);

  request_timeout = 20s;
  const auto t0 = clock_type::now();
  auto r = ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string("inner"));
  const auto took = since(t0);
  BOOST_TEST_REQUIRE(r.ok(), r.describe());
  require(ev(event_kind::stopped, "inner"), "inner stopped");
  // The nested supervisor ended by itself (normally: no exit reason) once its worker was
  // SIGKILLed after the worker's own 6.5 s; it was not killed at 5 s.
  const auto c = child(s, "inner");
  BOOST_TEST(c.last_reason.empty(), "the nested supervisor was killed: " << c.last_reason);
  BOOST_TEST(took >= 6400ms, "terminate_child took only " << took.count() << " ms");
  BOOST_TEST(gone_within(worker_pid, 2s));
}

// Never two runs of one child at once. A process actor killed with exit_reason::kill hands
// its process to pkit's stopper: the process gets its SIGTERM and up to its shutdown
// timeout before the SIGKILL. The supervisor's restart must wait until that process is
// gone; before the fix it started the new instance at once, beside the old one.
BOOST_AUTO_TEST_CASE(a_worker_whose_process_actor_was_killed_is_restarted_only_once_its_old_process_is_gone) {
  temp_dir dir;
  const std::string record = dir.file("terms");
  auto w = ready_line_worker("w", {"record-term", record});  // SIGTERM: recorded, ignored
  w.shutdown_ms = 1500;                                       // SIGKILL 1.5 s after it
  auto s = start_sup(sup_spec("overlap", restart_strategy::one_for_one, {w}, 5));
  const auto before = child(s, "w");
  const pid_t old = before.pid;
  BOOST_TEST_REQUIRE(old > 0);
  BOOST_TEST_REQUIRE(static_cast<bool>(before.handle));

  self->send_exit(before.handle, caf::exit_reason::kill);
  auto started = require(
      [old](const pa::supervisor_event& e) { return e.kind == event_kind::started && e.child == "w" && e.pid != old; },
      "w started again");
  // When the new run exists, the old process must have exited (a zombie the reaper has
  // not collected yet runs no more).
  BOOST_TEST(!is_running(old), "pid " << old << " still runs beside its successor " << started.pid);
  // It was in its grace period: it got the SIGTERM (and then the SIGKILL).
  BOOST_TEST(read_file(record).find("TERM " + std::to_string(old) + "\n") != std::string::npos, read_file(record));
  // The new run's ready (the first run's may still be unread): only then has it exec'd
  // and its argv shows the marker.
  const pid_t fresh = started.pid;
  require([fresh](const pa::supervisor_event& e) { return e.kind == event_kind::ready && e.child == "w" && e.pid == fresh; },
          "w ready again");
  const auto st = read_proc_stat(started.pid);
  BOOST_TEST(pids_with_marker(marker_of(w)).size() == 1u,
             "new run " << started.pid << " state " << (st ? std::string(1, st->state) : std::string("gone"))
                        << " ppid " << (st ? st->ppid : 0) << "; old " << old << " running " << is_running(old));
}

// A stop's event says how the run ended, like an exit's does: the status, and for a
// worker that outlived its shutdown timeout the reason stop_timeout (it was killed). It
// carried neither, so whoever watched the events (pkit run's final table, its exit code)
// could not tell an orderly stop from a forced one.
BOOST_AUTO_TEST_CASE(a_stopped_event_carries_the_status_and_says_when_the_stop_had_to_kill) {
  auto stubborn = ready_line_worker("stubborn", {"ignore-term"});
  stubborn.shutdown_ms = 200;
  auto polite = ready_line_worker("polite", {"trap-term", "0"});
  auto s = start_sup(sup_spec("stops", restart_strategy::one_for_one, {stubborn, polite}, 5));
  const pid_t stubborn_pid = child(s, "stubborn").pid;
  BOOST_TEST(ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string{"stubborn"}).ok());
  auto killed = require(ev(event_kind::stopped, "stubborn"), "stubborn stopped");
  BOOST_TEST(killed.pid == stubborn_pid);
  BOOST_TEST_REQUIRE(killed.has_status);
  BOOST_TEST(killed.status.signal() == SIGKILL);
  BOOST_TEST(killed.reason == std::string(pa::stop_timeout_reason) + ": killed after 200 ms");
  BOOST_TEST(child(s, "stubborn").last_reason == killed.reason);

  BOOST_TEST(ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string{"polite"}).ok());
  auto clean = require(ev(event_kind::stopped, "polite"), "polite stopped");
  BOOST_TEST_REQUIRE(clean.has_status);
  BOOST_TEST(clean.status.code() == 0);
  BOOST_TEST(!clean.status.is_killed());
  BOOST_TEST(clean.reason.empty(), clean.reason);
}

// The verdict was inferred from the status (SIGKILL that was not the stop signal): a
// kill -9 by someone else during the grace period read as a stop timeout, and a group
// killed at the deadline around a leader that obeyed SIGTERM read as clean.
BOOST_AUTO_TEST_CASE(a_sigkill_from_elsewhere_during_the_stop_is_no_stop_timeout) {
  auto stubborn = ready_line_worker("stubborn", {"ignore-term"});
  stubborn.shutdown_ms = 30000;
  auto s = start_sup(sup_spec("other_kill", restart_strategy::one_for_one, {stubborn}, 5));
  const pid_t pid = child(s, "stubborn").pid;
  caf::scoped_actor asker{system};  // its reply must not land among the events
  asker->send(s, pa::terminate_child_atom_v, std::string{"stubborn"});
  // SIGTERM is sent (and ignored) once the child is stopping: then another hand kills it.
  for (int i = 0; i < 10000 && child(s, "stubborn").state != pa::child_state::stopping; ++i) std::this_thread::yield();
  BOOST_TEST_REQUIRE((child(s, "stubborn").state == pa::child_state::stopping));
  BOOST_TEST_REQUIRE(::kill(pid, SIGKILL) == 0);
  auto stopped = require(ev(event_kind::stopped, "stubborn"), "stubborn stopped");
  BOOST_TEST(stopped.status.signal() == SIGKILL);
  BOOST_TEST(stopped.reason.empty(), "not the stop's kill: " << stopped.reason);
}

BOOST_AUTO_TEST_CASE(a_group_killed_at_the_deadline_around_an_obedient_leader_is_a_stop_timeout) {
  pa::child_spec leader;
  leader.id = "leader";
  // The leader (sh) dies of SIGTERM; its job in the same group ignores it and is ready.
  leader.process.argv = {"/bin/sh", "-c", "(trap '' TERM; echo ready >&3; exec sleep 1000) & wait", "sh"};
  leader.process.notify_fd = 3;
  leader.shutdown_ms = 300;
  auto s = start_sup(sup_spec("group_kill", restart_strategy::one_for_one, {leader}, 5));
  BOOST_TEST(ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string{"leader"}).ok());
  auto stopped = require(ev(event_kind::stopped, "leader"), "leader stopped");
  BOOST_TEST(stopped.status.signal() == SIGTERM, "the leader obeyed");
  BOOST_TEST(stopped.reason == std::string(pa::stop_timeout_reason) + ": its process group killed after 300 ms");
}

// Review 15 #1 and #2: a worker's process actor that dies during its stop hands the
// process to pkit's stopper, which gives it the rest of its grace period. OTP answers
// terminate_child only once the child is dead: the reply came at once, the process still
// running (a delete_child and start_child with the same id then ran two instances). And a
// local worker's actor answers the held stop with shutting_down before its down message:
// the child was stopped silently, no event, its last_end stale.
BOOST_AUTO_TEST_CASE(terminate_child_of_a_worker_whose_actor_dies_during_the_stop_answers_once_its_process_is_gone) {
  auto w = ready_line_worker("w", {"ignore-term"});
  w.shutdown_ms = 400;  // the stopper's SIGKILL, 400 ms after its SIGTERM
  auto s = start_sup(sup_spec("lost_stop", restart_strategy::one_for_one, {w}, 5));
  const auto before = child(s, "w");
  const pid_t pid = before.pid;
  BOOST_TEST_REQUIRE(pid > 0);
  BOOST_TEST_REQUIRE(static_cast<bool>(before.handle));
  caf::scoped_actor asker{system};
  auto stop = asker->request(s, caf::infinite, pa::terminate_child_atom_v, std::string{"w"});
  for (int i = 0; i < 100000 && child(s, "w").state != pa::child_state::stopping; ++i) std::this_thread::yield();
  BOOST_TEST_REQUIRE((child(s, "w").state == pa::child_state::stopping));
  self->send_exit(before.handle, caf::exit_reason::kill);
  bool answered = false, ran_on = true;
  stop.receive(
      [&](caf::ok_atom) {
        answered = true;
        ran_on = is_running(pid);
      },
      [&](caf::error& e) { BOOST_FAIL("terminate_child failed: " << caf::to_string(e)); });
  BOOST_TEST_REQUIRE(answered);
  BOOST_TEST(!ran_on, "terminate_child answered while pid " << pid << " still ran");
  // The same end as a remote worker's: one exited event, the actor's end recorded.
  const auto ended = require(ev(event_kind::exited, "w"), "w's end told");
  BOOST_TEST((ended.end.kind == pa::end_kind::actor_down));
  const auto after = child(s, "w");
  BOOST_TEST((after.state == pa::child_state::stopped));
  BOOST_TEST((after.last_end.kind == pa::end_kind::actor_down));
  BOOST_TEST(after.last_reason.find("its process actor ended") != std::string::npos, after.last_reason);
}

// Review 15 #1 (b): the same inside a nested supervisor's shutdown. It quit at once, and
// its parent could start a new instance (a new nested supervisor, with no watch of the old
// process) beside the old worker. Whether the actor dies before or during the worker's
// stop, the nested supervisor ends only once the worker's process is gone.
BOOST_AUTO_TEST_CASE(a_nested_supervisor_whose_worker_actor_dies_during_its_shutdown_ends_once_the_process_is_gone) {
  auto w = ready_line_worker("w", {"ignore-term"});
  w.shutdown_ms = 400;
  auto s = start_sup(sup_spec("outer", restart_strategy::one_for_one,
                              {supervisor_child("inner", sup_spec("inner", restart_strategy::one_for_one, {w}))}, 5));
  const auto inner = caf::actor_cast<pa::supervisor_actor>(child(s, "inner").handle);
  BOOST_TEST_REQUIRE(static_cast<bool>(inner));
  const auto worker = child(inner, "w");
  const pid_t pid = worker.pid;
  BOOST_TEST_REQUIRE(pid > 0);
  caf::scoped_actor asker{system};
  auto stop = asker->request(s, caf::infinite, pa::terminate_child_atom_v, std::string{"inner"});
  self->send_exit(worker.handle, caf::exit_reason::kill);
  bool answered = false, ran_on = true;
  stop.receive(
      [&](caf::ok_atom) {
        answered = true;
        ran_on = is_running(pid);
      },
      [&](caf::error& e) { BOOST_FAIL("terminate_child failed: " << caf::to_string(e)); });
  BOOST_TEST_REQUIRE(answered);
  BOOST_TEST(!ran_on, "the nested supervisor ended while pid " << pid << " still ran");
  BOOST_TEST(ask<pa::child_info>(s, pa::restart_child_atom_v, std::string{"inner"}).ok());
  BOOST_TEST(await_marker_pid(marker_of(w), pid) > 0);
  BOOST_TEST(pids_with_marker(marker_of(w)).size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(supervisor_respawned_actor, sup_fixture)

// A new process actor numbers its runs from 1 again: a supervisor that kept the old
// incarnation dropped every report of the new actor as stale — the child was never seen
// ready, its start step never completed and every later request (terminate_child here)
// went unanswered.
BOOST_AUTO_TEST_CASE(a_worker_restarted_before_its_process_actor_died_is_supervised_by_the_new_actor) {
  auto w = worker("w", {"pause"});
  auto s = start_sup(sup_spec("respawn", restart_strategy::one_for_one, {w}, 10));
  const pid_t first = child(s, "w").pid;
  BOOST_TEST_REQUIRE(first > 0);
  ::kill(first, SIGKILL);  // a crash: the same process actor restarts it (its run 2)
  const auto second = require(
      [first](const pa::supervisor_event& e) { return e.kind == event_kind::ready && e.child == "w" && e.pid != first; },
      "w ready after its crash");
  const auto info = child(s, "w");
  BOOST_TEST_REQUIRE(static_cast<bool>(info.handle));
  self->send_exit(info.handle, caf::exit_reason::kill);  // a new process actor: runs from 1
  const auto third = require(
      [&](const pa::supervisor_event& e) {
        return e.kind == event_kind::ready && e.child == "w" && e.pid != first && e.pid != second.pid;
      },
      "w ready under its new process actor");
  BOOST_TEST(third.incarnation > second.incarnation, "incarnations stay increasing");
  BOOST_TEST(ask<caf::ok_atom>(s, pa::terminate_child_atom_v, std::string{"w"}).ok());
  BOOST_TEST(!is_running(third.pid));
}

BOOST_AUTO_TEST_SUITE_END()
