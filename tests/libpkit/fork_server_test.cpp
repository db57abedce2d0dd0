// Behaviour of pkit::fork_server and of processes running its targets.
//
// fork_server::start must run while this program is single-threaded, i.e. before any
// pkit process exists (pkit's reaper thread starts on first use). So the servers are
// started by the global fixture, first thing, and shared by the test cases:
//   main_server     - used by most cases, lives for the whole run;
//   doomed_server   - shut down by the case that checks its children die with it;
//   closed_server   - shut down by the case that checks fork_server_unavailable;
//   killed_server   - SIGKILLed from outside by the case that checks a dead server.

#define BOOST_TEST_MODULE libpkit fork_server
#include "test_support.hpp"

#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>

#include <atomic>
#include <future>
#include <stdexcept>

using namespace pkit_test;
using namespace std::chrono_literals;

namespace {

using args_t = std::vector<std::string>;

pkit::fork_server::registry make_registry() {
  pkit::fork_server::registry r;
  r.add("exit-with", [](const args_t& args) { return std::stoi(args.at(0)); });
  r.add("pause", [](const args_t&) -> int {
    for (;;) ::pause();
  });
  r.add("print-args", [](const args_t& args) {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : "|") + a;
    write_all(1, s);
    return 0;
  });
  r.add("ppid", [](const args_t&) {
    write_all(1, std::to_string(::getppid()));
    return 0;
  });
  r.add("pgrp", [](const args_t&) {
    write_all(1, std::to_string(::getpgrp()));
    return 0;
  });
  r.add("fds", [](const args_t&) {
    write_all(1, open_fds_text());
    return 0;
  });
  r.add("throw", [](const args_t&) -> int { throw std::runtime_error("server-target-boom"); });
  return r;
}

std::optional<pkit::fork_server> main_server;
std::optional<pkit::fork_server> doomed_server;
std::optional<pkit::fork_server> closed_server;
std::optional<pkit::fork_server> killed_server;

struct servers_fixture {
  servers_fixture() {
    main_server.emplace(pkit::fork_server::start(make_registry()));
    doomed_server.emplace(pkit::fork_server::start(make_registry()));
    closed_server.emplace(pkit::fork_server::start(make_registry()));
    killed_server.emplace(pkit::fork_server::start(make_registry()));
  }
  ~servers_fixture() {
    killed_server.reset();
    closed_server.reset();
    doomed_server.reset();
    main_server.reset();
  }
};

pkit::fork_server& server() { return *main_server; }

struct kill_on_exit {
  pkit::process& p;
  ~kill_on_exit() {
    std::error_code ec;
    if (p.is_alive()) p.kill(ec);
  }
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(servers_fixture);

BOOST_AUTO_TEST_CASE(the_fork_server_reports_its_pid_and_that_it_runs) {
  BOOST_TEST(server().running());
  const pid_t pid = server().pid();
  BOOST_TEST(pid > 0);
  BOOST_TEST(pid != ::getpid());
  BOOST_TEST(is_running(pid));
  BOOST_TEST(is_unreaped_child(pid));  // forked from this program
}

BOOST_AUTO_TEST_CASE(a_server_target_runs_by_name_with_its_arguments) {
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  pkit::process p{server().target("print-args", {"a", "b c", ""}), o};
  p.start();
  BOOST_TEST(read_all(p.take_stdout_pipe().get()) == "a|b c|");
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(the_exit_code_of_a_server_child_is_relayed) {
  pkit::process p{server().target("exit-with", {"42"})};
  p.start();
  BOOST_TEST(p.join() == 42);
  BOOST_TEST(p.status() == std::optional<pkit::exit_status>{pkit::exit_status::exited(42)});

  pkit::process zero{server().target("exit-with", {"0"})};
  zero.start();
  BOOST_TEST(zero.join() == 0);
}

BOOST_AUTO_TEST_CASE(a_sigkill_death_of_a_server_child_is_relayed_as_minus_9) {
  pkit::process p{server().target("pause")};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  p.kill();
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-SIGKILL});
  BOOST_TEST(p.join_status().to_string() == "killed by signal 9 (SIGKILL)");
}

