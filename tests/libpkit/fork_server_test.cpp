// Behaviour of pkit::fork_server and of processes running its targets.
//
// fork_server::start must run while this program is single-threaded, i.e. before any
// pkit process exists (pkit's reaper thread starts on first use). So the servers are
// started by the global fixture, first thing, and shared by the test cases:
//   main_server     - used by most cases, lives for the whole run;
//   doomed_server   - shut down by the case that checks its children die with it;
//   closed_server   - shut down by the case that checks fork_server_unavailable;
//   killed_server   - SIGKILLed from outside by the case that checks a dead server;
//   stopped_server  - SIGSTOPped by the case that checks the request deadline;
//   wedged_server   - SIGSTOPped by the case that checks that group signals never wait
//                     for the server (its request timeout is longer than the case's);
//   faulty servers  - each with a fault injected into its first reply (or the parent's
//                     first request), through the library's internal test hooks.

#define BOOST_TEST_MODULE libpkit fork_server
#include "test_support.hpp"

#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>

// Internal: the fault hooks, spawn ids and group signals (tests/libpkit/CMakeLists.txt
// puts libpkit/src on this suite's include path).
#include "detail/fork_server_core.hpp"
#include "detail/pidfd.hpp"
#include "detail/reaper.hpp"

#include <atomic>
#include <future>
#include <map>
#include <stdexcept>
#include <thread>

#include <sys/resource.h>

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
  // Joins the server's process group (leaving the one it leads), says so, pauses.
  r.add("leave-group", [](const args_t&) -> int {
    if (::setpgid(0, ::getpgid(::getppid())) != 0) return 2;
    write_all(1, "left\n");
    for (;;) ::pause();
  });
  r.add("ignore-term", [](const args_t&) -> int {
    ::signal(SIGTERM, SIG_IGN);
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
  // Forks a member of its own process group, prints the member's pid, then pauses
  // ("stay") or exits with 0 at once ("leave"). The member pauses.
  r.add("leader-with-member", [](const args_t& args) -> int {
    const pid_t member = ::fork();
    if (member < 0) return 2;
    if (member == 0) {
      for (;;) ::pause();
    }
    write_all(1, std::to_string(member) + "\n");
    if (args.at(0) == "leave") return 0;
    for (;;) ::pause();
  });
  return r;
}

using fault = pkit::detail::fork_server_faults::reply_fault;
using core_ptr = std::shared_ptr<pkit::detail::fork_server_core>;

constexpr auto stopped_server_timeout = 300ms;
// Three times the case's own limit: a call that waited for this server would fail the case.
constexpr auto wedged_server_timeout = 3 * event_timeout;

std::optional<pkit::fork_server> main_server;
std::optional<pkit::fork_server> doomed_server;
std::optional<pkit::fork_server> closed_server;
std::optional<pkit::fork_server> killed_server;
std::optional<pkit::fork_server> stopped_server;
std::optional<pkit::fork_server> wedged_server;
std::map<fault, core_ptr> faulty_servers;
core_ptr huge_request_server;
core_ptr sparing_server;
core_ptr slow_forking_server;

core_ptr launch_with(const pkit::detail::fork_server_faults& faults) {
  return pkit::detail::fork_server_core::launch(make_registry(), {}, faults);
}

struct servers_fixture {
  servers_fixture() {
    main_server.emplace(pkit::fork_server::start(make_registry()));
    doomed_server.emplace(pkit::fork_server::start(make_registry()));
    closed_server.emplace(pkit::fork_server::start(make_registry()));
    killed_server.emplace(pkit::fork_server::start(make_registry()));
    pkit::fork_server::options quick;
    quick.request_timeout = stopped_server_timeout;
    stopped_server.emplace(pkit::fork_server::start(make_registry(), quick));
    pkit::fork_server::options slow;
    slow.request_timeout = wedged_server_timeout;
    wedged_server.emplace(pkit::fork_server::start(make_registry(), slow));
    for (fault f : {fault::wrong_id, fault::garbage, fault::oversized, fault::no_fds,
                    fault::fail_send}) {
      pkit::detail::fork_server_faults faults;
      faults.reply = f;
      faulty_servers[f] = launch_with(faults);
    }
    pkit::detail::fork_server_faults huge;
    huge.huge_name_len = true;
    huge_request_server = launch_with(huge);
    pkit::detail::fork_server_faults sparing;
    sparing.spare_first_at_shutdown = true;
    sparing.shutdown_wait = 300ms;
    sparing_server = launch_with(sparing);
    pkit::detail::fork_server_faults slow_fork;
    slow_fork.after_fork = 300ms;
    slow_forking_server = launch_with(slow_fork);
  }
  ~servers_fixture() {
    slow_forking_server->shutdown();
    sparing_server->shutdown();
    huge_request_server->shutdown();
    for (auto& [f, core] : faulty_servers) core->shutdown();
    wedged_server.reset();
    stopped_server.reset();
    killed_server.reset();
    closed_server.reset();
    doomed_server.reset();
    main_server.reset();
  }
};

pkit::fork_server& server() { return *main_server; }

/// The live children of `parent` (any process's), from /proc.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    pid_t pid{};
    const auto [end, perr] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (perr != std::errc{} || end != name.data() + name.size()) continue;
    if (const auto st = read_proc_stat(pid); st && st->ppid == parent) out.push_back(pid);
  }
  return out;
}

