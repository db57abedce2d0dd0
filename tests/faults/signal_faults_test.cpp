// Fault tests for signals (FAULTS.md: T1). A child inherits its parent's signal mask and
// its ignored signals (across exec) and, when forked, its handlers; pkit's children must
// start with an empty mask and default dispositions, and a signal sent the moment start()
// returns must be honoured.

#define BOOST_TEST_MODULE pkit fault tests: signals
#include "fault_fork_server.hpp"

#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>

#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <functional>
#include <memory>

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

using namespace faults;
using pkit::exit_status;

namespace {

// The SigBlk/SigIgn/SigCgt lines of /proc/self/status, what the helper's `signals` prints.
std::string signal_lines() {
  std::ifstream status{"/proc/self/status"};
  std::string line, out;
  while (std::getline(status, line))
    if (line.starts_with("SigBlk:") || line.starts_with("SigIgn:") || line.starts_with("SigCgt:"))
      out += line + "\n";
  return out;
}

int print_signal_lines() {
  return write_all(STDOUT_FILENO, signal_lines()) ? 0 : 3;
}

// Blocks `blocked` in the calling thread and ignores `ignored` for the scope.
class signal_state_guard {
public:
  signal_state_guard(std::initializer_list<int> blocked, std::initializer_list<int> ignored) {
    sigset_t set;
    sigemptyset(&set);
    for (int s : blocked) sigaddset(&set, s);
    ::pthread_sigmask(SIG_BLOCK, &set, &saved_mask_);
    for (int s : ignored) {
      struct sigaction old{}, ign{};
      ign.sa_handler = SIG_IGN;
      sigemptyset(&ign.sa_mask);
      ::sigaction(s, &ign, &old);
      saved_.emplace_back(s, old);
    }
  }
  ~signal_state_guard() {
    for (auto& [s, old] : saved_) ::sigaction(s, &old, nullptr);
    ::pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
  }
  signal_state_guard(const signal_state_guard&) = delete;
  signal_state_guard& operator=(const signal_state_guard&) = delete;

private:
  sigset_t saved_mask_{};
  std::vector<std::pair<int, struct sigaction>> saved_;
};

volatile sig_atomic_t handled = 0;
extern "C" void count_signal(int) { handled = handled + 1; }

// A caught signal for the scope (so the parent has SigCgt bits a forked child must drop).
class handler_guard {
public:
  explicit handler_guard(int signo) : signo_(signo) {
    struct sigaction sa{};
    sa.sa_handler = count_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(signo_, &sa, &saved_);
  }
  ~handler_guard() { ::sigaction(signo_, &saved_, nullptr); }
  handler_guard(const handler_guard&) = delete;
  handler_guard& operator=(const handler_guard&) = delete;

private:
  int signo_;
  struct sigaction saved_{};
};

// The fork server of this program, started by the global fixture before any thread, with
// SIGTERM and SIGINT blocked and SIGPIPE ignored: the server inherits that state, and its
// children must not.
pkit::fork_server start_server() {
  signal_state_guard parent_state{{SIGTERM, SIGINT}, {SIGPIPE}};
  handler_guard caught{SIGUSR2};
  pkit::fork_server::registry targets;
  targets.add("signals", [](const std::vector<std::string>&) { return print_signal_lines(); });
  targets.add("pause", [](const std::vector<std::string>&) -> int {
    for (;;) ::pause();
  });
  return pkit::fork_server::start(std::move(targets));
}

using server_fixture = fork_server_fixture<start_server>;
BOOST_TEST_GLOBAL_FIXTURE(server_fixture);

// Runs `p` with stdout piped and returns what it printed (and checks it exited 0).
std::string output_of(pkit::process& p, const std::string& what) {
  std::error_code ec;
  p.start(ec);
  BOOST_TEST_REQUIRE(!ec, what << ": start failed: " << ec.message());
  pkit::unique_fd out = p.take_stdout_pipe();
  std::vector<std::string> text;
  BOOST_TEST(drain({out.get()}, text, steady::now() + 10s), what << ": no EOF within 10 s");
  auto st = p.join_status(10s);
  if (!st) {
    p.kill();
    p.join_status(5s);
  }
  BOOST_TEST(st == exit_status::exited(0), what << ": " << describe(st));
  return text[0];
}

void expect_clean_signal_state(const std::string& what, const std::string& lines) {
  int seen = 0;
  for (const auto& line : lines_of(lines)) {
    std::istringstream in{line};
    std::string key, mask;
    in >> key >> mask;
    if (key != "SigBlk:" && key != "SigIgn:" && key != "SigCgt:") continue;
    ++seen;
    BOOST_TEST(mask.find_first_not_of('0') == std::string::npos,
               what << ": " << key << " " << mask << " (should be all zero)");
  }
  BOOST_TEST(seen == 3, what << ": expected 3 signal lines, got:\n" << lines);
}

}  // namespace

