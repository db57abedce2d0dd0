// The guardian's watchdog (tools/pkit/include/pkit/tool/guardian.hpp), with real processes:
// a group watched by an armed guardian that is not fed is SIGKILLed; one that is fed is
// left alone until the feeding stops, even when the guardian itself was stopped for longer
// than the limit; a disarmed watchdog never fires; with kill_owner the owner goes too.
// Every wait is on a pidfd, bounded.

#define BOOST_TEST_MODULE pkit guardian
#include <boost/test/unit_test.hpp>

#include <pkit/tool/guardian.hpp>

#include <chrono>
#include <csignal>
#include <thread>

#include <poll.h>
#include <sys/prctl.h>
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
  // Armed late in a millisecond of CLOCK_BOOTTIME (the watchdog's clock, kept in whole
  // milliseconds): a watchdog that counts from the truncated stamp fires up to ~1 ms
  // before its limit, and this makes that visible in every run, not in one of many.
  for (timespec ts{}; ::clock_gettime(CLOCK_BOOTTIME, &ts) == 0 && ts.tv_nsec % 1'000'000 < 900'000;) {
  }
  const auto armed = std::chrono::steady_clock::now();
  keeper->arm_watchdog(300ms, false);
  BOOST_REQUIRE(c.ends_within(10s));
  BOOST_TEST((std::chrono::steady_clock::now() - armed >= 300ms), "killed before its limit");
  BOOST_TEST(c.signal_that_ended_it() == SIGKILL);
}

BOOST_AUTO_TEST_CASE(a_fed_watchdog_waits_and_fires_once_the_feeding_stops) {
  auto keeper = guardian::spawn();
  child c;
  keeper->watch(c.pid);
  keeper->arm_watchdog(1000ms, false);
  // Fed every 50 ms for three limits: the child must live through all of it.
  for (int i = 0; i < 60; ++i) {
    keeper->feed();
    BOOST_REQUIRE_MESSAGE(!c.ends_within(50ms), "killed while fed (round " << i << ")");
  }
  // The feeding stops: it goes.
  BOOST_TEST(c.ends_within(10s));
  BOOST_TEST(c.signal_that_ended_it() == SIGKILL);
}

// feed_at: the limit runs from the time given (a feeder that learns of life after the
// fact), and a time older than the last feed's never moves the stamp back.
BOOST_AUTO_TEST_CASE(a_feed_at_an_earlier_time_counts_the_limit_from_that_time) {
  auto keeper = guardian::spawn();
  child c;
  keeper->watch(c.pid);
  const std::int64_t armed = guardian::now_ms();
  keeper->arm_watchdog(3000ms, false);
  // Far older than the arming: ignored (had the stamp moved back, it would fire at once).
  keeper->feed_at(armed - 60000);
  BOOST_REQUIRE_MESSAGE(!c.ends_within(1000ms), "a feed older than the last one moved the stamp back");
  // Known alive 100 ms after the arming, learnt only now (~1 s later): the limit runs from
  // then, so it fires ~2.1 s from here, where a plain feed() would give 3 s.
  const auto told = std::chrono::steady_clock::now();
  keeper->feed_at(armed + 100);
  BOOST_REQUIRE(c.ends_within(10s));
  const auto after = std::chrono::steady_clock::now() - told;
  BOOST_TEST((after < 2700ms), "fired " << std::chrono::duration_cast<std::chrono::milliseconds>(after).count()
                                         << " ms after the call: the limit did not run from the time fed");
  BOOST_TEST(c.signal_that_ended_it() == SIGKILL);
}

BOOST_AUTO_TEST_CASE(a_disarmed_watchdog_does_not_fire) {
  auto keeper = guardian::spawn();
  child c;
  keeper->watch(c.pid);
  keeper->arm_watchdog(200ms, false);
  keeper->arm_watchdog(0ms, false);
  BOOST_TEST(!c.ends_within(1s), "killed by a disarmed watchdog");
  // Re-armed: it fires again.
  keeper->arm_watchdog(200ms, false);
  BOOST_TEST(c.ends_within(10s));
}

