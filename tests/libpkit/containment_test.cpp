// containment::cgroup (issue 8 item 6, FAULTS T3/T4): a cgroup v2 per run holds every
// descendant of the child, also one that double-forks and calls setsid() to leave the
// process group. A stop signals all of them, gives them the same grace period as the
// leader, SIGKILLs them at the deadline and returns only once the cgroup is empty; the
// cgroup directory is removed after every run.
//
// This program makes itself a child subreaper, so the grandchildren orphaned by a leader's
// death become its children: their exit statuses (exit 0 after SIGTERM, or SIGKILL) are
// then visible here through waitid on a pidfd — proof of how they ended, not just that
// they ended. White-box: it uses libpkit's internal cgroup header for fault injection and
// to find pkit's parent cgroup. Skipped (with a message) where cgroup2 is not writable.

#define BOOST_TEST_MODULE libpkit containment
#include "test_support.hpp"

#include "detail/cgroup.hpp"
#include "detail/pidfd.hpp"

#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>
#include <pkit/target.hpp>

#include <atomic>
#include <filesystem>
#include <thread>
#include <optional>

#include <sys/prctl.h>
#include <sys/wait.h>

using namespace pkit_test;
using namespace std::chrono_literals;

namespace {

struct subreaper_fixture {
  subreaper_fixture() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
};

// pkit's parent cgroup of this program (.../pkit-<pid>), or nothing when cgroups cannot
// be made here (the reason is printed once).
std::optional<std::string> pkit_parent_cgroup() {
  static const std::optional<std::string> parent = [] () -> std::optional<std::string> {
    std::error_code ec;
    auto probe = pkit::detail::cgroup::create(ec);
    if (!probe) {
      BOOST_TEST_MESSAGE("cgroup v2 not writable here (" << ec.message() << "): skipping");
      return std::nullopt;
    }
    return std::filesystem::path(probe->dir()).parent_path().string();
  }();
  return parent;
}

#define REQUIRE_CGROUPS()                                                          \
  do {                                                                             \
    if (!pkit_parent_cgroup()) {                                                   \
      BOOST_TEST_MESSAGE("skipped: cgroup v2 is not writable for this program"); \
      return;                                                                      \
    }                                                                              \
  } while (false)

// The cgroup v2 path of `pid` ("0::" line of /proc/<pid>/cgroup).
std::string cgroup_of(pid_t pid) {
  const std::string text = read_text_file("/proc/" + std::to_string(pid) + "/cgroup");
  const auto at = text.find("0::");
  if (at == std::string::npos) return {};
  return text.substr(at + 3, text.find('\n', at) - at - 3);
}

// The run cgroups still present under pkit's parent cgroup.
std::vector<std::string> run_cgroups_left() {
  std::vector<std::string> left;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(*pkit_parent_cgroup(), ec))
    if (e.is_directory()) left.push_back(e.path().filename().string());
  return left;
}

// How a process adopted by this subreaper ended, if it has (reaps it); else nothing.
std::optional<siginfo_t> ended(int pidfd) {
  siginfo_t info{};
  if (::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG) != 0) return std::nullopt;
  if (info.si_pid == 0) return std::nullopt;
  return info;
}

