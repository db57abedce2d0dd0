// Issue 9 item 16: why a child's last run ended, machine-readable (end_reason) beside the
// rendered text — in which_children (child_info::last_end) and in the events
// (supervisor_event::end) — with real processes (tests/helper/pkit_test_child), and across
// CAF's serialization (what remote controllers receive).

#define BOOST_TEST_MODULE pkit supervisor end reasons
#include "supervisor_test_support.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <cerrno>
#include <csignal>
#include <filesystem>

using namespace sup_test;
using namespace std::chrono_literals;
using pa::end_kind;
using pa::restart_strategy;

BOOST_FIXTURE_TEST_SUITE(supervisor_reason, sup_fixture)

// A program that no longer exists: restart_child fails at its exec; the child stays,
// stopped, and which_children names the stage, the errno and the program.
BOOST_AUTO_TEST_CASE(a_start_whose_program_is_missing_names_exec_enoent_and_the_program) {
  temp_dir dir;
  const std::string program = copy_of_helper(dir);
  auto s = start_sup(sup_spec("reasons", restart_strategy::one_for_one, {worker("w", {"pause"}, program)}));
  std::filesystem::remove(program);
  auto r = ask<pa::child_info>(s, pa::restart_child_atom_v, std::string("w"));
  BOOST_TEST_REQUIRE(!r.ok(), "restarted a program that does not exist");
  const auto c = child(s, "w");
  BOOST_TEST((c.state == pa::child_state::stopped), to_string(c.state));
  BOOST_TEST((c.last_end.kind == end_kind::start_failed), to_string(c.last_end.kind));
  BOOST_TEST_REQUIRE(c.last_end.has_start, "no start_failure; reason: " << c.last_reason);
  BOOST_TEST(c.last_end.start.stage == "exec");
  BOOST_TEST(c.last_end.start.errno_value == ENOENT);
  BOOST_TEST(c.last_end.start.program == program);
  BOOST_TEST(!c.last_reason.empty(), "the rendered text is gone");
}

// A child killed by SIGKILL from outside: its exit is `signaled`, the signal in its status,
// in which_children and in the exited event.
BOOST_AUTO_TEST_CASE(a_child_killed_by_sigkill_ended_signaled_with_signal_9) {
  auto s = start_sup(sup_spec("reasons", restart_strategy::one_for_one, {worker("w", {"pause"})}, 5));
  const auto before = child(s, "w");
  BOOST_TEST_REQUIRE(before.pid > 0);
  BOOST_TEST((before.last_end.kind == end_kind::none), to_string(before.last_end.kind));
  BOOST_TEST_REQUIRE(::kill(before.pid, SIGKILL) == 0);
  const auto e = require(ev(event_kind::exited, "w"), "w exited");
  BOOST_TEST((e.end.kind == end_kind::signaled), to_string(e.end.kind));
  BOOST_TEST_REQUIRE(e.has_status);
  BOOST_TEST((e.status.is_killed() && e.status.signal() == SIGKILL), e.status.to_string());
  const auto after = child(s, "w");
  BOOST_TEST((after.last_end.kind == end_kind::signaled), to_string(after.last_end.kind));
  BOOST_TEST((after.has_last_exit && after.last_exit.is_killed() && after.last_exit.signal() == 9));
}

// A nested supervisor that gave up: its parent's view of its end (the exited event and
// which_children, while its restart waits out a long backoff) says restart_limit.
BOOST_AUTO_TEST_CASE(a_nested_supervisor_that_gave_up_ended_with_restart_limit) {
  auto inner = sup_spec("inner", restart_strategy::one_for_one, {worker("x", {"exit", "3"})}, 0);
  inner.flags.backoff.initial_ms = 0;
  auto outer = sup_spec("outer", restart_strategy::one_for_one, {supervisor_child("n", inner)}, 5);
  outer.flags.backoff = {60000, 60000, 1.0, 0.0, 60000};
  auto s = spawn_sup(outer);
  const auto n_end = require(ev(event_kind::exited, "n"), "n exited");
  BOOST_TEST((n_end.end.kind == end_kind::restart_limit), to_string(n_end.end.kind) << " " << n_end.reason);
  BOOST_TEST(!n_end.end.has_start);
  require(ev(event_kind::restarting, "n"), "n restarting");
  const auto n = child(s, "n");
  BOOST_TEST((n.last_end.kind == end_kind::restart_limit), to_string(n.last_end.kind));
  BOOST_TEST(n.last_reason.find("restart_limit") != std::string::npos, n.last_reason);
}

// What a remote controller receives: child_info and the event keep the structured reason
// through CAF's binary serialization.
BOOST_AUTO_TEST_CASE(the_structured_reason_survives_serialization) {
  pa::child_info c;
  c.id = "w";
  c.last_reason = "cannot start '/x': exec: No such file or directory";
  c.last_end.kind = end_kind::start_failed;
  c.last_end.has_start = true;
  c.last_end.start = {"w", "/x", "exec", ENOENT, c.last_reason};
  std::vector<char> buf;
  {
    caf::binary_serializer sink{system, buf};
    BOOST_TEST_REQUIRE(!sink(c));
  }
  pa::child_info back;
  {
    caf::binary_deserializer source{system, buf};
    BOOST_TEST_REQUIRE(!source(back));
  }
  BOOST_TEST((back.last_end.kind == end_kind::start_failed));
  BOOST_TEST(back.last_end.has_start);
  BOOST_TEST(back.last_end.start.stage == "exec");
  BOOST_TEST(back.last_end.start.errno_value == ENOENT);
  BOOST_TEST(back.last_end.start.program == "/x");
  BOOST_TEST(back.last_reason == c.last_reason);
}

BOOST_AUTO_TEST_SUITE_END()