/// Whether `parent` has no live child left within `limit`: the server collects a child it
/// killed for a parent that gave up on it at once if it dies within 200 ms, otherwise
/// from its loop (a child in uninterruptible sleep, or traced, must not stall it).
bool no_children_within(pid_t parent, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!children_of(parent).empty()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a state to watch, no event
  }
  return true;
}

/// Runs `f` on a thread of its own and waits at most `limit` for it: a call that hangs
/// fails the case instead of the suite. The thread is joined in any case.
template <class F>
auto within(std::chrono::milliseconds limit, F f) {
  auto fut = std::async(std::launch::async, std::move(f));
  const bool in_time = fut.wait_for(limit) == std::future_status::ready;
  BOOST_TEST(in_time, "the call did not return within " << limit.count() << " ms");
  return std::pair{in_time, std::move(fut)};
}

/// The peak resident size of `pid` in kB (VmHWM).
long peak_rss_kb(pid_t pid) {
  const std::string v =
      status_field(read_text_file("/proc/" + std::to_string(pid) + "/status"), "VmHWM:");
  return std::atol(v.c_str());
}

struct kill_on_exit {
  pkit::process& p;
  ~kill_on_exit() {
    std::error_code ec;
    if (p.is_alive()) p.kill(ec);
  }
};

/// A server child whose exit (its status) is reported to the case; killed if still running
/// when the case ends.
struct watched_child {
  std::promise<pkit::exit_status> exited;
  std::future<pkit::exit_status> status = exited.get_future();
  std::unique_ptr<pkit::process> p;
  pkit::unique_fd out;  // the child's stdout
  watched_child(pkit::server_target target, pkit::stop_policy stop) {
    pkit::process_options o;
    o.stop = stop;
    o.out = pkit::stdio::pipe();
    o.on_exit = [this](pkit::process& proc) { exited.set_value(*proc.status()); };
    p = std::make_unique<pkit::process>(std::move(target), std::move(o));
    p->start(pkit::wait);
    out = p->take_stdout_pipe();
  }
  watched_child(const watched_child&) = delete;
  watched_child& operator=(const watched_child&) = delete;
  ~watched_child() {
    std::error_code ec;
    p->kill(ec);
    p.reset();  // waits for the child and its on_exit
  }
  bool reported() { return status.wait_for(event_timeout) == std::future_status::ready; }
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

  // The child's end is still reported, as what ended it: its PDEATHSIG, SIGKILL.
  const auto status = child.join_status(event_timeout);
  BOOST_TEST(status == std::optional<pkit::exit_status>{pkit::exit_status::killed(SIGKILL)});
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

// ---------------------------------------------------------------------------
// Robustness: deadlines, malformed replies, failures after the fork
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fork_server_options_reject_a_request_timeout_that_is_not_positive) {
  pkit::fork_server::options o;
  o.request_timeout = 0ms;
  BOOST_CHECK_EXCEPTION(pkit::fork_server::start(make_registry(), o), std::system_error,
                        has_code(pkit::errc::invalid_argument));
}