BOOST_AUTO_TEST_CASE(terminate_and_signal_reach_a_server_child) {
  pkit::process p{server().target("pause")};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  p.terminate(pkit::wait);
  BOOST_TEST(!p.is_alive());
  BOOST_TEST(p.exitcode() == std::optional<int>{-SIGTERM});

  p.start(pkit::wait);
  p.signal(SIGUSR1);
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-SIGUSR1});
}

BOOST_AUTO_TEST_CASE(server_children_are_forked_by_the_server_not_by_this_program) {
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  pkit::process p{server().target("ppid"), o};
  const pid_t pid = p.start();
  BOOST_TEST(pid != server().pid());
  BOOST_TEST(read_all(p.take_stdout_pipe().get()) == std::to_string(server().pid()));
  BOOST_TEST(p.join() == 0);
  BOOST_TEST(!proc_exists(pid));  // reaped by the server before its exit was relayed
}

BOOST_AUTO_TEST_CASE(an_unknown_target_name_fails_with_unknown_target) {
  BOOST_CHECK_EXCEPTION(server().target("no-such-target"), std::system_error,
                        has_code(pkit::errc::unknown_target));
}

BOOST_AUTO_TEST_CASE(start_with_wait_gives_a_server_child_that_honours_an_immediate_sigterm) {
  pkit::process p{server().target("pause")};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);
  BOOST_TEST_REQUIRE(::kill(pid, SIGTERM) == 0);
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-SIGTERM});
}

BOOST_AUTO_TEST_CASE(on_exit_is_called_once_for_a_server_child_with_its_pid) {
  std::promise<std::optional<pid_t>> seen;
  std::atomic<int> calls{0};
  pkit::process_options o;
  o.on_exit = [&](pkit::process& proc) {
    if (calls.fetch_add(1) == 0) seen.set_value(proc.pid());
  };
  pkit::process p{server().target("exit-with", {"3"}), o};
  const pid_t pid = p.start();
  auto f = seen.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(f.get() == std::optional<pid_t>{pid});
  BOOST_TEST(p.join() == 3);
  BOOST_TEST(calls.load() == 1);
}

BOOST_AUTO_TEST_CASE(a_server_process_is_named_after_its_target) {
  pkit::process p{server().target("exit-with", {"0"})};
  BOOST_TEST(p.name() == "exit-with");
  pkit::process_options o;
  o.name = "custom";
  pkit::process named{server().target("exit-with", {"0"}), o};
  BOOST_TEST(named.name() == "custom");
}