BOOST_AUTO_TEST_CASE(a_guardian_stopped_past_the_limit_judges_by_the_owners_real_feeds) {
  auto keeper = guardian::spawn();
  child c;
  keeper->watch(c.pid);
  keeper->arm_watchdog(500ms, false);
  // The guardian (not its owner) does not run for two limits, while the owner feeds on.
  BOOST_REQUIRE(::kill(keeper->pid(), SIGSTOP) == 0);
  for (int i = 0; i < 20; ++i) {
    keeper->feed();
    std::this_thread::sleep_for(50ms);  // the feeding cadence, not a synchronisation
  }
  BOOST_REQUIRE(::kill(keeper->pid(), SIGCONT) == 0);
  for (int i = 0; i < 20; ++i) {
    keeper->feed();
    BOOST_REQUIRE_MESSAGE(!c.ends_within(50ms), "a fed owner's child was killed after the guardian resumed");
  }
  // A watch sent while it was stopped is honoured at the next fire: stop feeding.
  BOOST_TEST(c.ends_within(10s));
}

BOOST_AUTO_TEST_CASE(kill_owner_fences_the_owner_too) {
  // The owner is a child of the test: it starts the guardian, leads nothing itself,
  // watches a group of its own child, arms with kill_owner and never feeds.
  int ready[2];
  BOOST_REQUIRE(::pipe(ready) == 0);
  const pid_t owner = ::fork();
  BOOST_REQUIRE(owner >= 0);
  if (owner == 0) {
    ::close(ready[0]);
    auto keeper = guardian::spawn();  // single-threaded after fork
    const pid_t worker = ::fork();
    if (worker == 0) {
      ::setpgid(0, 0);
      for (;;) ::pause();
    }
    ::setpgid(worker, worker);
    keeper->watch(worker);
    keeper->arm_watchdog(200ms, true);
    (void)!::write(ready[1], &worker, sizeof worker);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  pid_t worker = 0;
  BOOST_REQUIRE(::read(ready[0], &worker, sizeof worker) == static_cast<ssize_t>(sizeof worker));
  ::close(ready[0]);
  const int worker_fd = static_cast<int>(::syscall(SYS_pidfd_open, worker, 0));
  BOOST_REQUIRE(worker_fd >= 0);
  const int owner_fd = static_cast<int>(::syscall(SYS_pidfd_open, owner, 0));
  BOOST_REQUIRE(owner_fd >= 0);
  pollfd o{owner_fd, POLLIN, 0};
  const bool fenced = ::poll(&o, 1, 10000) == 1;
  ::close(owner_fd);
  if (!fenced) ::kill(owner, SIGKILL);  // not left behind by a failing case
  BOOST_TEST(fenced, "the owner outlived its watchdog");
  int status = 0;
  BOOST_REQUIRE(::waitpid(owner, &status, 0) == owner);
  BOOST_TEST(WIFSIGNALED(status));
  BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  pollfd p{worker_fd, POLLIN, 0};
  BOOST_TEST(::poll(&p, 1, 10000) == 1, "the owner's watched group outlived the fence");
  ::close(worker_fd);
}

BOOST_AUTO_TEST_CASE(watches_never_block_while_the_guardian_does_not_read) {
  auto keeper = guardian::spawn();
  child c;
  // Stopped, the guardian reads nothing: its socket takes a few hundred records. A
  // blocking send would hang this test here (on a CAF worker, a node's whole scheduler).
  BOOST_REQUIRE(::kill(keeper->pid(), SIGSTOP) == 0);
  for (pid_t bogus = 0; bogus < 2000; ++bogus) keeper->watch(4'000'000 - bogus);  // no such groups
  keeper->watch(c.pid);
  BOOST_REQUIRE(::kill(keeper->pid(), SIGCONT) == 0);
  // The backlog goes out, in order, with the feeds (the guardian drains its socket as it
  // runs again); then the feeding stops and the fire reaches the real group, watched last.
  keeper->arm_watchdog(300ms, false);
  for (int i = 0; i < 40; ++i) {
    keeper->feed();
    BOOST_REQUIRE_MESSAGE(!c.ends_within(25ms), "killed while fed");
  }
  BOOST_TEST(c.ends_within(10s), "the watch sent while the guardian was stopped was lost");
}

// A fence must not depend on watch() having arrived (review 13 #8): a node frozen between
// a child's spawn and its tap's watch — two actor hops later — would otherwise leave that
// child's group running while the controller restarts it elsewhere. At fire time the
// guardian also finds the owner's children from the kernel's parent links.
BOOST_AUTO_TEST_CASE(an_unfed_watchdog_kills_the_owners_unwatched_children_too) {
  auto keeper = guardian::spawn();
  child c;  // never watched
  keeper->arm_watchdog(200ms, false);
  BOOST_REQUIRE_MESSAGE(c.ends_within(10s), "an unwatched child of the owner outlived the fence");
  BOOST_TEST(c.signal_that_ended_it() == SIGKILL);
}

// As `pkit node` runs it (kill_owner, the direct child with PR_SET_PDEATHSIG as libpkit
// spawns it): the owner is fenced after spawning a worker it has not watched yet, whose
// own child shares its group. PDEATHSIG ends the worker with the owner; only the group
// kill ends the grandchild.
BOOST_AUTO_TEST_CASE(a_fence_kills_the_group_of_a_child_spawned_but_not_yet_watched) {
  int ready[2];
  BOOST_REQUIRE(::pipe(ready) == 0);
  const pid_t owner = ::fork();
  BOOST_REQUIRE(owner >= 0);
  if (owner == 0) {
    ::close(ready[0]);
    try {
      auto keeper = guardian::spawn();  // single-threaded after fork
      int born[2];
      if (::pipe(born) != 0) ::_exit(3);
      const pid_t worker = ::fork();
      if (worker == 0) {
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::fork() == 0) {
          const pid_t me = ::getpid();
          (void)!::write(born[1], &me, sizeof me);
        }
        for (;;) ::pause();
      }
      ::setpgid(worker, worker);
      // The grandchild exists before the watchdog can fire: the fence must find it.
      pid_t grandchild = 0;
      if (::read(born[0], &grandchild, sizeof grandchild) != static_cast<ssize_t>(sizeof grandchild)) ::_exit(3);
      keeper->arm_watchdog(200ms, true);  // and never watch(worker): the window
      (void)!::write(ready[1], &grandchild, sizeof grandchild);
      for (;;) ::pause();
    } catch (...) {
      ::_exit(3);  // never back into Boost.Test in this copy
    }
  }
  ::close(ready[1]);
  pid_t grandchild = 0;
  const bool told = ::read(ready[0], &grandchild, sizeof grandchild) == static_cast<ssize_t>(sizeof grandchild);
  ::close(ready[0]);
  const int grandchild_fd = told ? static_cast<int>(::syscall(SYS_pidfd_open, grandchild, 0)) : -1;
  const int owner_fd = static_cast<int>(::syscall(SYS_pidfd_open, owner, 0));
  pollfd o{owner_fd, POLLIN, 0};
  const bool fenced = owner_fd >= 0 && ::poll(&o, 1, 10000) == 1;
  if (!fenced) ::kill(owner, SIGKILL);  // not left behind by a failing case
  int status = 0;
  BOOST_REQUIRE(::waitpid(owner, &status, 0) == owner);
  if (owner_fd >= 0) ::close(owner_fd);
  BOOST_TEST(fenced, "the owner outlived its watchdog");
  BOOST_REQUIRE(told);
  BOOST_REQUIRE(grandchild_fd >= 0);
  pollfd p{grandchild_fd, POLLIN, 0};
  const bool ended = ::poll(&p, 1, 10000) == 1;
  if (!ended) ::kill(grandchild, SIGKILL);  // not left behind by a failing case
  ::close(grandchild_fd);
  BOOST_TEST(ended, "the group of a child the guardian was not told of yet outlived the fence");
}
