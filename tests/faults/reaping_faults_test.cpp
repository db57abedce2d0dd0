// Fault tests for exit reporting and reaping (FAULTS.md: R1 to R6). Each case provokes
// one way real process libraries have lost, stolen or misreported exits.

#define BOOST_TEST_MODULE pkit fault tests: reaping
#include "fault_support.hpp"

#include <pkit/process.hpp>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <future>
#include <memory>
#include <thread>

#include <sys/syscall.h>
#include <sys/wait.h>

using namespace faults;
using pkit::exit_status;

namespace {

// Restores a signal's disposition on scope exit.
class disposition_guard {
public:
  explicit disposition_guard(int signo) : signo_(signo) { ::sigaction(signo_, nullptr, &saved_); }
  ~disposition_guard() { ::sigaction(signo_, &saved_, nullptr); }
  disposition_guard(const disposition_guard&) = delete;
  disposition_guard& operator=(const disposition_guard&) = delete;

private:
  int signo_;
  struct sigaction saved_{};
};

// Counts on_exit calls per process, so a missing or a doubled report shows.
struct report_counter {
  std::atomic<int> calls{0};
  std::atomic<int> code{-1000};
};

pkit::process_options counting(report_counter& c) {
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::null();
  o.on_exit = [&c](pkit::process& p) {
    c.code = p.exitcode().value_or(-999);
    c.calls.fetch_add(1);
  };
  return o;
}

std::atomic<long> sigusr1_received{0};
extern "C" void on_sigusr1(int) { sigusr1_received.fetch_add(1, std::memory_order_relaxed); }
static_assert(std::atomic<long>::is_always_lock_free);

}  // namespace

BOOST_AUTO_TEST_SUITE(reaping_faults)

// R1. A library that reaps with waitpid(-1) (or from a SIGCHLD handler) steals the exit
// statuses of children the application started itself: system() then returns -1/ECHILD.
BOOST_AUTO_TEST_CASE(system_keeps_its_exit_status_while_a_hundred_pkit_children_churn) {
  watchdog dog{"R1", 120s};
  std::atomic<int> calls{0}, wrong{0};
  std::atomic<int> first_wrong{0};
  std::promise<void> first_call;
  std::jthread sys([&](std::stop_token stop) {
    bool announced = false;
    while (!stop.stop_requested() && calls.load() < 20000) {
      const int r = std::system("exit 7");
      if (!(r != -1 && WIFEXITED(r) && WEXITSTATUS(r) == 7)) {
        if (wrong.fetch_add(1) == 0) first_wrong = r == -1 ? -errno : r;
      }
      calls.fetch_add(1);
      if (!announced) {
        first_call.set_value();
        announced = true;
      }
    }
  });
  BOOST_TEST_REQUIRE((first_call.get_future().wait_for(30s) == std::future_status::ready),
                     "system() never returned");

  constexpr int children = 100, rounds = 5;
  std::vector<report_counter> counters(children);
  std::vector<std::unique_ptr<pkit::process>> procs;
  for (int i = 0; i < children; ++i) {
    const int code = 10 + i % 50;
    if (i % 2 == 0) {
      procs.push_back(std::make_unique<pkit::process>(helper_cmd({"exit", std::to_string(code)}),
                                                      counting(counters[i])));
    } else {
      procs.push_back(std::make_unique<pkit::process>([code] { return code; }, counting(counters[i])));
    }
  }
  int bad = 0;
  std::string first_bad;
  for (int round = 0; round < rounds && bad == 0; ++round) {
    std::vector<bool> started(children, false);
    for (int i = 0; i < children; ++i) {
      std::error_code ec;
      procs[i]->start(ec);
      started[i] = !ec;
      if (ec && bad++ == 0) first_bad = "child " + std::to_string(i) + ": start failed: " + ec.message();
    }
    const auto deadline = steady::now() + 20s;  // for the whole round: a bug fails, not stalls
    for (int i = 0; i < children; ++i) {
      if (!started[i]) continue;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
      auto code = procs[i]->join(std::max(left, 1ms));
      if (code != 10 + i % 50 && bad++ == 0)
        first_bad = "child " + std::to_string(i) + " round " + std::to_string(round) + ": " +
                    (code ? std::to_string(*code) : std::string{"no exit in 10 s"});
      if (!code) {
        procs[i]->kill();
        procs[i]->join(5s);
      }
    }
  }
  sys.request_stop();
  sys.join();

  BOOST_TEST(calls.load() > 0);
  BOOST_TEST(wrong.load() == 0, wrong.load() << " of " << calls.load()
                                             << " system(\"exit 7\") calls did not return 7; first status "
                                             << first_wrong.load() << " (negative: -errno)");
  BOOST_TEST(bad == 0, bad << " pkit exits misreported; first: " << first_bad);
  for (int i = 0; i < children && bad == 0; ++i)
    BOOST_TEST(counters[i].calls.load() == rounds,
               "child " << i << ": on_exit called " << counters[i].calls.load() << " times for " << rounds << " runs");
  BOOST_TEST_MESSAGE("R1: " << calls.load() << " system() calls overlapped " << children * rounds
                            << " pkit runs");
}