BOOST_AUTO_TEST_CASE(a_stopped_fork_server_fails_starts_with_fork_server_timeout_and_leaves_no_child) {
  pkit::fork_server& srv = *stopped_server;
  const pid_t server_pid = srv.pid();
  const auto core = srv.target("pause").server;
  BOOST_TEST_REQUIRE(::kill(server_pid, SIGSTOP) == 0);
  siginfo_t si{};
  BOOST_TEST_REQUIRE(::waitid(P_PID, static_cast<id_t>(server_pid), &si, WSTOPPED | WNOWAIT) == 0);

  // From a thread of the test...
  pkit::process p{srv.target("pause")};
  std::error_code ec;
  const auto t0 = std::chrono::steady_clock::now();
  auto [in_time, done] = within(event_timeout, [&] { p.start(pkit::wait, ec); });
  const auto took = std::chrono::steady_clock::now() - t0;
  if (in_time) {
    BOOST_TEST(ec == pkit::errc::fork_server_timeout);
    BOOST_TEST(took >= stopped_server_timeout);
    BOOST_TEST(!p.is_alive());
  }

  // ...and from the reaper thread (an on_exit callback), which must not hang either.
  std::promise<std::error_code> from_reaper;
  pkit::process on_reaper{srv.target("exit-with", {"0"})};
  pkit::process_options o;
  o.on_exit = [&](pkit::process&) {
    std::error_code e;
    on_reaper.start(e);
    from_reaper.set_value(e);
  };
  pkit::process trigger{server().target("exit-with", {"0"}), o};
  trigger.start();
  auto reaper_result = from_reaper.get_future();
  const bool reaper_in_time = reaper_result.wait_for(event_timeout) == std::future_status::ready;
  BOOST_TEST(reaper_in_time);

  // Resumed, the server makes the children it was asked for, then kills and reaps them:
  // nobody took them. The next start skips the late replies and works.
  BOOST_TEST_REQUIRE(::kill(server_pid, SIGCONT) == 0);
  done.wait();
  if (reaper_in_time) BOOST_TEST(reaper_result.get() == pkit::errc::fork_server_timeout);
  BOOST_TEST(trigger.join() == 0);
  pkit::process again{srv.target("exit-with", {"4"})};
  BOOST_TEST_REQUIRE(again.start(ec) > 0, ec.message());
  BOOST_TEST(again.join() == 4);
  BOOST_TEST(no_children_within(server_pid, event_timeout));
  BOOST_TEST(core->tracked_ids() == 0u);
}

// A group signal to a fork-server child (every stop of one: it leads its group) was a
// round trip to the server made with the process's lock held. A stopped server then held
// stop_async's caller — documented never to block — for the server's request timeout, and
// at the stop's deadline the reaper thread too, and with it every other process's exit
// report and timer. Group signals are one-way records now: nothing waits for the server.
BOOST_AUTO_TEST_CASE(a_stopped_fork_server_holds_up_neither_a_group_stop_nor_the_reaper) {
  pkit::fork_server& srv = *wedged_server;
  const pid_t server_pid = srv.pid();
  constexpr auto grace = 300ms;
  // Its stop is under way, SIGTERM ignored, when the server stops: the reaper escalates at
  // the deadline. The second is stopped while the server is stopped.
  watched_child obstinate{srv.target("ignore-term"), pkit::stop_policy{SIGTERM, grace, true}};
  watched_child plain{srv.target("leader-with-member", {"stay"}), pkit::stop_policy{SIGTERM, grace, true}};
  const pid_t member = std::stoi(read_line(plain.out.get()));
  pkit::unique_fd member_pidfd{pkit::detail::pidfd_open(member)};
  BOOST_TEST_REQUIRE(static_cast<bool>(member_pidfd));
  struct kill_member {
    int fd;
    ~kill_member() { pkit::detail::pidfd_send_signal(fd, SIGKILL); }
  } member_cleanup{member_pidfd.get()};
  // Another server's child, whose exit the reaper must report meanwhile.
  watched_child other{server().target("pause"), pkit::stop_policy{}};

  obstinate.p->stop_async();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  BOOST_TEST_REQUIRE(::kill(server_pid, SIGSTOP) == 0);
  struct resume_server {
    pid_t pid;
    ~resume_server() { ::kill(pid, SIGCONT); }
  } resume{server_pid};
  siginfo_t si{};
  BOOST_TEST_REQUIRE(::waitid(P_PID, static_cast<id_t>(server_pid), &si, WSTOPPED | WNOWAIT) == 0);

  auto [in_time, done] = within(event_timeout, [&] { plain.p->stop_async(); });
  BOOST_TEST(in_time, "stop_async waited for a stopped fork server");

  // A task of ours due after the obstinate one's deadline runs once the escalation has.
  auto after_deadline = std::make_shared<std::promise<void>>();  // may run after a failed case
  pkit::detail::reaper::instance().schedule(deadline + 50ms, [after_deadline] { after_deadline->set_value(); });
  BOOST_TEST((after_deadline->get_future().wait_for(event_timeout) == std::future_status::ready),
             "the reaper thread waited for a stopped fork server at a stop's deadline");
  other.p->kill();
  BOOST_TEST_REQUIRE(other.reported(), "another process's exit was not reported while a fork server was stopped");

  // Resumed, the server carries out the signals it was sent, in order.
  BOOST_TEST_REQUIRE(::kill(server_pid, SIGCONT) == 0);
  done.wait();
  BOOST_TEST_REQUIRE(obstinate.reported());
  BOOST_TEST_REQUIRE(plain.reported());
  BOOST_TEST(obstinate.p->status()->exit_code() == -SIGKILL);
  BOOST_TEST(plain.p->status()->exit_code() < 0, "the plain process died of a signal");
  // The whole group got the stop, not the leader alone (through its pidfd).
  BOOST_TEST(pkit_test::detail::wait_readable(member_pidfd.get(), std::chrono::steady_clock::now() + event_timeout),
             "a member of the group outlived its stop");
  BOOST_TEST(no_children_within(server_pid, event_timeout));
}

