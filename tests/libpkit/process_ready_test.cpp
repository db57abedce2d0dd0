// Asynchronous readiness: process_options::on_ready, for callers that must not block in
// start(wait) (the actor layer). Each case synchronises on a promise fulfilled by the
// callback, never on time.

#include "test_support.hpp"

#include <atomic>
#include <csignal>
#include <future>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

using namespace pkit_test;
using namespace std::chrono_literals;

namespace {

struct ready_report {
  std::error_code ec;
  std::optional<pid_t> pid;
  std::thread::id thread;
};

/// Options whose on_ready fulfils `promise` with what it saw.
pkit::process_options reporting(std::promise<ready_report>& promise, pkit::process_options o = {}) {
  o.on_ready = [&promise](pkit::process& p, std::error_code ec) {
    promise.set_value({ec, p.pid(), std::this_thread::get_id()});
  };
  return o;
}

/// Lives as long as whoever holds it — a process's options, through a callback's capture:
/// `gone` is set once the process's state, and its callbacks, are freed.
struct lifetime_sentinel {
  std::promise<void> gone;
  ~lifetime_sentinel() { gone.set_value(); }
};

/// A shell that leaves a `sleep` holding its notify fd 3, prints the sleep's pid, and
/// exits 3 before it is ready.
pkit::command exits_leaving_fd3_held() {
  return pkit::command{"/bin/sh", "-c", "sleep 30 >/dev/null & echo $!; exit 3"};
}

ready_report await(std::promise<ready_report>& promise) {
  auto f = promise.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready));
  return f.get();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(on_ready)