// R1, the other half: a library that installs a SIGCHLD handler overwrites the
// application's (boost.process #432) or turns SIGCHLD into something other than the
// default. pkit installs none and leaves an application's handler alone.
BOOST_AUTO_TEST_CASE(pkit_neither_installs_nor_replaces_a_sigchld_handler) {
  watchdog dog{"R1 SIGCHLD", 60s};
  disposition_guard guard{SIGCHLD};
  auto use_pkit = [] {
    pkit::process a{helper_cmd({"exit", "0"})};
    a.start();
    BOOST_TEST(a.join_status(10s) == exit_status::exited(0));
    pkit::process b{[] { return 0; }};
    b.start(pkit::wait);
    BOOST_TEST(b.join_status(10s) == exit_status::exited(0));
  };
  use_pkit();
  struct sigaction now{};
  ::sigaction(SIGCHLD, nullptr, &now);
  BOOST_TEST((now.sa_handler == SIG_DFL && (now.sa_flags & SA_SIGINFO) == 0),
             "SIGCHLD has a handler or is ignored after using pkit");
  BOOST_TEST((now.sa_flags & SA_NOCLDWAIT) == 0, "SA_NOCLDWAIT is set on SIGCHLD");

  // The application's own handler survives pkit's use.
  static std::atomic<int> app_sigchld{0};
  struct sigaction mine{};
  mine.sa_handler = [](int) { app_sigchld.fetch_add(1); };
  sigemptyset(&mine.sa_mask);
  mine.sa_flags = SA_RESTART;
  ::sigaction(SIGCHLD, &mine, nullptr);
  use_pkit();
  ::sigaction(SIGCHLD, nullptr, &now);
  BOOST_TEST((now.sa_handler == mine.sa_handler), "pkit replaced the application's SIGCHLD handler");
}