bool exited_at_once(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

pkit::process_options contained() {
  pkit::process_options o;
  o.containment = pkit::containment::cgroup;
  return o;
}

// A callable target's body: forks a grandchild that leaves the process group (setsid)
// and runs `grandchild`, writes its pid to fd 3 once it is set up, then waits for a stop
// (or exits with `leader_exit` when that is >= 0). `leader_ignores_term`: SIG_IGN first.
template <class F>
int leave_a_grandchild(F grandchild, bool leader_ignores_term, int leader_exit) {
  if (leader_ignores_term) ::signal(SIGTERM, SIG_IGN);
  int sync[2];
  if (::pipe(sync) != 0) return 90;
  const pid_t g = ::fork();
  if (g < 0) return 91;
  if (g == 0) {
    ::close(sync[0]);
    ::setsid();
    grandchild(sync[1]);  // closes sync[1] once ready
    ::_exit(92);
  }
  ::close(sync[1]);
  char c;
  while (::read(sync[0], &c, 1) < 0 && errno == EINTR) {
  }
  const std::string line = std::to_string(g) + "\n";
  write_all(3, line);
  if (leader_exit >= 0) return leader_exit;
  for (;;) ::pause();
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(subreaper_fixture);

// Without containment (the default), a grandchild that setsid()s escapes the group stop:
// the limitation containment::cgroup removes.
BOOST_AUTO_TEST_CASE(process_group_stop_misses_an_escaped_grandchild) {
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command({"spawn-grandchild"}), o};
  p.start();
  pkit::unique_fd out = p.take_stdout_pipe();
  const pid_t g = std::stoi(read_line(out.get()));
  pkit::unique_fd gfd{pkit::detail::pidfd_open(g)};
  BOOST_REQUIRE(gfd);
  p.stop();
  BOOST_TEST(!exited_at_once(gfd.get()), "the escaped grandchild outlives a process-group stop");
  pkit::detail::pidfd_send_signal(gfd.get(), SIGKILL);
  pollfd pf{gfd.get(), POLLIN, 0};
  BOOST_REQUIRE(::poll(&pf, 1, 10000) == 1);
  (void)ended(gfd.get());  // ours (subreaper): reap it
}

BOOST_AUTO_TEST_CASE(stop_reaches_a_grandchild_that_left_the_group) {
  REQUIRE_CGROUPS();
  auto o = contained();
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command({"spawn-grandchild"}), o};
  p.start();
  const pid_t leader = *p.pid();
  pkit::unique_fd out = p.take_stdout_pipe();
  const pid_t g = std::stoi(read_line(out.get()));
  pkit::unique_fd gfd{pkit::detail::pidfd_open(g)};
  BOOST_REQUIRE(gfd);
  // Same cgroup as the leader, a run cgroup of pkit's — though another session.
  BOOST_TEST(cgroup_of(g) == cgroup_of(leader));
  BOOST_TEST(cgroup_of(g).find("/pkit-" + std::to_string(::getpid()) + "/run-") != std::string::npos);
  BOOST_TEST(::getsid(g) == g);

  const pkit::exit_status st = p.stop();
  BOOST_TEST((st.is_killed() && st.signal() == SIGTERM), st.to_string());
  // stop() returned only after the grandchild was gone.
  BOOST_TEST(exited_at_once(gfd.get()), "the grandchild had exited when stop() returned");
  const auto gst = ended(gfd.get());
  BOOST_REQUIRE(gst.has_value());
  BOOST_TEST(gst->si_code == CLD_KILLED);
  BOOST_TEST(gst->si_status == SIGTERM);
  BOOST_TEST(run_cgroups_left().empty(), "the run's cgroup was removed");
}

BOOST_AUTO_TEST_CASE(descendants_get_the_grace_period) {
  REQUIRE_CGROUPS();
  auto report = make_pipe();
  auto o = contained();
  o.pass_fds = {{3, report.write.get()}};
  o.stop = pkit::stop_policy{.signal = SIGTERM, .timeout = 20s};
  // The grandchild waits for SIGTERM, then finishes its work (250 ms: it outlives the
  // leader, which dies of SIGTERM at once), says "done" and exits 0.
  pkit::process p{[] {
                    return leave_a_grandchild(
                        [](int ready) {
                          sigset_t term;
                          sigemptyset(&term);
                          sigaddset(&term, SIGTERM);
                          ::sigprocmask(SIG_BLOCK, &term, nullptr);
                          ::close(ready);
                          int sig = 0;
                          ::sigwait(&term, &sig);
                          const timespec work{0, 250'000'000};
                          ::nanosleep(&work, nullptr);
                          write_all(3, "done\n");
                          ::_exit(0);
                        },
                        false, -1);
                  },
                  o};
  p.start();
  report.write.reset();
  const pid_t g = std::stoi(read_line(report.read.get()));
  pkit::unique_fd gfd{pkit::detail::pidfd_open(g)};
  BOOST_REQUIRE(gfd);

  const auto begin = std::chrono::steady_clock::now();
  const pkit::exit_status st = p.stop();
  BOOST_TEST((st.is_killed() && st.signal() == SIGTERM), st.to_string());
  BOOST_TEST((std::chrono::steady_clock::now() - begin < 15s), "not escalated");
  BOOST_TEST(read_available(report.read.get()) == "done\n", "the grandchild finished before stop() returned");
  const auto gst = ended(gfd.get());
  BOOST_REQUIRE(gst.has_value());
  BOOST_TEST(gst->si_code == CLD_EXITED, "the grandchild was not killed");
  BOOST_TEST(gst->si_status == 0);
  BOOST_TEST(run_cgroups_left().empty());
}