namespace {

// "pid pgrp" of a live (not zombie) process, or empty when it is gone.
std::optional<pid_t> live_pgrp(pid_t pid) {
  std::ifstream f{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in{text.substr(close + 2)};
  char state = 0;
  long ppid = 0, pgrp = 0;
  in >> state >> ppid >> pgrp;
  if (!in || state == 'Z' || state == 'X') return std::nullopt;
  return static_cast<pid_t>(pgrp);
}

struct term_tree {
  pid_t leader = 0, in_group = 0, escaped = 0;
};

// Starts the helper's term-tree (traps TERM; one grandchild in its group, one in a
// session of its own) and returns the pids once all three are set up.
term_tree start_term_tree(pkit::process& p) {
  term_tree t;
  t.leader = p.start();
  pkit::unique_fd out = p.take_stdout_pipe();
  std::string line;
  char c;
  while (::read(out.get(), &c, 1) == 1 && c != '\n') line += c;
  std::istringstream in{line};
  in >> t.in_group >> t.escaped;
  BOOST_TEST_REQUIRE(t.in_group > 0, "term-tree printed '" << line << "'");
  BOOST_TEST_REQUIRE((live_pgrp(t.in_group) == std::optional<pid_t>{t.leader}));
  BOOST_TEST_REQUIRE((live_pgrp(t.escaped) == std::optional<pid_t>{t.escaped}));
  return t;
}

void kill_and_forget(pid_t pid) {
  ::kill(pid, SIGKILL);
  siginfo_t si{};
  ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG);  // only if it became ours
}

}  // namespace

// T3. Stopping only the leader leaves its descendants running; a leader that traps TERM
// must be escalated. The helper ignores SIGTERM and starts `pause` twice: one stays in its
// process group, one calls setsid(). stop() with a 500 ms timeout and kill_group: when it
// returns the leader died of the SIGKILL escalation and the in-group descendant is gone —
// no window, stop() returns only once the group is empty. The setsid() one has left the
// group: process groups cannot promise to reach it (that is what a containment mode — a
// cgroup — is for), and the test asserts exactly that, so the day pkit contains it this
// line must change. Control: the same stop without kill_group leaves the in-group
// descendant alive, so the check can see a survivor.
BOOST_AUTO_TEST_CASE(stopping_a_term_trapping_leader_escalates_and_empties_its_group_but_not_a_setsid_escapee) {
  watchdog dog{"T3", 60s};
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::pipe();
  {
    pkit::process p{helper_cmd({"term-tree"}), o};
    const term_tree t = start_term_tree(p);
    const auto t0 = steady::now();
    const exit_status st = p.stop(pkit::stop_policy{SIGTERM, 500ms, true});
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
    const bool in_group_gone = !live_pgrp(t.in_group).has_value();
    const bool escaped_alive = live_pgrp(t.escaped).has_value();
    kill_and_forget(t.in_group);
    kill_and_forget(t.escaped);
    BOOST_TEST(st == exit_status::killed(SIGKILL), "the TERM-trapping leader ended: " << st.to_string());
    BOOST_TEST(ms >= 500, "stop returned after " << ms << " ms, before the 500 ms timeout");
    BOOST_TEST(ms < 5000, "stop took " << ms << " ms");
    BOOST_TEST(in_group_gone, "the leader's in-group descendant " << t.in_group << " outlived stop()");
    BOOST_TEST(escaped_alive, "the setsid() descendant was stopped too: update this test (containment)");
  }
  {
    pkit::process p{helper_cmd({"term-tree"}), o};
    const term_tree t = start_term_tree(p);
    const exit_status st = p.stop(pkit::stop_policy{SIGTERM, 500ms, false});
    const bool in_group_alive = live_pgrp(t.in_group).has_value();
    kill_and_forget(t.in_group);
    kill_and_forget(t.escaped);
    BOOST_TEST(st == exit_status::killed(SIGKILL));
    BOOST_TEST(in_group_alive, "control: without kill_group the in-group descendant died anyway");
  }
}