// R2. An exit that happens before the supervisor registered the child is lost (or
// reported twice). Instantly exiting children from 16 threads at once, each spawn must
// produce exactly one on_exit. Scaled down from the catalog's 50,000 spawns to 2 x 2,500
// (/bin/true and an instantly returning callable) to fit two cores in seconds (~45 s; 85 s
// under ASan, where each fork copies the sanitizer's mappings: the watchdog allows that).
BOOST_AUTO_TEST_CASE(every_instantly_exiting_child_from_sixteen_threads_is_reported_exactly_once) {
  watchdog dog{"R2", 240s};
  constexpr int threads = 16, per_thread = 5000 / threads;  // 312 each, half programs
  struct slot {
    report_counter counter;
    std::unique_ptr<pkit::process> p;
  };
  std::vector<std::vector<std::unique_ptr<slot>>> all(threads);
  std::atomic<int> start_failures{0}, hung{0}, wrong{0};
  // /bin/true, not the helper: in a sanitizer build the helper spends tens of ms in the
  // sanitizer's start before it exits (5,000 spawns outlasted the watchdog under ASan).
  const pkit::command exit0{"/bin/true"};  // Boost.Test asserts on this thread only
  std::vector<std::jthread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto& mine = all[t];
      std::deque<slot*> window;
      auto collect = [&](slot* s) {
        auto st = s->p->join_status(hung.load() == 0 ? 10s : 1ms);
        if (!st) {
          hung.fetch_add(1);
          s->p->kill();
          s->p->join_status(5s);
        } else if (!st->success()) {
          wrong.fetch_add(1);
        }
      };
      for (int i = 0; i < per_thread && hung.load() == 0; ++i) {
        auto s = std::make_unique<slot>();
        if (i % 2 == 0) {
          s->p = std::make_unique<pkit::process>(exit0, counting(s->counter));
        } else {
          s->p = std::make_unique<pkit::process>([] { return 0; }, counting(s->counter));
        }
        std::error_code ec;
        s->p->start(ec);
        if (ec) {
          start_failures.fetch_add(1);
          continue;
        }
        window.push_back(s.get());
        mine.push_back(std::move(s));
        if (window.size() > 8) {
          collect(window.front());
          window.pop_front();
        }
      }
      for (slot* s : window) collect(s);
    });
  }
  workers.clear();  // joins

  int spawns = 0, missing = 0, doubled = 0;
  for (auto& mine : all)
    for (auto& s : mine) {
      ++spawns;
      const int n = s->counter.calls.load();
      if (n == 0) ++missing;
      if (n > 1) ++doubled;
    }
  BOOST_TEST(start_failures.load() == 0);
  BOOST_TEST(hung.load() == 0, hung.load() << " children were never reported (join timed out)");
  BOOST_TEST(wrong.load() == 0, wrong.load() << " children were reported with a wrong status");
  BOOST_TEST(missing == 0, missing << " of " << spawns << " runs got no on_exit");
  BOOST_TEST(doubled == 0, doubled << " of " << spawns << " runs got on_exit more than once");
  if (hung.load() == 0) BOOST_TEST(spawns == threads * per_thread);
}

