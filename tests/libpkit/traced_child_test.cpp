// A child traced by another process when it dies (strace -p, gdb, a crash reporter that
// attaches to dump it): its pidfd turns readable at its death, but the zombie is its
// tracer's to collect until the tracer waits for it or lets go. pkit must neither block
// on it (its reaper thread reports every child's exit: one blocked waitid stalled them
// all) nor spin on the readable pidfd, and must collect it once the tracer is gone.
//
// The tracer (tests/common/tracer.hpp) is a forked process of the test's own that never
// waits. Without the right to trace, the cases skip with a warning.

#define BOOST_TEST_MODULE libpkit traced child
#include "test_support.hpp"
#include "tracer.hpp"

#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>
#include <pkit/target.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <memory>
#include <thread>
#include <optional>

#include <poll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace pkit_test;
using namespace std::chrono_literals;

namespace {

using pkit_test_common::tracer;

/// Whether the process `pid` has died (its pidfd turns readable at its death, whoever
/// may collect it), within `deadline`.
bool dead_within(pid_t pid, std::chrono::milliseconds deadline) {
  pkit::unique_fd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!fd) return false;
  pollfd p{fd.get(), POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(deadline.count())) == 1;
}

// The fork server collects its targets' exits itself: a traced one must not stall it
// either (every start and exit of every target goes through its one loop).
std::optional<pkit::fork_server> server;

struct server_fixture {
  server_fixture() {  // before any thread: the reaper starts with the first process
    pkit::fork_server::registry targets;
    targets.add("pause", [](const std::vector<std::string>&) -> int {
      for (;;) ::pause();
    });
    targets.add("exit", [](const std::vector<std::string>& a) { return std::stoi(a.at(0)); });
    server.emplace(pkit::fork_server::start(std::move(targets)));
  }
  ~server_fixture() { server.reset(); }
};

/// CPU time this process has used (every thread).
std::chrono::microseconds cpu_time() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  const auto us = [](const timeval& t) { return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec); };
  return us(u.ru_utime) + us(u.ru_stime);
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(server_fixture);

BOOST_AUTO_TEST_CASE(a_traced_child_that_dies_holds_up_no_other_childs_exit) {
  std::atomic<int> traced_exits{0}, other_exits{0};
  pkit::process_options traced_opts;
  traced_opts.on_exit = [&](pkit::process&) { ++traced_exits; };
  pkit::process traced(child_command({"pause"}), traced_opts);
  pkit::process_options other_opts;
  other_opts.on_exit = [&](pkit::process&) { ++other_exits; };
  pkit::process other(child_command({"exit", "3"}), other_opts);
  const pid_t pid = traced.start();
  tracer t(pid);  // the last made, the first ended: a failing case frees the zombie first
  PKIT_TEST_REQUIRE_TRACED(t);
  traced.kill();
  BOOST_REQUIRE(dead_within(pid, event_timeout));
  // The reaper has seen the traced pidfd readable; another child's exit must still come.
  other.start();
  const auto code = other.join(event_timeout);
  BOOST_REQUIRE_MESSAGE(code.has_value(), "a traced zombie blocked the reaper: another child's exit was never reported");
  BOOST_TEST(*code == 3);
  BOOST_TEST(other_exits.load() == 1);
  // Not collectable while traced: a timed join gives up at its deadline, no exit reported.
  // Nor does the reaper spin on the readable pidfd meanwhile: the whole process uses
  // next to no CPU through the wait (a spinning reaper thread uses all of it).
  const auto cpu_before = cpu_time();
  const auto asked = std::chrono::steady_clock::now();
  BOOST_TEST(!traced.join(500ms).has_value());
  BOOST_TEST((std::chrono::steady_clock::now() - asked < 5s), "a timed join of a traced zombie overran its deadline");
  BOOST_TEST((cpu_time() - cpu_before < 150ms), "the reaper spun on the traced zombie's readable pidfd");
  BOOST_TEST(!traced.is_alive());  // it died; only its collection waits (is_alive's rule)
  BOOST_TEST(traced_exits.load() == 0);
  // The tracer goes: the exit is collected and reported, once, with its real status.
  t.end();
  const auto st = traced.join_status(event_timeout);
  BOOST_REQUIRE_MESSAGE(st.has_value(), "the child was not collected once its tracer was gone");
  BOOST_TEST(st->is_killed());
  BOOST_TEST(st->signal() == SIGKILL);
  BOOST_TEST(traced_exits.load() == 1);
  BOOST_TEST(!traced.is_alive());
}