BOOST_AUTO_TEST_CASE(everything_gets_sigkill_at_the_deadline) {
  REQUIRE_CGROUPS();
  auto report = make_pipe();
  auto o = contained();
  o.pass_fds = {{3, report.write.get()}};
  pkit::process p{[] {
                    return leave_a_grandchild(
                        [](int ready) {
                          ::signal(SIGTERM, SIG_IGN);
                          ::close(ready);
                          for (;;) ::pause();
                        },
                        true, -1);
                  },
                  o};
  p.start();
  report.write.reset();
  const pid_t g = std::stoi(read_line(report.read.get()));
  pkit::unique_fd gfd{pkit::detail::pidfd_open(g)};
  BOOST_REQUIRE(gfd);

  const auto begin = std::chrono::steady_clock::now();
  const pkit::exit_status st = p.stop(pkit::stop_policy{.signal = SIGTERM, .timeout = 300ms});
  BOOST_TEST((std::chrono::steady_clock::now() - begin >= 300ms), "SIGKILL only at the deadline");
  BOOST_TEST((st.is_killed() && st.signal() == SIGKILL), st.to_string());
  BOOST_TEST(exited_at_once(gfd.get()), "the grandchild had exited when stop() returned");
  const auto gst = ended(gfd.get());
  BOOST_REQUIRE(gst.has_value());
  BOOST_TEST(gst->si_code == CLD_KILLED);
  BOOST_TEST(gst->si_status == SIGKILL);
  BOOST_TEST(run_cgroups_left().empty());
}

// kill() reaches the whole cgroup at once; join() returns once it is empty.
BOOST_AUTO_TEST_CASE(kill_reaches_the_whole_cgroup) {
  REQUIRE_CGROUPS();
  const auto fds_before = open_fds();
  auto o = contained();
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command({"spawn-grandchild"}), o};
  p.start();
  pkit::unique_fd out = p.take_stdout_pipe();
  const pid_t g = std::stoi(read_line(out.get()));
  pkit::unique_fd gfd{pkit::detail::pidfd_open(g)};
  BOOST_REQUIRE(gfd);
  p.kill();
  const pkit::exit_status st = p.join_status();
  BOOST_TEST((st.is_killed() && st.signal() == SIGKILL), st.to_string());
  BOOST_TEST(exited_at_once(gfd.get()), "the grandchild had exited when join() returned");
  const auto gst = ended(gfd.get());
  BOOST_REQUIRE(gst.has_value());
  BOOST_TEST(gst->si_code == CLD_KILLED);
  BOOST_TEST(gst->si_status == SIGKILL);
  BOOST_TEST(run_cgroups_left().empty());
  out.reset();
  gfd.reset();
  check_fds_unchanged(fds_before);  // the cgroup's descriptors are closed with the run
}

// The leader exits by itself and leaves a descendant: the rest of the cgroup is stopped
// with the process's stop policy, and the exit is collected once the cgroup is empty.
BOOST_AUTO_TEST_CASE(a_natural_exit_stops_what_the_leader_left) {
  REQUIRE_CGROUPS();
  auto report = make_pipe();
  auto o = contained();
  o.pass_fds = {{3, report.write.get()}};
  pkit::process p{[] {
                    return leave_a_grandchild(
                        [](int ready) {
                          ::close(ready);
                          for (;;) ::pause();
                        },
                        false, 7);
                  },
                  o};
  p.start();
  report.write.reset();
  const pid_t g = std::stoi(read_line(report.read.get()));
  pkit::unique_fd gfd{pkit::detail::pidfd_open(g)};
  BOOST_REQUIRE(gfd);
  const pkit::exit_status st = p.join_status();
  BOOST_TEST(st.is_exited());
  BOOST_TEST(st.code() == 7);
  BOOST_TEST(exited_at_once(gfd.get()), "the grandchild had exited when join() returned");
  const auto gst = ended(gfd.get());
  BOOST_REQUIRE(gst.has_value());
  BOOST_TEST(gst->si_code == CLD_KILLED);
  BOOST_TEST(gst->si_status == SIGTERM);
  BOOST_TEST(run_cgroups_left().empty());
}

