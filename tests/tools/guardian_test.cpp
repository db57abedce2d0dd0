// The guardian's watchdog (tools/pkit/include/pkit/tool/guardian.hpp), with real processes:
// a group watched by an armed guardian that is not fed is SIGKILLed; one that is fed is
// left alone until the feeding stops; a disarmed watchdog never fires. Every wait is on
// a pidfd, bounded.

#define BOOST_TEST_MODULE pkit guardian
#include <boost/test/unit_test.hpp>

#include <pkit/tool/guardian.hpp>

#include <chrono>
#include <csignal>
#include <thread>

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using pkit::tool::guardian;

namespace {

/// A child leading a group of its own, blocked until a signal ends it; reaped by ~child.
struct child {
  pid_t pid = ::fork();
  int pidfd = -1;
  child() {
    if (pid == 0) {
      ::setpgid(0, 0);
      for (;;) ::pause();
    }
    BOOST_REQUIRE(pid > 0);
    ::setpgid(pid, pid);  // both sides: whichever runs first
    pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    BOOST_REQUIRE(pidfd >= 0);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(pidfd);
  }
  /// True once it has exited (a zombie counts), within `deadline`.
  bool ends_within(std::chrono::milliseconds deadline) const {
    pollfd p{pidfd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(deadline.count())) == 1;
  }
  int signal_that_ended_it() const {
    siginfo_t info{};
    ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);
    return info.si_code == CLD_KILLED ? info.si_status : 0;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(an_unfed_watchdog_kills_the_watched_groups) {
  auto keeper = guardian::spawn();  // while single-threaded
  child c;
  keeper->watch(c.pid);
  const auto armed = std::chrono::steady_clock::now();
  keeper->arm_watchdog(300ms);
  BOOST_REQUIRE(c.ends_within(10s));
  BOOST_TEST((std::chrono::steady_clock::now() - armed >= 300ms), "killed before its limit");
  BOOST_TEST(c.signal_that_ended_it() == SIGKILL);
}

BOOST_AUTO_TEST_CASE(a_fed_watchdog_waits_and_fires_once_the_feeding_stops) {
  auto keeper = guardian::spawn();
  child c;
  keeper->watch(c.pid);
  keeper->arm_watchdog(300ms);
  // Fed every 50 ms for five limits: the child must live through all of it.
  for (int i = 0; i < 30; ++i) {
    keeper->feed();
    BOOST_REQUIRE_MESSAGE(!c.ends_within(50ms), "killed while fed (round " << i << ")");
  }
  // The feeding stops: it goes.
  BOOST_TEST(c.ends_within(10s));
  BOOST_TEST(c.signal_that_ended_it() == SIGKILL);
}

BOOST_AUTO_TEST_CASE(a_disarmed_watchdog_does_not_fire) {
  auto keeper = guardian::spawn();
  child c;
  keeper->watch(c.pid);
  keeper->arm_watchdog(200ms);
  keeper->arm_watchdog(0ms);
  BOOST_TEST(!c.ends_within(1s), "killed by a disarmed watchdog");
  // Re-armed: it fires again.
  keeper->arm_watchdog(200ms);
  BOOST_TEST(c.ends_within(10s));
}