namespace {

// The R2 injection: a child sends SIGUSR1 to the thread that is spawning it (tgkill) and
// exits; the handler blocks that thread until the child is dead (waitid WNOWAIT: never
// reaps). Where the signal lands inside start() — between the fork/exec and the exit watch
// — the child has exited before pkit registered it. Counted per landing place.
thread_local volatile sig_atomic_t in_start = 0;
// The children whose exits held this thread inside the start() under way.
thread_local pid_t held_in_start[16];
thread_local volatile sig_atomic_t held_count = 0;
std::atomic<long> injected_in_start{0}, injected_total{0}, injected_own{0};
static_assert(std::atomic<long>::is_always_lock_free);

extern "C" void hold_until_sender_exits(int, siginfo_t* info, void*) {
  const int saved = errno;
  siginfo_t w{};
  while (::waitid(P_PID, static_cast<id_t>(info->si_pid), &w, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
  injected_total.fetch_add(1, std::memory_order_relaxed);
  if (in_start) {
    injected_in_start.fetch_add(1, std::memory_order_relaxed);
    if (held_count < 16) held_in_start[held_count] = info->si_pid;
    held_count = held_count + 1;
  }
  errno = saved;
}

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int r2_spawns = 8000;  // sanitizers make each spawn several times slower
#else
constexpr int r2_spawns = 30000;  // ~25 s on two busy cores (the catalog: 50,000)
#endif
// New spawns stop at r2_spawns, or after this long once at least r2_min_spawns were made
// (the exits inside their own start() are about one in a thousand: the test needs one).
// On a slow machine (seen: a VM where the 30,000 took 158 s, a spawn ~5 ms of system time
// under this load) the program still ends within ctest's timeout, with two such cases in
// it. The minimum is a floor, not a deadline: CI under ctest -j2 made only 4,567 in the
// 40 s, so a deadline alone failed the count although nothing was wrong.
constexpr auto r2_budget = std::chrono::seconds(40);
constexpr long r2_min_spawns = 5000;

}  // namespace

// R2 with the exit injected before registration (see run_injected_r2). 30,000 spawns (the catalog asks 50,000,
// which takes ~37-45 s on two cores; 8,000 under sanitizers)
// from 16 threads with spawn_on_calling_thread (so the spawning thread is the caller's):
// /bin/true, a signaller program (unsanitized) and callables; the signallers and half
// the callables signal their spawning thread before they exit, and that thread then waits in the signal handler until
// the child is dead — when the signal lands inside start() (the child runs as soon as it
// is made: pkit's fork child once the parent holds its pidfd), the exit happens before
// pkit watches it. Exactly one on_exit per spawn, each with status 0. How many exits were
// injected inside start() is reported (the landing place is up to the scheduler; the test
// requires at least one).
namespace {

// The body of the R2 injection cases: `kinds` 2 spawns /bin/true and the signaller
// (pkit_fault_signaller) only (programs), 4 adds the two callables.
void run_injected_r2(int kinds) {
  watchdog dog{"R2 injected", 170s};
  disposition_guard guard{SIGUSR1};
  struct sigaction sa{};
  sa.sa_sigaction = hold_until_sender_exits;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  ::sigaction(SIGUSR1, &sa, nullptr);
  injected_in_start = 0;
  injected_total = 0;
  injected_own = 0;

  constexpr int threads = 16, per_thread = r2_spawns / threads;
  std::atomic<long> spawns{0}, start_failures{0}, hung{0}, wrong{0}, missing{0}, doubled{0};
  const auto t0 = steady::now();
  std::vector<std::jthread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      const pid_t tid = static_cast<pid_t>(::gettid());
      const pkit::command truth{"/bin/true"};
      // Unsanitized even in a sanitizer build (bench_child.c's `kill` mode, built by
      // pkit_add_plain_child): it must run at once.
      const pkit::command signaller{PKIT_FAULT_SIGNALLER, "kill", std::to_string(tid)};
      struct slot {
        report_counter counter;
        std::unique_ptr<pkit::process> p;
        int kind = 0;
      };
      std::deque<std::unique_ptr<slot>> window;
      auto collect = [&](slot& s) {
        auto st = s.p->join_status(hung.load() == 0 ? 20s : 1ms);
        if (!st) {
          if (hung.fetch_add(1) == 0) {
            const pid_t pid = s.p->pid().value_or(-1);
            std::string msg = "R2: first hung child: kind " + std::to_string(s.kind) + ", pid " +
                              std::to_string(pid) + ", state '" + std::string(1, proc_state(pid)) + "' alive " + std::to_string(s.p->is_alive()) + " runs " + std::to_string(s.p->runs()) + " calls " + std::to_string(s.counter.calls.load()) + "\n";
            write_all(STDERR_FILENO, msg);
          }
          s.p->kill();
          s.p->join_status(5s);
        } else if (!st->success()) {
          wrong.fetch_add(1);
        }
        const int n = s.counter.calls.load();
        if (n == 0) missing.fetch_add(1);
        if (n > 1) doubled.fetch_add(1);
      };
      for (int i = 0; i < per_thread && hung.load() == 0 &&
                      (steady::now() - t0 < r2_budget || spawns.load() < r2_min_spawns); ++i) {
        auto s = std::make_unique<slot>();
        pkit::process_options o = counting(s->counter);
        o.spawn_on_calling_thread = true;
        s->kind = i % kinds;
        switch (i % kinds) {
          case 0: s->p = std::make_unique<pkit::process>(truth, std::move(o)); break;
          case 1: s->p = std::make_unique<pkit::process>(signaller, std::move(o)); break;
          case 2: s->p = std::make_unique<pkit::process>([] { return 0; }, std::move(o)); break;
          default:
            s->p = std::make_unique<pkit::process>(
                [tid] {
                  ::syscall(SYS_tgkill, static_cast<long>(::getppid()), static_cast<long>(tid),
                            static_cast<long>(SIGUSR1));
                  return 0;
                },
                std::move(o));
        }
        std::error_code ec;
        held_count = 0;
        in_start = 1;
        const pid_t pid = s->p->start(ec);
        in_start = 0;
        // Its own exit held the thread before start() returned: the exit preceded the
        // end of start(), so it raced with (or preceded) the registration of its watch.
        const int held = held_count;
        for (int k = 0; k < std::min(held, 16); ++k)
          if (held_in_start[k] == pid) injected_own.fetch_add(1);
        if (ec) {
          start_failures.fetch_add(1);
          continue;
        }
        spawns.fetch_add(1);
        window.push_back(std::move(s));
        if (window.size() > 8) {
          collect(*window.front());
          window.pop_front();
        }
      }
      for (auto& s : window) collect(*s);
      // This thread created its children: it ends only after all were joined.
    });
  }
  workers.clear();  // joins
  const auto secs = std::chrono::duration<double>(steady::now() - t0).count();