BOOST_AUTO_TEST_CASE(a_server_child_gets_only_stdio_and_the_passed_fds) {
  auto extra = make_pipe();
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::pipe();
  o.err = pkit::stdio::null();
  o.pass_fds.emplace_back(5, extra.write.get());
  pkit::process p{server().target("fds"), o};
  p.start();
  BOOST_TEST(read_all(p.take_stdout_pipe().get()) == "0 1 2 5");
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(a_server_child_leads_its_own_process_group) {
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  pkit::process p{server().target("pgrp"), o};
  const pid_t pid = p.start();
  BOOST_TEST(read_all(p.take_stdout_pipe().get()) == std::to_string(pid));
  p.join();
}

BOOST_AUTO_TEST_CASE(a_throwing_server_target_exits_with_1_and_reports_on_stderr) {
  pkit::process_options o;
  o.err = pkit::stdio::pipe();
  pkit::process p{server().target("throw"), o};
  p.start();
  const std::string err = read_all(p.take_stderr_pipe().get());
  BOOST_TEST(err.find("server-target-boom") != std::string::npos, err);
  BOOST_TEST(p.join() == 1);
}

BOOST_AUTO_TEST_CASE(a_server_process_can_run_again_after_its_exit_was_collected) {
  pkit::process p{server().target("exit-with", {"6"})};
  const pid_t first = p.start();
  BOOST_TEST(p.join() == 6);
  BOOST_TEST(!p.pid().has_value());
  const pid_t second = p.start();
  BOOST_TEST(second != first);
  BOOST_TEST(p.join() == 6);
  BOOST_TEST(p.runs() == 2u);
}

BOOST_AUTO_TEST_CASE(stop_applies_to_a_server_child) {
  pkit::process p{server().target("pause")};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  BOOST_TEST(p.stop(pkit::stop_policy{SIGTERM, event_timeout, true}) ==
             pkit::exit_status::killed(SIGTERM));
}

BOOST_AUTO_TEST_CASE(destroying_a_running_server_process_stops_its_child) {
  pid_t pid = 0;
  {
    pkit::process p{server().target("pause")};
    pid = p.start(pkit::wait);
    BOOST_TEST_REQUIRE(is_running(pid));
  }
  BOOST_TEST(!proc_exists(pid));
}

BOOST_AUTO_TEST_CASE(server_children_die_when_the_server_shuts_down) {
  pkit::fork_server& doomed = *doomed_server;
  BOOST_TEST_REQUIRE(doomed.running());
  const pid_t server_pid = doomed.pid();

  pkit::process a{doomed.target("pause")};
  pkit::process b{doomed.target("pause")};
  const pid_t pa = a.start(pkit::wait);
  const pid_t pb = b.start(pkit::wait);

  doomed.shutdown();
  BOOST_TEST(!doomed.running());
  BOOST_TEST(doomed.pid() == -1);
  BOOST_TEST(!is_unreaped_child(server_pid));  // reaped before shutdown returned
  BOOST_TEST(!proc_exists(server_pid));

  BOOST_TEST(a.join(event_timeout) == std::optional<int>{-SIGKILL});
  BOOST_TEST(b.join(event_timeout) == std::optional<int>{-SIGKILL});
  BOOST_TEST(!is_running(pa));
  BOOST_TEST(!is_running(pb));

  BOOST_CHECK_NO_THROW(doomed.shutdown());  // idempotent
}

BOOST_AUTO_TEST_CASE(starting_a_server_target_after_shutdown_fails_with_fork_server_unavailable) {
  pkit::fork_server& closed = *closed_server;
  auto target = closed.target("exit-with", {"0"});
  closed.shutdown();
  BOOST_TEST(!closed.running());

  pkit::process p{target};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == pkit::errc::fork_server_unavailable);
  BOOST_TEST(!p.is_alive());
  ec.clear();
  p.start(pkit::wait, ec);
  BOOST_TEST(ec == pkit::errc::fork_server_unavailable);
  BOOST_CHECK_EXCEPTION(p.start(), std::system_error,
                        has_code(pkit::errc::fork_server_unavailable));
}

BOOST_AUTO_TEST_CASE(a_fork_server_that_died_is_unavailable_and_its_children_die_with_it) {
  pkit::fork_server& srv = *killed_server;
  pkit::process child{srv.target("pause")};
  const pid_t child_pid = child.start(pkit::wait);
  auto later = srv.target("exit-with", {"0"});
  const pid_t server_pid = srv.pid();
  BOOST_TEST_REQUIRE(server_pid > 0);

  BOOST_TEST_REQUIRE(::kill(server_pid, SIGKILL) == 0);
  wait_until_exited(server_pid);  // dead (a zombie of ours), never reaped by this test

  const auto status = child.join_status(event_timeout);
  BOOST_TEST_REQUIRE(status.has_value());  // the child's end is still reported
  BOOST_TEST_MESSAGE("child of the killed server ended: " << status->to_string());
  BOOST_TEST(!is_running(child_pid));
  reap_if_ours(child_pid);

  BOOST_TEST(!srv.running());
  pkit::process p{later};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == pkit::errc::fork_server_unavailable);
}

BOOST_AUTO_TEST_CASE(the_registry_finds_what_was_added_and_replaces_by_name) {
  pkit::fork_server::registry r;
  BOOST_TEST(!r.contains("x"));
  BOOST_TEST(r.find("x") == nullptr);
  r.add("x", [](const args_t&) { return 1; }).add("x", [](const args_t&) { return 2; });
  BOOST_TEST(r.contains("x"));
  BOOST_TEST_REQUIRE(r.find("x") != nullptr);
  BOOST_TEST((*r.find("x"))({}) == 2);
}