BOOST_AUTO_TEST_SUITE(signal_faults)

// T1. The parent blocks SIGTERM and SIGINT, ignores SIGPIPE and catches SIGUSR2 and SIGHUP
// (and Boost.Test catches SIGSEGV & co.); a program, a callable and a fork-server child
// each start with nothing blocked, ignored or caught, and SIGTERM kills each of them.
BOOST_AUTO_TEST_CASE(children_start_with_no_blocked_ignored_or_caught_signal_and_die_of_sigterm) {
  watchdog dog{"T1", 60s};
  signal_state_guard parent_state{{SIGTERM, SIGINT}, {SIGPIPE}};
  handler_guard usr2{SIGUSR2}, hup{SIGHUP};

  using maker = std::function<std::unique_ptr<pkit::process>(pkit::process_options)>;
  const std::vector<std::pair<std::string, maker>> reporters = {
      {"program", [](pkit::process_options o) { return std::make_unique<pkit::process>(helper_cmd({"signals"}), std::move(o)); }},
      {"callable", [](pkit::process_options o) { return std::make_unique<pkit::process>(print_signal_lines, std::move(o)); }},
      {"fork-server child",
       [](pkit::process_options o) { return std::make_unique<pkit::process>(server().target("signals"), std::move(o)); }},
  };
  for (const auto& [name, make] : reporters) {
    for (int round = 0; round < 3; ++round) {
      pkit::process_options o;
      o.in = pkit::stdio::null();
      o.out = pkit::stdio::pipe();
      auto p = make(std::move(o));
      expect_clean_signal_state(name, output_of(*p, name));
    }
  }

  const std::vector<std::pair<std::string, maker>> sleepers = {
      {"program", [](pkit::process_options o) { return std::make_unique<pkit::process>(helper_cmd({"pause"}), std::move(o)); }},
      {"callable",
       [](pkit::process_options o) {
         return std::make_unique<pkit::process>(
             [] {
               for (;;) ::pause();
             },
             std::move(o));
       }},
      {"fork-server child",
       [](pkit::process_options o) { return std::make_unique<pkit::process>(server().target("pause"), std::move(o)); }},
  };
  for (const auto& [name, make] : sleepers) {
    for (int round = 0; round < 5; ++round) {  // stops at the first survivor
      auto p = make({});
      std::error_code ec;
      p->start(pkit::wait, ec);
      BOOST_TEST_REQUIRE(!ec, name << ": start failed: " << ec.message());
      p->terminate();
      auto st = p->join_status(10s);
      if (!st) {
        p->kill();
        p->join_status(5s);
      }
      BOOST_TEST(st == exit_status::killed(SIGTERM), name << ": after SIGTERM: " << describe(st));
      if (!st) break;
    }
  }
}

// T1, signals mid-spawn. A signal sent the instant start() returns must act on the child
// with the default disposition: not run the parent's handler copied into a forked child,
// not be dropped because the parent ignores it and exec keeps SIG_IGN.
BOOST_AUTO_TEST_CASE(a_sigterm_sent_the_moment_start_returns_kills_the_child_whatever_the_parent_does_with_it) {
  watchdog dog{"T1 mid-spawn", 90s};
  auto check = [](const std::string& what, const std::function<std::unique_ptr<pkit::process>()>& make) {
    int survived = 0, wrong = 0;
    std::string first;
    for (int i = 0; i < 200 && survived == 0; ++i) {
      auto p = make();
      std::error_code ec;
      p->start(ec);
      BOOST_TEST_REQUIRE(!ec, what << ": start failed: " << ec.message());
      p->terminate();
      auto st = p->join_status(5s);
      if (!st) {
        ++survived;
        p->kill();
        p->join_status(5s);
      } else if (*st != exit_status::killed(SIGTERM)) {
        if (wrong++ == 0) first = st->to_string();
      }
    }
    BOOST_TEST(survived == 0, what << ": a child survived a SIGTERM sent right after start()");
    BOOST_TEST(wrong == 0, what << ": " << wrong << " children did not die of SIGTERM; first: " << first);
  };
  auto forked_pauser = [] {
    return std::make_unique<pkit::process>([] {
      for (;;) ::pause();
    });
  };
  auto program_pauser = [] { return std::make_unique<pkit::process>(helper_cmd({"pause"})); };
  {
    handler_guard term{SIGTERM};  // the parent catches SIGTERM
    check("callable, parent catches SIGTERM", forked_pauser);
    check("program, parent catches SIGTERM", program_pauser);
  }
  {
    signal_state_guard ignore{{}, {SIGTERM}};  // the parent ignores SIGTERM
    check("callable, parent ignores SIGTERM", forked_pauser);
    check("program, parent ignores SIGTERM", program_pauser);
  }
  {
    signal_state_guard block{{SIGTERM}, {}};  // the parent blocks SIGTERM
    check("callable, parent blocks SIGTERM", forked_pauser);
    check("program, parent blocks SIGTERM", program_pauser);
  }
}