BOOST_AUTO_TEST_CASE(on_ready_reports_a_forked_callable_ready_from_the_reaper_thread) {
  std::promise<ready_report> ready;
  auto gate = make_pipe();
  pkit::process_options o;
  o.pass_fds.emplace_back(3, gate.read.get());
  pkit::process p{[] {
                    char c;
                    return ::read(3, &c, 1) == 1 ? 0 : 1;
                  },
                  reporting(ready, o)};
  const pid_t pid = p.start();  // no wait: returns at once
  auto r = await(ready);
  BOOST_TEST(!r.ec);
  BOOST_TEST(r.pid == std::optional<pid_t>(pid));
  BOOST_TEST((r.thread != std::this_thread::get_id()));
  BOOST_TEST(write_all(gate.write.get(), "x"));
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(on_ready_waits_for_the_newline_on_the_notify_fd) {
  std::promise<ready_report> ready;
  pkit::process_options o;
  o.notify_fd = 3;
  o.out = pkit::stdio::pipe();
  // The child writes a marker to stdout before it notifies: when on_ready runs, the
  // marker must already be there.
  pkit::process p{pkit::command{"/bin/sh", "-c", "echo marker; echo >&3; exec sleep 60"}, reporting(ready, o)};
  p.start();
  auto r = await(ready);
  BOOST_TEST(!r.ec);
  pkit::unique_fd out = p.take_stdout_pipe();
  set_nonblocking(out.get());
  BOOST_TEST(read_available(out.get()) == "marker\n");
  p.kill();
  BOOST_TEST(p.join() == -SIGKILL);
}

// A start that watches no readiness (no wait, no on_ready) of a notify_fd child: nobody
// reads the fd. Before the fix the child got a pipe whose read end start() closed, and its
// readiness newline — written with default dispositions — killed it with SIGPIPE (review
// 19 #1; the pool's submit/execute alike). The child now gets /dev/null there.
BOOST_AUTO_TEST_CASE(a_notify_fd_nobody_watches_takes_the_newline_without_a_sigpipe) {
  pkit::process_options o;
  o.notify_fd = 3;
  o.in = pkit::stdio::pipe();
  // Notifies only once told to, i.e. after start() has returned (and closed what it would).
  pkit::process p{pkit::command{"/bin/sh", "-c", "read go; echo >&3; exit 7"}, o};
  p.start();
  pkit::unique_fd in = p.take_stdin_pipe();
  BOOST_TEST_REQUIRE(::write(in.get(), "go\n", 3) == 3);
  BOOST_TEST(p.join() == 7, "the child's readiness newline killed it");
}

// An on_ready that destroys its process — its run died before it was ready — gets no
// on_exit call on the destroyed object after it. Before the fix the exit's delivery called
// on_exit with the owner it had read before on_ready ran: a dangling reference (review 19
// #2). A background `sleep` keeps the notify pipe open past the child's exit, so the run's
// readiness is settled by the exit's delivery, where the defect was.
BOOST_AUTO_TEST_CASE(an_on_ready_that_destroys_its_process_gets_no_on_exit_after_it) {
  auto guard = std::make_shared<lifetime_sentinel>();
  auto freed = guard->gone.get_future();
  std::atomic<bool> exit_called{false};
  std::promise<std::error_code> ready;
  auto out = make_pipe();
  std::unique_ptr<pkit::process> holder;
  {
    pkit::process_options o;
    o.notify_fd = 3;
    o.out = pkit::stdio::fd(out.write.get());
    o.on_ready = [&holder, &ready](pkit::process&, std::error_code ec) {
      if (ec) holder.reset();
      ready.set_value(ec);
    };
    o.on_exit = [&exit_called, guard](pkit::process&) { exit_called = true; };
    guard.reset();  // the process's options hold the sentinel now, and nothing else does
    holder = std::make_unique<pkit::process>(exits_leaving_fd3_held(), o);
  }
  holder->start();
  out.write.reset();
  const std::string sleeper = read_all(out.read.get());  // the sleep's pid, until the shell exits
  auto r = ready.get_future();
  BOOST_TEST_REQUIRE((r.wait_for(event_timeout) == std::future_status::ready), "on_ready was not called");
  BOOST_TEST((r.get() == pkit::errc::died_before_ready));
  // The sleep's end closes the notify pipe: the last watch lets the state go.
  BOOST_TEST_REQUIRE(!sleeper.empty());
  ::kill(std::stoi(sleeper), SIGKILL);
  BOOST_TEST_REQUIRE((freed.wait_for(event_timeout) == std::future_status::ready), "the process's state was not freed");
  BOOST_TEST(!exit_called.load(), "on_exit was called on a process destroyed by on_ready");
}

// A run that ends before it is ready while a descendant holds its notify fd open: the
// readiness watch ends with the run. Before the fix it lasted until the descendant closed
// the pipe, holding the process's state — its callbacks and what they hold — across every
// restart meanwhile (review 19 #6).
BOOST_AUTO_TEST_CASE(the_readiness_watch_ends_with_the_run_not_with_a_descendant_holding_the_pipe) {
  auto guard = std::make_shared<lifetime_sentinel>();
  auto freed = guard->gone.get_future();
  std::promise<std::error_code> ready;
  auto out = make_pipe();
  std::string sleeper;
  {
    pkit::process_options o;
    o.notify_fd = 3;
    o.out = pkit::stdio::fd(out.write.get());
    o.on_ready = [&ready, guard](pkit::process&, std::error_code ec) { ready.set_value(ec); };
    guard.reset();  // the process's options hold the sentinel now, and nothing else does
    pkit::process p{exits_leaving_fd3_held(), o};
    p.start();
    out.write.reset();
    sleeper = read_all(out.read.get());  // the sleep's pid, until the shell exits
    BOOST_TEST(p.join() == 3);
    auto r = ready.get_future();
    BOOST_TEST_REQUIRE((r.wait_for(event_timeout) == std::future_status::ready));
    BOOST_TEST((r.get() == pkit::errc::died_before_ready));
  }  // the process goes; its state must follow while the sleep still holds fd 3
  const bool state_freed = freed.wait_for(event_timeout) == std::future_status::ready;
  BOOST_TEST_REQUIRE(!sleeper.empty());
  ::kill(std::stoi(sleeper), SIGKILL);
  BOOST_TEST(state_freed, "the readiness watch kept the process's state while a descendant held the pipe");
  if (!state_freed) freed.wait();  // the sleep's end frees it: the sentinel must not outlive the case
}

// A process not yet ready destroyed from another process's on_exit (on the reaper thread,
// where its destructor kills and collects the child itself): its readiness watch ends
// there too. It used to stay in the state, which it holds in turn — the state, its pipes
// and its callbacks leaked for good (review of 25f95ad).
BOOST_AUTO_TEST_CASE(a_process_destroyed_on_the_reaper_thread_before_it_is_ready_is_freed) {
  auto guard = std::make_shared<lifetime_sentinel>();
  auto freed = guard->gone.get_future();
  std::atomic<bool> ready_called{false};
  std::unique_ptr<pkit::process> a;
  {
    pkit::process_options o;
    o.notify_fd = 3;
    o.on_ready = [&ready_called, guard](pkit::process&, std::error_code) { ready_called = true; };
    guard.reset();  // the process's options hold the sentinel now, and nothing else does
    a = std::make_unique<pkit::process>(child_command({"pause"}), o);
  }
  const pid_t pid = a->start();
  const pkit::unique_fd pidfd{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))};
  BOOST_TEST_REQUIRE(pidfd.get() >= 0);
  std::promise<void> destroyed;
  pkit::process_options ob;
  ob.on_exit = [&a, &destroyed](pkit::process&) {
    a.reset();  // on the reaper thread
    destroyed.set_value();
  };
  pkit::process b{child_command({"exit", "0"}), ob};
  b.start();
  BOOST_TEST_REQUIRE((destroyed.get_future().wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(b.join() == 0);
  const bool state_freed = freed.wait_for(event_timeout) == std::future_status::ready;
  BOOST_TEST(state_freed, "the readiness watch kept the destroyed process's state");
  BOOST_TEST(!ready_called.load(), "on_ready was called for a destroyed process");
  BOOST_TEST(pkit_test::detail::wait_readable(pidfd.get(), std::chrono::steady_clock::now() + event_timeout),
             "the child of the destroyed process still runs");
}

BOOST_AUTO_TEST_CASE(a_child_that_closes_its_notify_fd_is_reported_not_ready_and_killed) {
  std::promise<ready_report> ready;
  pkit::process_options o;
  o.notify_fd = 3;
  pkit::process p{pkit::command{"/bin/sh", "-c", "exec 3>&-; exec sleep 60"}, reporting(ready, o)};
  p.start();
  auto r = await(ready);
  BOOST_TEST((r.ec == pkit::errc::died_before_ready));
  BOOST_TEST(p.join() == -SIGKILL);  // pkit killed it: it will never be ready
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "ready");
}

