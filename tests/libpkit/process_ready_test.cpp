// Asynchronous readiness: process_options::on_ready, for callers that must not block in
// start(wait) (the actor layer). Each case synchronises on a promise fulfilled by the
// callback, never on time.

#include "test_support.hpp"

#include <future>
#include <thread>

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