  BOOST_TEST(start_failures.load() == 0);
  BOOST_TEST(hung.load() == 0, hung.load() << " children were never reported (join timed out)");
  BOOST_TEST(wrong.load() == 0, wrong.load() << " children were reported with a wrong status");
  BOOST_TEST(missing.load() == 0, missing.load() << " of " << spawns.load() << " runs got no on_exit");
  BOOST_TEST(doubled.load() == 0, doubled.load() << " of " << spawns.load() << " runs got on_exit more than once");
  if (hung.load() == 0) BOOST_TEST(spawns.load() >= std::min<long>(r2_min_spawns, threads * per_thread));
  BOOST_TEST(injected_total.load() > 0, "no child's signal reached its spawning thread");
  BOOST_TEST(injected_in_start.load() > 0, "no exit was injected inside start()");
  BOOST_TEST(injected_own.load() > 0, "no child's exit held its spawning thread inside its own start()");
  BOOST_TEST_MESSAGE("R2 injected: " << spawns.load() << " spawns in " << secs << " s; "
                                     << injected_total.load() << " exits held the spawning thread, "
                                     << injected_in_start.load() << " of them inside a start(), "
                                     << injected_own.load() << " inside their own start()");
}

}  // namespace

BOOST_AUTO_TEST_CASE(program_exits_injected_before_registration_from_sixteen_spawning_threads_are_each_reported_once) {
  run_injected_r2(2);
}

// Concurrent fork-method spawns once deadlocked on each other's go pipes (each child
// inherited the other's write end and waited for EOF); the go pipe now carries a byte.
BOOST_AUTO_TEST_CASE(exits_injected_before_registration_from_sixteen_spawning_threads_are_each_reported_once) {
  run_injected_r2(4);
}