// A start refused because a run is under way throws already_running — not the failure
// recorded earlier for that run's readiness (the throwing start() threw the process's
// last recorded failure, whichever start or watch had recorded it). In on_ready the
// killed run is not collected yet: the reaper thread is the one calling back.
BOOST_AUTO_TEST_CASE(a_start_refused_while_running_throws_already_running_not_an_earlier_failure) {
  std::promise<std::error_code> thrown;
  pkit::process_options o;
  o.notify_fd = 3;
  o.on_ready = [&thrown](pkit::process& p, std::error_code ec) {
    if (!ec) return thrown.set_value({});
    try {
      p.start();
      thrown.set_value({});
    } catch (const pkit::spawn_error& e) {
      thrown.set_value(e.code());
    }
  };
  pkit::process p{pkit::command{"/bin/sh", "-c", "exec 3>&-; exec sleep 60"}, o};
  p.start();
  auto f = thrown.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready), "on_ready was not called");
  const std::error_code ec = f.get();
  BOOST_TEST((ec == pkit::errc::already_running), ec.message());
  BOOST_TEST(p.join() == -SIGKILL);
}

BOOST_AUTO_TEST_CASE(a_failed_child_setup_is_reported_through_on_ready_with_its_stage) {
  std::promise<ready_report> ready;
  // A descriptor number that refers to nothing (every fd this suite opens is far lower).
  const int stale = 900;
  BOOST_TEST_REQUIRE(::fcntl(stale, F_GETFD) == -1);
  pkit::process_options o;
  o.pass_fds.emplace_back(5, stale);
  pkit::process p{[] { return 0; }, reporting(ready, o)};
  p.start();
  auto r = await(ready);
  BOOST_TEST((r.ec == std::errc::bad_file_descriptor));
  BOOST_TEST(p.join() == 127);
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "dup2");
}