// Review 12 #9: the leftovers of a leader that exited by itself are stopped by libpkit,
// not by anyone's stop: killing them at the deadline must not mark the leader's own
// (natural) exit as a stop that had to escalate.
BOOST_AUTO_TEST_CASE(killing_the_leftovers_of_a_natural_exit_is_no_stop_escalation) {
  REQUIRE_CGROUPS();
  auto report = make_pipe();
  auto o = contained();
  o.pass_fds = {{3, report.write.get()}};
  o.stop = pkit::stop_policy{SIGTERM, 200ms, true};
  pkit::process p{[] {
                    return leave_a_grandchild(
                        [](int ready) {
                          ::signal(SIGTERM, SIG_IGN);  // outlives the grace period
                          ::close(ready);
                          for (;;) ::pause();
                        },
                        false, 7);
                  },
                  o};
  p.start();
  report.write.reset();
  const pid_t g = std::stoi(read_line(report.read.get()));
  pkit::unique_fd gfd{pkit::detail::pidfd_open(g)};
  BOOST_REQUIRE(gfd);
  const pkit::exit_status st = p.join_status();
  BOOST_TEST(st.code() == 7);
  BOOST_TEST(!st.stop_escalated(), "nobody stopped the leader");
  const auto gst = ended(gfd.get());
  BOOST_REQUIRE(gst.has_value());
  BOOST_TEST(gst->si_status == SIGKILL, "the leftover needed SIGKILL");
}

// Runs on several threads at once, each a new cgroup: pkit's parent cgroup is made and
// removed under them (the last run removes it, the next one makes it again) without a
// start failing, and nothing is left afterwards.
BOOST_AUTO_TEST_CASE(concurrent_runs_share_the_parent_cgroup) {
  REQUIRE_CGROUPS();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&failures] {
      pkit::process p{child_command({"pause"}), contained()};
      for (int i = 0; i < 10; ++i) {
        std::error_code ec;
        const pid_t pid = p.start(ec);
        if (ec || cgroup_of(pid).find("/run-") == std::string::npos) ++failures;
        if (!ec) (void)p.stop();
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(run_cgroups_left().empty());
}

// Placing the child fails (its cgroup vanished between creation and the child's write to
// cgroup.procs): start() fails at stage "cgroup" with the errno, for both start methods,
// and leaves no child and no cgroup behind.
BOOST_AUTO_TEST_CASE(a_failure_to_place_the_child_is_a_start_error) {
  REQUIRE_CGROUPS();
  using hooks = pkit::detail::cgroup_test_hooks;
  hooks::after_create = [](const std::string& dir) { ::rmdir(dir.c_str()); };
  struct reset_hook {
    ~reset_hook() { hooks::after_create = nullptr; }
  } reset;
  for (int method = 0; method < 2; ++method) {
    BOOST_TEST_CONTEXT((method == 0 ? "program" : "callable")) {
      pkit::process p = method == 0 ? pkit::process{child_command({"pause"}), contained()}
                                    : pkit::process{[] { return 0; }, contained()};
      std::error_code ec;
      p.start(ec);
      BOOST_TEST(ec.category() == std::system_category());
      BOOST_TEST(ec.value() != 0);
      BOOST_REQUIRE(p.last_failure().has_value());
      BOOST_TEST(p.last_failure()->stage == "cgroup");
      BOOST_TEST(children_of_self().empty());
    }
  }
  BOOST_TEST(run_cgroups_left().empty());
}

// Where no cgroup can be made, start() fails at stage "cgroup" (no silent fallback).
BOOST_AUTO_TEST_CASE(no_cgroup_hierarchy_is_a_start_error) {
  using hooks = pkit::detail::cgroup_test_hooks;
  hooks::base = "/proc/no-such-cgroup";
  struct reset_hook {
    ~reset_hook() { hooks::base = nullptr; }
  } reset;
  pkit::process p{child_command({"pause"}), contained()};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == std::errc::no_such_file_or_directory, ec.message());
  BOOST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "cgroup");
  BOOST_TEST(children_of_self().empty());
}

// Fork-server children are made by the server, which cannot place them: refused up front
// (checked before the server is asked, so no server is needed here).
BOOST_AUTO_TEST_CASE(fork_server_targets_cannot_be_contained) {
  pkit::process p{pkit::server_target{nullptr, "worker", {}}, contained()};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == std::errc::not_supported, ec.message());
  BOOST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "cgroup");
}
