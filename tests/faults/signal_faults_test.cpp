// Fault tests for signals (FAULTS.md: T1). A child inherits its parent's signal mask and
// its ignored signals (across exec) and, when forked, its handlers; pkit's children must
// start with an empty mask and default dispositions, and a signal sent the moment start()
// returns must be honoured.

#define BOOST_TEST_MODULE pkit fault tests: signals
#include "fault_fork_server.hpp"

#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>

#include <fstream>
#include <functional>
#include <memory>

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

BOOST_AUTO_TEST_SUITE_END()