// A server child that has left the group it led: the server's group signal found no
// group (ESRCH), and the parent took that for "already reaped" — neither the stop's
// SIGTERM nor the SIGKILL at its deadline reached the child, and the stop never returned.
// The server applies the rule this program applies to its own children: the leader gets
// the signal through its pidfd when the group signal did not reach it.
BOOST_AUTO_TEST_CASE(a_server_child_that_left_its_group_still_gets_the_group_stop_signal) {
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  o.stop = pkit::stop_policy{SIGTERM, event_timeout, true};
  pkit::process p{server().target("leave-group"), o};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  pkit::unique_fd out = p.take_stdout_pipe();
  BOOST_TEST_REQUIRE(read_line(out.get()) == "left");
  const pid_t pid = *p.pid();
  BOOST_TEST_REQUIRE(read_proc_stat(pid)->pgrp != pid);
  auto [in_time, done] = within(2 * event_timeout, [&] { return p.stop(); });
  // Unreaped by the server until it dies, so the pid is still the child's.
  if (!in_time) ::kill(pid, SIGKILL);
  BOOST_TEST(done.get() == pkit::exit_status::killed(SIGTERM));
}

// The server also made each new leader's group itself after the fork, "so no window" —
// but its child ran the target at once: one that had already left its group (on a busy
// machine, before the server's turn came) was pulled back into a group of its own. The
// child now waits for the server's go-ahead, given once the server has made its group.
BOOST_AUTO_TEST_CASE(a_server_child_that_leaves_its_group_before_the_server_runs_again_stays_out) {
  // A server of the fixture's: one shut down here would close its descriptors while the
  // next case counts them.
  const core_ptr& core = slow_forking_server;
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  pkit::process p{pkit::server_target{core, "leave-group", {}}, o};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  pkit::unique_fd out = p.take_stdout_pipe();
  BOOST_TEST_REQUIRE(read_line(out.get()) == "left");
  const pid_t pid = *p.pid();
  BOOST_TEST(read_proc_stat(pid)->pgrp == read_proc_stat(core->pid())->pgrp,
             "the child was moved out of the group it joined");
  BOOST_TEST(p.stop() == pkit::exit_status::killed(SIGTERM));
}