// Without callbacks a joiner collects the exit itself (not the reaper): the same rules.
BOOST_AUTO_TEST_CASE(a_joiner_that_collects_itself_waits_for_a_traced_child_up_to_its_deadline_only) {
  pkit::process traced(child_command({"pause"}));
  const pid_t pid = traced.start();
  tracer t(pid);
  PKIT_TEST_REQUIRE_TRACED(t);
  traced.kill();
  BOOST_REQUIRE(dead_within(pid, event_timeout));
  const auto asked = std::chrono::steady_clock::now();
  // On a thread of its own: a join that blocks in waitid returns only once the tracer is
  // gone, which this thread then sees to (a failure, not a hung suite).
  auto joined = std::async(std::launch::async, [&] { return traced.join(300ms); });
  const bool in_time = joined.wait_for(5s) == std::future_status::ready;
  const auto took = std::chrono::steady_clock::now() - asked;
  if (!in_time) t.end();
  BOOST_TEST(in_time, "a timed join of a traced zombie overran its deadline (blocked until the tracer ended)");
  const auto result = joined.get();
  if (in_time) {
    BOOST_TEST(!result.has_value());
    BOOST_TEST((took >= 300ms), "gave up before its deadline");
  }
  t.end();
  const auto st = traced.join_status(event_timeout);
  BOOST_REQUIRE_MESSAGE(st.has_value(), "the child was not collected once its tracer was gone");
  BOOST_TEST(st->signal() == SIGKILL);
}

// An on_exit that destroys another running process kills and collects that child on the
// reaper thread itself: a traced one must be left to the reaper, not waited for there.
BOOST_AUTO_TEST_CASE(a_traced_child_destroyed_from_an_on_exit_holds_up_no_other_childs_exit) {
  auto traced = std::make_unique<pkit::process>(child_command({"pause"}));
  pkit::process_options trigger_opts;
  trigger_opts.on_exit = [&](pkit::process&) { traced.reset(); };  // on the reaper thread
  pkit::process trigger(child_command({"exit", "0"}), trigger_opts);
  std::atomic<int> other_exits{0};
  pkit::process_options other_opts;
  other_opts.on_exit = [&](pkit::process&) { ++other_exits; };
  pkit::process other(child_command({"exit", "5"}), other_opts);
  const pid_t pid = traced->start();
  tracer t(pid);  // the last made, the first ended
  PKIT_TEST_REQUIRE_TRACED(t);
  trigger.start();
  BOOST_REQUIRE(trigger.join(event_timeout).has_value());  // its on_exit has run: traced is gone
  BOOST_TEST(!traced);
  BOOST_REQUIRE(dead_within(pid, event_timeout));
  other.start();
  const auto code = other.join(event_timeout);
  BOOST_REQUIRE_MESSAGE(code.has_value(), "the reaper waited for a traced zombie it had killed for a destructor");
  BOOST_TEST(*code == 5);
  // Once the tracer is gone the reaper collects it: no zombie of ours is left.
  pkit::unique_fd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  t.end();
  if (fd) {
    bool reaped = false;
    for (int i = 0; i < 1000 && !reaped; ++i) {
      reaped = !pkit_test_proc::proc_exists(pid);
      if (!reaped) std::this_thread::sleep_for(10ms);  // the reaper looks every 10 ms to 1 s
    }
    BOOST_TEST(reaped, "the killed child was never collected once its tracer was gone");
  }
}

BOOST_AUTO_TEST_CASE(a_traced_fork_server_target_that_dies_holds_up_no_other_targets_exit) {
  pkit::process traced(server->target("pause", {}));
  pkit::process other(server->target("exit", {"4"}));
  const pid_t pid = traced.start();
  tracer t(pid);  // the last made, the first ended
  PKIT_TEST_REQUIRE_TRACED(t);
  traced.kill();
  BOOST_REQUIRE(dead_within(pid, event_timeout));
  // The server saw the traced pidfd readable: another target must still start and end.
  other.start();
  const auto code = other.join(event_timeout);
  BOOST_REQUIRE_MESSAGE(code.has_value(), "a traced zombie blocked the fork server: another target's exit never came");
  BOOST_TEST(*code == 4);
  BOOST_TEST(!traced.join(300ms).has_value());
  t.end();
  const auto st = traced.join_status(event_timeout);
  BOOST_REQUIRE_MESSAGE(st.has_value(), "the target was not collected once its tracer was gone");
  BOOST_TEST(st->signal() == SIGKILL);
}