// R3. One SIGCHLD for many exits, and EINTR everywhere: 1,000 children exit at one
// barrier (EOF on a shared pipe) while SIGUSR1 keeps arriving; all 1,000 exits are
// reported.
BOOST_AUTO_TEST_CASE(a_thousand_children_exiting_at_one_barrier_under_a_sigusr1_storm_are_all_reported) {
  watchdog dog{"R3", 150s};
  disposition_guard guard{SIGUSR1};
  struct sigaction sa{};
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: every interrupted call sees EINTR
  ::sigaction(SIGUSR1, &sa, nullptr);

  std::atomic<long> sent{0};
  std::jthread storm([&sent](std::stop_token stop) {
    const pid_t me = ::getpid();
    while (!stop.stop_requested()) {
      ::kill(me, SIGUSR1);
      sent.fetch_add(1);
      std::this_thread::sleep_for(100us);  // rate control (~10 kHz at most), not synchronization
    }
  });

  int barrier[2];
  BOOST_TEST_REQUIRE(::pipe2(barrier, O_CLOEXEC) == 0);
  pkit::unique_fd barrier_read{barrier[0]}, barrier_write{barrier[1]};

  constexpr int n = 1000;
  std::atomic<int> reported{0};
  std::promise<void> all_reported;
  std::vector<report_counter> counters(n);
  std::vector<std::unique_ptr<pkit::process>> procs;
  int start_failures = 0;
  std::string first_failure;
  for (int i = 0; i < n; ++i) {
    pkit::process_options o;
    o.in = pkit::stdio::fd(barrier_read.get());  // blocks until every write end is closed
    o.out = pkit::stdio::null();
    o.on_exit = [&, i](pkit::process& p) {
      counters[i].code = p.exitcode().value_or(-999);
      counters[i].calls.fetch_add(1);
      if (reported.fetch_add(1) + 1 == n) all_reported.set_value();
    };
    if (i % 2 == 0) {
      procs.push_back(std::make_unique<pkit::process>(helper_cmd({"echo"}), std::move(o)));
    } else {
      procs.push_back(std::make_unique<pkit::process>(
          [] {
            char buf[64];
            for (;;) {
              const ssize_t r = ::read(STDIN_FILENO, buf, sizeof buf);
              if (r == 0) return 0;
              if (r < 0 && errno != EINTR) return 3;
            }
          },
          std::move(o)));
    }
    std::error_code ec;
    procs.back()->start(ec);
    if (ec && start_failures++ == 0) first_failure = ec.message();
  }
  BOOST_TEST_REQUIRE(start_failures == 0, start_failures << " starts failed; first: " << first_failure);
  const int early = reported.load();
  BOOST_TEST(early == 0, early << " children exited before the barrier opened");

  barrier_write.reset();  // the barrier: every child reads EOF and exits at once
  auto done = all_reported.get_future();
  const bool all = done.wait_for(30s) == std::future_status::ready;
  storm.request_stop();
  storm.join();

  BOOST_TEST(all, "only " << reported.load() << " of " << n << " exits reported within 30 s");
  int wrong = 0;
  for (int i = 0; i < n; ++i) {
    auto st = procs[i]->join_status(all ? 10s : 1ms);
    if (!st) {
      procs[i]->kill();
      procs[i]->join_status(5s);
    }
    if (st != exit_status::exited(0) || counters[i].calls.load() != 1) ++wrong;
  }
  BOOST_TEST(wrong == 0, wrong << " children not reported exactly once as exited(0)");
  BOOST_TEST(sigusr1_received.load() > 0, "the SIGUSR1 storm never reached the process");
  BOOST_TEST_MESSAGE("R3: " << sent.load() << " SIGUSR1 sent, " << sigusr1_received.load() << " handled");
  // Drop any SIGUSR1 still pending before the guard restores the default action.
  struct sigaction ign{};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  ::sigaction(SIGUSR1, &ign, nullptr);
}

// R4. A launcher that ignores SIGCHLD makes the kernel auto-reap every child, and the
// exit status is lost. Run under such a launcher (the probe ignores SIGCHLD and execs
// itself), pkit still reports exited(3) for a program and for a callable.
BOOST_AUTO_TEST_CASE(an_inherited_sigchld_ignore_does_not_lose_exit_statuses) {
  watchdog dog{"R4", 90s};
  expect_probe_passes("sigchld-ignored");
}