// T2. A ^C typed at the terminal goes to the foreground process group; children in it die
// with the daemon's ^C (and a supervisor would count restarts). The probe leads a session
// on a fresh pty, starts a program and a callable (each in its own group, the default) and
// a control child left in its group; the ^C written to the master reaches the probe's
// SIGINT handler and kills the control; the pkit children record no exit and later die of
// the stop's SIGTERM.
BOOST_AUTO_TEST_CASE(a_ctrl_c_at_the_terminal_does_not_reach_children_in_their_own_groups) {
  watchdog dog{"T2", 60s};
  expect_probe_passes("pty-ctrl-c");
}

// T4. Daemon death. The probe (a daemon using pkit) starts echo children on its main thread
// and from a thread that ends at once; they answer a ping after that thread is gone
// (PR_SET_PDEATHSIG follows the creating thread: pkit must not let it be the short-lived
// one). Then the test SIGKILLs the daemon: every child is gone within 2 s, watched through
// pidfds opened while they lived (no pid reuse, no sleeping). Not provoked here: the race
// of a parent dying between the child's fork and its prctl (pkit's child compares
// getppid() with the saved parent after the prctl); hitting that window needs the parent
// killed within a few microseconds of the fork, which nothing outside the library can
// time deterministically.
BOOST_AUTO_TEST_CASE(children_outlive_the_thread_that_started_them_and_die_with_a_sigkilled_daemon) {
  watchdog dog{"T4", 60s};
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::pipe();
  pkit::process daemon{pkit::command{probe(), "daemon"}, o};
  daemon.start();
  pkit::unique_fd out = daemon.take_stdout_pipe();
  std::string text;
  char c;
  while (text.find('\n') == std::string::npos && ::read(out.get(), &c, 1) == 1) text += c;
  if (!text.starts_with("PIDS ")) {
    std::vector<std::string> rest;
    drain({out.get()}, rest, steady::now() + 10s);
    const auto st = daemon.join_status(10s);
    BOOST_TEST_REQUIRE(false, "the daemon failed (" << describe(st) << "): " << text << rest[0]);
  }
  std::istringstream in{text.substr(5)};
  std::vector<pkit::unique_fd> pidfds;
  for (pid_t pid; in >> pid;) {
    pidfds.emplace_back(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    BOOST_TEST_REQUIRE(pidfds.back().get() >= 0, "pidfd_open(" << pid << "): " << std::strerror(errno));
  }
  BOOST_TEST_REQUIRE(pidfds.size() == 4u);

  const auto t0 = steady::now();
  daemon.signal(SIGKILL);
  BOOST_TEST(daemon.join_status(10s) == exit_status::killed(SIGKILL));
  std::size_t gone = 0;
  for (auto& fd : pidfds) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t0 + 2s - steady::now());
    pollfd pfd{fd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(std::max<long long>(left.count(), 0))) == 1) {
      ++gone;
    } else {
      ::syscall(SYS_pidfd_send_signal, fd.get(), SIGKILL, nullptr, 0);  // leave no survivor
    }
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
  BOOST_TEST(gone == pidfds.size(), pidfds.size() - gone << " children outlived the SIGKILLed daemon by 2 s");
  BOOST_TEST_MESSAGE("T4: children of the SIGKILLed daemon gone after " << ms << " ms");
}

BOOST_AUTO_TEST_SUITE_END()