// The go-ahead comes before anything of the target runs: a server killed between the
// fork and the go-ahead leaves a child that ends without running its target (it would
// write "ran" to our pipe), and the start fails instead of waiting.
BOOST_AUTO_TEST_CASE(a_server_child_runs_nothing_of_its_target_before_the_go_ahead) {
  const auto fds_before = open_fds();
  {
    pkit::detail::fork_server_faults stuck;
    stuck.after_fork = 600s;  // never given: the server is killed in it
    const core_ptr core = launch_with(stuck);
    const pid_t server_pid = core->pid();
    int fds[2];
    BOOST_TEST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    pkit::unique_fd out_read{fds[0]}, out_write{fds[1]};
    pkit::process_options o;
    o.out = pkit::stdio::fd(out_write.get());
    pkit::process p{pkit::server_target{core, "print-args", {"ran"}}, o};
    kill_on_exit cleanup{p};
    auto [in_time, done] = within(event_timeout, [&] {
      std::error_code ec;
      // Once the server has forked the child, it is killed (the start waits for the reply).
      std::thread killer{[&] {
        while (children_of(server_pid).empty()) std::this_thread::sleep_for(1ms);  // a state, no event
        ::kill(server_pid, SIGKILL);
      }};
      p.start(ec);
      killer.join();
      return ec;
    });
    BOOST_TEST_REQUIRE(in_time);
    const std::error_code ec = done.get();
    BOOST_TEST(static_cast<bool>(ec), "a start on a server killed before its reply succeeded");
    out_write.reset();
    // Every writer is gone once the orphaned child has ended (EOF on its go-ahead).
    std::string written;
    auto [ended, read_done] = within(event_timeout, [&] {
      char buf[64];
      for (ssize_t n; (n = ::read(out_read.get(), buf, sizeof buf)) != 0;) {
        if (n > 0) written.append(buf, static_cast<std::size_t>(n));
        else if (errno != EINTR) break;
      }
    });
    BOOST_TEST_REQUIRE(ended, "the child of the killed server did not end");
    read_done.get();
    BOOST_TEST(written.empty(), "the target ran before its go-ahead: " << written);
    core->shutdown();
  }
  // The killed server's descriptors are let go once its exit is seen.
  const auto until = std::chrono::steady_clock::now() + event_timeout;
  while (open_fds() != fds_before && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(5ms);  // a state, no event
  check_fds_unchanged(fds_before);
}

BOOST_AUTO_TEST_CASE(a_malformed_reply_is_a_protocol_error_and_its_child_is_killed_by_the_server) {
  for (fault f : {fault::wrong_id, fault::garbage, fault::oversized, fault::no_fds}) {
    BOOST_TEST_CONTEXT("fault " << static_cast<int>(f)) {
      const core_ptr& core = faulty_servers.at(f);
      const pid_t server_pid = core->pid();
      const auto fds_before = open_fds();
      pkit::process p{pkit::server_target{core, "pause", {}}};
      std::error_code ec;
      auto [in_time, done] = within(event_timeout, [&] { p.start(pkit::wait, ec); });
      if (!in_time) {
        ::kill(server_pid, SIGKILL);  // unblocks the start, fails the rest
        done.wait();
        continue;
      }
      BOOST_TEST(ec == pkit::errc::fork_server_protocol);
      BOOST_TEST(!p.is_alive());
      // The server still serves, and kills and collects the abandoned child.
      pkit::process next{pkit::server_target{core, "exit-with", {"7"}}};
      next.start(ec);
      BOOST_TEST_REQUIRE(!ec, ec.message());
      BOOST_TEST(next.join() == 7);
      BOOST_TEST(no_children_within(server_pid, event_timeout));
      BOOST_TEST(core->tracked_ids() == 0u);
      check_fds_unchanged(fds_before);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_child_whose_reply_cannot_be_sent_is_killed_and_reaped_by_the_server) {
  const core_ptr& core = faulty_servers.at(fault::fail_send);
  const pid_t server_pid = core->pid();
  const std::string name = "pause";
  const std::vector<std::string> args;
  pkit::detail::server_spawn_request req;
  req.name = &name;
  req.args = &args;
  req.want_ready = true;
  pkit::detail::server_spawn_result r;
  auto [in_time, done] = within(event_timeout, [&] { r = core->spawn(req); });
  if (!in_time) {
    ::kill(server_pid, SIGKILL);
    done.wait();
    return;
  }
  BOOST_TEST(r.error == std::errc::io_error);
  BOOST_TEST_REQUIRE(r.pid > 0);  // the child that was made
  BOOST_TEST(!proc_exists(r.pid));  // killed and reaped before the reply
  BOOST_TEST(!r.pidfd);
  BOOST_TEST(children_of(server_pid).empty());
  BOOST_TEST(core->tracked_ids() == 0u);
}

BOOST_AUTO_TEST_CASE(a_request_with_a_huge_length_field_is_refused_without_allocating_it) {
  const core_ptr& core = huge_request_server;
  const pid_t server_pid = core->pid();
  pkit::process p{pkit::server_target{core, "exit-with", {"0"}}};
  std::error_code ec;
  auto [in_time, done] = within(event_timeout, [&] { p.start(ec); });
  done.wait();
  BOOST_TEST(ec == pkit::errc::fork_server_protocol);
  BOOST_TEST(peak_rss_kb(server_pid) < 256 * 1024, peak_rss_kb(server_pid) << " kB");
  pkit::process next{pkit::server_target{core, "exit-with", {"3"}}};
  next.start(ec);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(next.join() == 3);
}

// ---------------------------------------------------------------------------
// Group signals: sent by the server, and only while it has not reaped the leader
// ---------------------------------------------------------------------------

namespace {

struct group_child {
  core_ptr core;
  pkit::detail::server_spawn_result made;
  pid_t member = 0;
  pkit::unique_fd member_pidfd;
  std::promise<pkit::exit_status> exited;
  group_child() = default;
  group_child(const group_child&) = delete;
  group_child& operator=(const group_child&) = delete;
  ~group_child() {  // a failed case leaves no member (nor leader) behind
    if (core && made.id != 0) core->unwatch(made.id);  // first: `exited` is going away
    if (member_pidfd) pkit::detail::pidfd_send_signal(member_pidfd.get(), SIGKILL);
    if (made.pidfd) pkit::detail::pidfd_send_signal(made.pidfd.get(), SIGKILL);
  }
};

/// Starts "leader-with-member" (`mode`: stay / leave) on the main server, directly
/// through its core, and watches it.
void start_group(group_child& g, const std::string& mode, bool kill_group_at_exit) {
  static const std::string name = "leader-with-member";
  const std::vector<std::string> args{mode};
  auto out = make_pipe();
  g.core = server().target(name).server;
  pkit::detail::server_spawn_request req;
  req.name = &name;
  req.args = &args;
  req.stdio[1] = out.write.get();
  req.want_ready = true;
  req.kill_group_at_exit = kill_group_at_exit;
  g.made = g.core->spawn(req);
  BOOST_TEST_REQUIRE(!g.made.error, g.made.error.message());
  g.core->watch(g.made.id, g.made.pidfd.get(), [&g](pkit::exit_status st) { g.exited.set_value(st); });
  out.write.reset();
  g.member = std::stoi(read_line(out.read.get()));
  g.member_pidfd.reset(pkit::detail::pidfd_open(g.member));
  BOOST_TEST_REQUIRE(static_cast<bool>(g.member_pidfd));
  BOOST_TEST_REQUIRE(read_proc_stat(g.member)->pgrp == g.made.pid);
}

/// Returns once `srv` has carried out every request sent to it so far: it serves them in
/// order, and this start's answer comes after theirs.
void settle(pkit::fork_server& srv) {
  pkit::process p{srv.target("exit-with", {"0"})};
  p.start();
  BOOST_TEST(p.join() == 0);
}

/// Waits (bounded) for the member's end: its pidfd turns readable.
bool member_gone(const group_child& g) {
  return pkit_test::detail::wait_readable(g.member_pidfd.get(),
                                          std::chrono::steady_clock::now() + event_timeout);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_group_signal_through_the_server_reaches_leader_and_members) {
  group_child g;
  start_group(g, "stay", false);
  BOOST_TEST(g.core->signal_group(g.made.id, SIGTERM) == std::error_code{});
  auto st = g.exited.get_future();
  BOOST_TEST_REQUIRE((st.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(st.get() == pkit::exit_status::killed(SIGTERM));
  BOOST_TEST(member_gone(g));
}

BOOST_AUTO_TEST_CASE(a_group_signal_after_the_leader_was_reaped_reaches_nobody) {
  group_child g;
  start_group(g, "leave", false);
  auto st = g.exited.get_future();
  BOOST_TEST_REQUIRE((st.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(st.get() == pkit::exit_status::exited(0));
  // Reaped by the server: its group id is no longer known to be its own. The request is
  // one-way; a start on the same server, answered after it, shows it was carried out.
  BOOST_TEST(g.core->signal_group(g.made.id, SIGKILL) == std::error_code{});
  settle(*main_server);
  BOOST_TEST(is_running(g.member));
  pkit::detail::pidfd_send_signal(g.member_pidfd.get(), SIGKILL);
  BOOST_TEST(member_gone(g));
}

BOOST_AUTO_TEST_CASE(kill_group_at_exit_kills_the_members_before_the_leader_is_reaped) {
  group_child g;
  start_group(g, "leave", true);
  auto st = g.exited.get_future();
  BOOST_TEST_REQUIRE((st.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(st.get() == pkit::exit_status::exited(0));
  BOOST_TEST(member_gone(g));

  // The same, asked for later with a group signal.
  group_child later;
  start_group(later, "stay", false);
  BOOST_TEST(later.core->signal_group(later.made.id, SIGCONT, true) == std::error_code{});
  settle(*main_server);  // the one-way request has been carried out
  pkit::detail::pidfd_send_signal(later.made.pidfd.get(), SIGTERM);  // the leader alone
  auto st2 = later.exited.get_future();
  BOOST_TEST_REQUIRE((st2.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(st2.get() == pkit::exit_status::killed(SIGTERM));
  BOOST_TEST(member_gone(later));
}

// Group signals the control socket could not take at once — a server busy with hundreds
// of stops, or stopped — were cut down to the leader's own pidfd: the leader died, the
// server reaped it without a group kill (that request was among the lost), and its members
// lived on after a stop that reported the leader's SIGTERM (300 children stopped at once
// left about 150 members running). Records that do not fit now wait on the parent's side,
// in order, and go as soon as the socket takes them.
BOOST_AUTO_TEST_CASE(group_signals_a_full_control_socket_cannot_take_now_are_sent_later_in_order) {
  pkit::fork_server srv = pkit::fork_server::start(make_registry());  // stopped here: its own
  const pid_t server_pid = srv.pid();
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  o.stop = pkit::stop_policy{SIGTERM, event_timeout, true};
  pkit::process p{srv.target("leader-with-member", {"stay"}), o};
  // Straight to the leader's pidfd: a kill() would queue behind the records of a broken flush.
  struct kill_leader {
    pkit::process& p;
    ~kill_leader() {
      std::error_code ec;
      if (p.is_alive()) p.signal(SIGKILL, ec);
    }
  } cleanup{p};
  p.start(pkit::wait);
  pkit::unique_fd out = p.take_stdout_pipe();
  const pid_t member = std::stoi(read_line(out.get()));
  pkit::unique_fd member_pidfd{pkit::detail::pidfd_open(member)};
  BOOST_TEST_REQUIRE(static_cast<bool>(member_pidfd));
  struct kill_member {
    int fd;
    ~kill_member() { pkit::detail::pidfd_send_signal(fd, SIGKILL); }
  } member_cleanup{member_pidfd.get()};

  BOOST_TEST_REQUIRE(::kill(server_pid, SIGSTOP) == 0);
  struct resume_server {
    pid_t pid;
    ~resume_server() { ::kill(pid, SIGCONT); }
  } resume{server_pid};
  siginfo_t si{};
  BOOST_TEST_REQUIRE(::waitid(P_PID, static_cast<id_t>(server_pid), &si, WSTOPPED | WNOWAIT) == 0);
  // The socket fills up with harmless records (signal 0, to a child the server never
  // made) long before this many.
  const core_ptr core = srv.target("pause").server;
  for (int i = 0; i < 4096; ++i) (void)core->signal_group(~std::uint64_t{0}, 0);
  BOOST_TEST_REQUIRE(core->unsent_signals() > 0u, "the socket took them all: nothing tested");

  p.stop_async();  // SIGTERM and SIGCONT to the group, and its kill at the leader's exit
  BOOST_TEST_REQUIRE(::kill(server_pid, SIGCONT) == 0);
  const auto st = p.join_status(2 * event_timeout);
  BOOST_TEST_REQUIRE(st.has_value(), "the stop did not end");
  BOOST_TEST(*st == pkit::exit_status::killed(SIGTERM));
  BOOST_TEST(pkit_test::detail::wait_readable(member_pidfd.get(), std::chrono::steady_clock::now() + event_timeout),
             "a member of the group outlived its stop");
  settle(srv);  // the server still serves, after all those records
  BOOST_TEST(core->unsent_signals() == 0u);
}

// A forked copy of the program that destroys its copy of the fork_server handle (scope
// exit, std::exit) SIGKILLed the original's server — and every server child — then hung:
// the server is the original's; in a copy, shutdown does nothing and requests fail.
BOOST_AUTO_TEST_CASE(a_forked_copy_that_drops_its_fork_server_handle_leaves_the_originals_server_alone) {
  pkit::process child{server().target("pause")};
  child.start(pkit::wait);
  const std::string verdict = verdict_of_forked_copy([] {
#if defined(__SANITIZE_THREAD__)
    // A start would create the copy's own reaper thread, and TSan's runtime cannot start
    // threads in a child forked from a multithreaded process: only the handle is dropped.
    const char started = 'N';
#else
    std::error_code ec;
    pkit::process other{server().target("pause")};
    other.start(ec);
    const char started = ec == pkit::errc::not_owner ? 'N' : 'n';
#endif
    main_server.reset();  // the copy drops the handle: must neither kill nor wait
    return std::string(1, started) + "D";
  });
  BOOST_TEST(verdict == "ND");
  BOOST_TEST(server().running(), "the original's fork server survived the copy");
  BOOST_TEST(child.is_alive(), "the original's server child survived the copy");
  child.kill();
  BOOST_TEST(child.join() == -SIGKILL);
}

// A server whose pidfd cannot be opened (the program at its descriptor limit) was started
// all the same, and unwatched: its death was never seen, and the handle's destruction —
// the shutdown — waited for it for ever; one whose watch could not be set up was left
// running (review 19 #4). The start fails now (EMFILE), with the server killed and
// reaped. In a forked copy: the limit must not touch the suite.
BOOST_AUTO_TEST_CASE(a_server_that_cannot_be_watched_is_not_started) {
#if defined(__SANITIZE_THREAD__)
  BOOST_TEST_MESSAGE("skipped: the copy would start a reaper thread, which TSan cannot do after fork");
#elif defined(__SANITIZE_ADDRESS__)
  // The ASan build is ASan+UBSan: UBSan's vptr check, on a miss in its type cache, tests
  // the vtable's memory through a pipe of its own (IsAccessibleMemoryRange). At the
  // descriptor limit that pipe fails and every virtual call it checks is reported as
  // "invalid vptr", so whether the copy survives depends on what an earlier case left in
  // the cache (CI: failed; alone: always). The plain build runs this case; the next one
  // makes the same failures with a test fault, in this build too.
  BOOST_TEST_MESSAGE("skipped: UBSan's vptr check needs descriptors of its own, which the limit denies");
#else
  // The server's two socket pairs take the four lowest free numbers; then its pidfd, then
  // the reaper's own descriptor for the events watch. The limit forbids one of those.
  for (const std::size_t denied : {std::size_t{4}, std::size_t{5}}) {
    const std::string verdict = verdict_of_forked_copy(
        [denied] {
          (void)pkit::detail::reaper::instance();  // the copy's own reaper, its descriptors first
          std::vector<int> free;
          for (int fd = 0; free.size() <= denied; ++fd)
            if (::fcntl(fd, F_GETFD) < 0) free.push_back(fd);
          pkit::fork_server::registry r;
          r.add("exit-0", [](const std::vector<std::string>&) { return 0; });
          rlimit lim{};
          ::getrlimit(RLIMIT_NOFILE, &lim);
          lim.rlim_cur = static_cast<rlim_t>(free[denied]);
          if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return std::string("setrlimit failed");
          try {
            auto s = pkit::fork_server::start(std::move(r));
            return std::string("started");  // and its destruction hung before the fix
          } catch (const std::system_error& e) {
            if (e.code() != std::errc::too_many_files_open) return std::string("failed: ") + e.what();
          }
          // The server was reaped: no child of the copy is left.
          return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD ? std::string("refused")
                                                                       : std::string("a child is left");
        },
        std::chrono::seconds(15));
    BOOST_TEST(verdict == "refused", "denied fd #" << denied);
  }
#endif
}

// The refusal above in every build, the sanitizers' included (that case needs a
// descriptor limit, which their runtimes cannot live with): each watch of the new server
// fails in turn, as if out of descriptors — its pidfd, the watch of its events, the watch
// of its exit (after the events' watch was made: that one is undone). The start fails
// with EMFILE, the server is killed and reaped, and no descriptor is left.
BOOST_AUTO_TEST_CASE(a_server_whose_watch_fails_is_killed_and_reaped_and_leaves_no_descriptor) {
  using watch_fault = pkit::detail::fork_server_faults::watch_fault;
  for (const watch_fault where : {watch_fault::pidfd, watch_fault::events, watch_fault::exit}) {
    const auto fds_before = open_fds();
    pid_t server_pid = -1;
    pkit::detail::fork_server_faults faults;
    faults.watch = where;
    faults.server_pid = &server_pid;
    std::error_code failed;
    try {
      auto core = launch_with(faults);
      core->shutdown();
    } catch (const std::system_error& e) {
      failed = e.code();
    }
    BOOST_TEST(failed == std::errc::too_many_files_open,
               "fault " << static_cast<int>(where) << ": " << failed.message());
    BOOST_TEST_REQUIRE(server_pid > 0);
    // Reaped: no longer a child of ours, not even a zombie.
    const bool reaped = ::waitpid(server_pid, nullptr, WNOHANG) < 0 && errno == ECHILD;
    BOOST_TEST(reaped, "fault " << static_cast<int>(where) << ": server " << server_pid << " is left");
    check_fds_unchanged(fds_before);
  }
}

// The server's shutdown with a child that does not die (uninterruptible sleep: here, a
// test hook spares it the SIGKILL). Before the fix the server waited for it for ever, the
// parent killed the server 5 s on, and every event still queued was lost: the parent's
// fallback reported each child killed by SIGKILL, whatever had become of it (review 19
// #4). Now the children get one deadline together: the one that did not die is reported
// lost, the other's real end is reported, and the shutdown is over at that deadline.
BOOST_AUTO_TEST_CASE(a_child_that_does_not_die_at_shutdown_is_reported_lost_and_holds_up_no_other_report) {
  const core_ptr& core = sparing_server;
  const std::string name = "pause";
  const std::vector<std::string> args;
  pkit::detail::server_spawn_request req;
  req.name = &name;
  req.args = &args;
  std::promise<pkit::exit_status> first_end, second_end;
  auto first = core->spawn(req);
  BOOST_TEST_REQUIRE(!first.error, first.error.message());
  core->watch(first.id, first.pidfd.get(), [&](pkit::exit_status st) { first_end.set_value(st); });
  auto second = core->spawn(req);
  BOOST_TEST_REQUIRE(!second.error, second.error.message());
  core->watch(second.id, second.pidfd.get(), [&](pkit::exit_status st) { second_end.set_value(st); });
  auto [in_time, done] = within(event_timeout, [&] { core->shutdown(); });
  done.wait();
  auto f1 = first_end.get_future();
  auto f2 = second_end.get_future();
  BOOST_TEST_REQUIRE((f1.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST_REQUIRE((f2.wait_for(event_timeout) == std::future_status::ready));
  const pkit::exit_status s1 = f1.get(), s2 = f2.get();
  BOOST_TEST(s1.is_lost(), "the spared child: " << s1.to_string());
  BOOST_TEST((s2 == pkit::exit_status::killed(SIGKILL)), "the other child: " << s2.to_string());
  // The spared child dies with the server (its parent-death signal): nothing is left.
  const auto until = std::chrono::steady_clock::now() + event_timeout;
  while (proc_exists(first.pid) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(5ms);  // reaped by init: no event here to wait on
  BOOST_TEST(!proc_exists(first.pid), "the spared child outlived its server");
}