// R5. Terminating right after start, and a single WNOHANG reap, leave zombies and unreported
// exits. Scaled down from the catalog's 10,000 to 2,000 `sleep 60` programs (plus 500
// callables) for two cores: every one is reported as killed by SIGTERM, no zombie remains.
BOOST_AUTO_TEST_CASE(children_terminated_right_after_start_are_all_reported_and_leave_no_zombie) {
  watchdog dog{"R5", 150s};
  require_children_visible();
  const auto children_before = own_children();
  constexpr int programs = 2000, callables = 500, n = programs + callables;
  std::atomic<int> reported{0};
  std::promise<void> all_reported;
  std::vector<report_counter> counters(n);
  std::vector<std::unique_ptr<pkit::process>> procs;
  int start_failures = 0, terminate_failures = 0;
  for (int i = 0; i < n; ++i) {
    pkit::process_options o;
    o.in = pkit::stdio::null();
    o.out = pkit::stdio::null();
    o.on_exit = [&, i](pkit::process& p) {
      counters[i].code = p.exitcode().value_or(-999);
      counters[i].calls.fetch_add(1);
      if (reported.fetch_add(1) + 1 == n) all_reported.set_value();
    };
    if (i < programs) {
      procs.push_back(std::make_unique<pkit::process>(helper_cmd({"sleep", "60000"}), std::move(o)));
    } else {
      procs.push_back(std::make_unique<pkit::process>(
          [] {
            for (;;) ::pause();
          },
          std::move(o)));
    }
    std::error_code ec;
    procs.back()->start(ec);
    if (ec) {
      ++start_failures;
      reported.fetch_add(1);  // keep the count reachable
      continue;
    }
    procs.back()->terminate(ec);
    if (ec) ++terminate_failures;
  }
  BOOST_TEST(start_failures == 0);
  BOOST_TEST(terminate_failures == 0);

  auto done = all_reported.get_future();
  const bool all = done.wait_for(30s) == std::future_status::ready;
  BOOST_TEST(all, "only " << reported.load() << " of " << n << " exits reported within 30 s");
  // Once everything is reported nothing may linger as a zombie, not even for a moment.
  const auto zombies = own_zombies();
  BOOST_TEST(zombies.empty(), zombies.size() << " zombie children after every exit was reported");

  int wrong = 0;
  std::string first;
  for (int i = 0; i < n; ++i) {
    auto st = procs[i]->join_status(all ? 10s : 1ms);
    if (!st) {
      procs[i]->kill();
      st = procs[i]->join_status(5s);
    }
    if (st != exit_status::killed(SIGTERM) || counters[i].calls.load() != 1) {
      if (wrong++ == 0)
        first = "child " + std::to_string(i) + ": " + describe(st) + ", on_exit x" +
                std::to_string(counters[i].calls.load());
    }
  }
  BOOST_TEST(wrong == 0, wrong << " children not reported exactly once as killed by SIGTERM; first: " << first);
  BOOST_TEST(own_children() == children_before, "children remain after all were reaped");
}

// R6. Signalling a pid after its child was reaped can hit an unrelated process that got
// the recycled pid. The probe forces the reuse in a pid namespace of its own and checks
// that terminate/signal/kill/stop on the old handle never reach the new owner.
BOOST_AUTO_TEST_CASE(a_stale_handle_never_signals_a_process_that_recycled_its_pid) {
  watchdog dog{"R6", 90s};
  expect_probe_passes("pid-reuse");
}

// R6, the group case: a kill_group stop whose leader was reaped (its on_exit gives the old
// pid, which is the old pgid, to a sentinel leading its own group) sends the sentinel
// nothing — no kill(-pgid) after the join, no late escalation.
BOOST_AUTO_TEST_CASE(a_group_stop_never_signals_a_group_that_recycled_the_leaders_pgid) {
  watchdog dog{"R6 group", 90s};
  expect_probe_passes("group-reuse");
}

BOOST_AUTO_TEST_SUITE_END()