BOOST_AUTO_TEST_CASE(on_ready_is_not_called_for_a_start_with_wait) {
  int calls = 0;
  pkit::process_options o;
  o.on_ready = [&](pkit::process&, std::error_code) { ++calls; };
  pkit::process p{[] { return 4; }, o};
  p.start(pkit::wait);
  BOOST_TEST(p.join() == 4);
  BOOST_TEST(calls == 0);
}

BOOST_AUTO_TEST_CASE(a_child_that_is_ready_and_exits_at_once_is_reported_ready_before_its_exit) {
  // The exit and the readiness report race on the reaper thread; the order seen by the
  // callbacks must not depend on who wins: ready first, and really ready.
  for (int round = 0; round < 40; ++round) {
    std::mutex m;
    std::vector<std::string> seen;
    std::promise<void> exited;
    pkit::process_options o;
    o.on_ready = [&](pkit::process&, std::error_code ec) {
      std::lock_guard<std::mutex> lock(m);
      seen.push_back(ec ? "not ready: " + ec.message() : "ready");
    };
    o.on_exit = [&](pkit::process&) {
      {
        std::lock_guard<std::mutex> lock(m);
        seen.push_back("exit");
      }
      exited.set_value();
    };
    // Alternate: a program that exits at once, a forked callable that returns at once,
    // and a program that notifies and exits at once.
    std::unique_ptr<pkit::process> p;
    if (round % 3 == 0) {
      p = std::make_unique<pkit::process>(pkit::command{"/bin/true"}, o);
    } else if (round % 3 == 1) {
      p = std::make_unique<pkit::process>(pkit::callable_target{[] { return 0; }}, o);
    } else {
      o.notify_fd = 3;
      p = std::make_unique<pkit::process>(pkit::command{"/bin/sh", "-c", "echo >&3"}, o);
    }
    p->start();
    BOOST_TEST_REQUIRE((exited.get_future().wait_for(event_timeout) == std::future_status::ready));
    std::lock_guard<std::mutex> lock(m);
    BOOST_TEST_REQUIRE(seen.size() == 2u);
    BOOST_TEST(seen[0] == "ready");
    BOOST_TEST(seen[1] == "exit");
  }
}

BOOST_AUTO_TEST_CASE(a_child_that_exits_without_notifying_is_reported_not_ready_before_its_exit) {
  std::vector<std::string> seen;
  std::mutex m;
  std::promise<void> exited;
  pkit::process_options o;
  o.notify_fd = 3;
  o.on_ready = [&](pkit::process&, std::error_code ec) {
    std::lock_guard<std::mutex> lock(m);
    seen.push_back(ec == pkit::errc::died_before_ready ? "died before ready" : ec.message());
  };
  o.on_exit = [&](pkit::process&) {
    {
      std::lock_guard<std::mutex> lock(m);
      seen.push_back("exit");
    }
    exited.set_value();
  };
  pkit::process p{pkit::command{"/bin/true"}, o};
  p.start();
  BOOST_TEST_REQUIRE((exited.get_future().wait_for(event_timeout) == std::future_status::ready));
  std::lock_guard<std::mutex> lock(m);
  BOOST_TEST_REQUIRE(seen.size() == 2u);
  BOOST_TEST(seen[0] == "died before ready");
  BOOST_TEST(seen[1] == "exit");
}

BOOST_AUTO_TEST_SUITE_END()
