// Process actors running fork-server targets (process_spec::target + args).
//
// The fork server must be forked while this program is single-threaded: before any
// actor system (CAF's scheduler threads) and before pkit's reaper thread exist. The
// global fixture below starts it first thing; each case then builds its own actor system.

#define BOOST_TEST_MODULE pkit actors fork_server targets
#include "actor_test_support.hpp"

#include <pkit/fork_server.hpp>

#include <optional>

using namespace pkit_actor_test;
using namespace std::chrono_literals;
using pkit::exit_status;
using pa::process_state;

namespace {

using args_t = std::vector<std::string>;

volatile std::sig_atomic_t trap_code = 0;
extern "C" void exit_with_trap_code(int) { ::_exit(trap_code); }

pkit::fork_server::registry make_registry() {
  pkit::fork_server::registry r;
  // trap-term CODE: exits with CODE on SIGTERM; writes its readiness newline to fd 3
  // once the handler is in place; then waits.
  r.add("trap-term", [](const args_t& args) -> int {
    trap_code = std::stoi(args.at(0));
    struct sigaction sa{};
    sa.sa_handler = exit_with_trap_code;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
    while (::write(3, "\n", 1) < 0 && errno == EINTR) {
    }
    for (;;) ::pause();
  });
  r.add("exit-with", [](const args_t& args) { return std::stoi(args.at(0)); });
  r.add("pause", [](const args_t&) -> int {
    for (;;) ::pause();
  });
  return r;
}

std::optional<pkit::fork_server> server_instance;

struct fork_server_fixture {
  fork_server_fixture() { server_instance.emplace(pkit::fork_server::start(make_registry())); }
  ~fork_server_fixture() { server_instance.reset(); }
};

const pkit::fork_server* server() { return &*server_instance; }

pa::process_spec target_spec(std::string target, args_t args) {
  pa::process_spec spec;
  spec.target = std::move(target);
  spec.args = std::move(args);
  return spec;
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(fork_server_fixture);

BOOST_FIXTURE_TEST_SUITE(fork_server_targets, actor_fixture)

BOOST_AUTO_TEST_CASE(a_fork_server_target_runs_with_its_args_and_join_relays_its_exit_code) {
  auto spec = target_spec("trap-term", {"42"});
  spec.notify_fd = 3;
  auto a = spawn(spec, server());
  auto r = start(a);
  BOOST_TEST_REQUIRE(r.ok(), "start failed: " << r.describe());
  const pid_t pid = *r.value;
  const auto st = read_proc_stat(pid);
  BOOST_TEST_REQUIRE(st.has_value(), "no /proc/" << pid);
  BOOST_TEST(st->ppid == server()->pid(), "not forked by the fork server");
  BOOST_TEST(st->pgrp == pid);
  BOOST_TEST(status(a).name == "trap-term");

  BOOST_TEST_REQUIRE(signal(a, SIGTERM).ok());
  auto j = join(a);
  BOOST_TEST_REQUIRE(j.ok(), "join failed: " << j.describe());
  BOOST_TEST(*j.value == exit_status::exited(42));
  BOOST_TEST(!proc_exists(pid));
}

// A target forked with its signals in place is ready (notify_fd = -1), even if it
// returns right after: start replies with its pid, join with its code. Repeated, as an
// exit racing the readiness report is what could go wrong.
BOOST_AUTO_TEST_CASE(a_fork_server_target_that_returns_at_once_reports_its_code_to_join) {
  auto a = spawn(target_spec("exit-with", {"17"}), server());
  int failed = 0;
  std::string first_error;
  for (int i = 0; i < 20; ++i) {
    auto r = start(a);
    if (!r.ok() && failed++ == 0) first_error = r.rendered;
    auto j = join(a);
    BOOST_TEST_REQUIRE(j.ok(), "join failed: " << j.describe());
    BOOST_TEST(*j.value == exit_status::exited(17));
  }
  BOOST_TEST(failed == 0, failed << " of 20 starts failed, first: " << first_error);
  BOOST_TEST(status(a).incarnation == 20u);
}

BOOST_AUTO_TEST_CASE(stop_of_a_fork_server_target_ends_it_with_sigterm) {
  auto spec = target_spec("pause", {});
  spec.stop_timeout_ms = 30000;
  auto a = spawn(spec, server());
  auto r = start(a);
  BOOST_TEST_REQUIRE(r.ok(), "start failed: " << r.describe());
  auto s = stop(a);
  BOOST_TEST_REQUIRE(s.ok(), "stop failed: " << s.describe());
  BOOST_TEST(*s.value == exit_status::killed(SIGTERM));
  BOOST_TEST(!proc_exists(*r.value));
}

BOOST_AUTO_TEST_CASE(a_fork_server_target_can_be_started_again_with_a_new_incarnation) {
  auto spec = target_spec("trap-term", {"8"});
  spec.notify_fd = 3;
  auto a = spawn(spec, server());
  auto r1 = start(a);
  BOOST_TEST_REQUIRE(r1.ok(), r1.describe());
  BOOST_TEST_REQUIRE(signal(a, SIGTERM).ok());
  BOOST_TEST_REQUIRE(join(a).ok());
  auto r2 = start(a);
  BOOST_TEST_REQUIRE(r2.ok(), r2.describe());
  BOOST_TEST(*r2.value != *r1.value);
  const auto info = status(a);
  BOOST_TEST(info.incarnation == 2u);
  BOOST_TEST(info.state == process_state::running);
  BOOST_TEST_REQUIRE(signal(a, SIGTERM).ok());
  auto j = join(a);
  BOOST_TEST_REQUIRE(j.ok(), j.describe());
  BOOST_TEST(*j.value == exit_status::exited(8));
}

BOOST_AUTO_TEST_CASE(an_unknown_fork_server_target_fails_with_invalid_spec) {
  auto a = spawn(target_spec("no-such-target", {}), server());
  auto r = start(a);
  BOOST_TEST(r.is(pa::error::invalid_spec), "expected invalid_spec, got " << r.describe());
  BOOST_TEST(r.rendered.find("no-such-target") != std::string::npos, r.rendered);
}

BOOST_AUTO_TEST_CASE(killing_the_actor_stops_its_fork_server_child) {
  auto spec = target_spec("pause", {});
  spec.stop_timeout_ms = 30000;
  auto a = spawn(spec, server());
  auto r = start(a);
  BOOST_TEST_REQUIRE(r.ok(), r.describe());
  self->send_exit(a, caf::exit_reason::kill);
  self->wait_for(a);
  BOOST_TEST(gone_within(*r.value), "fork-server child " << *r.value << " outlived its actor");
}

BOOST_AUTO_TEST_SUITE_END()
