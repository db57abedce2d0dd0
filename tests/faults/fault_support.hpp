#pragma once

// Shared helpers of the fault tests (tests/faults): finding the helper programs, running
// a program with its output captured under a deadline, running a probe scenario, and a
// watchdog that turns a hang into a failure. Header-only; every wait is bounded in time.

#include "proc_util.hpp"

#include <pkit/process.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace pkit {
/// Lets BOOST_TEST print exit statuses.
inline std::ostream& boost_test_print_type(std::ostream& os, const exit_status& s) {
  return os << s.to_string();
}
inline std::ostream& boost_test_print_type(std::ostream& os, const std::optional<exit_status>& s) {
  return os << (s ? s->to_string() : std::string{"no exit"});
}
}  // namespace pkit

namespace faults {

using namespace std::chrono_literals;

/// The helper child program (tests/helper), from $PKIT_TEST_CHILD.
inline std::string helper() {
  const char* path = std::getenv("PKIT_TEST_CHILD");
  BOOST_TEST_REQUIRE(path != nullptr, "PKIT_TEST_CHILD is not set (run the test through ctest)");
  return path;
}

/// The purpose-written probe program of the fault tests (fault_probe.cpp).
inline std::string probe() { return PKIT_FAULT_PROBE; }

/// A command running the helper: helper_cmd({"exit", "0"}).
inline pkit::command helper_cmd(std::vector<std::string> args) {
  args.insert(args.begin(), helper());
  return pkit::command{std::move(args)};
}

/// What `run_captured` saw.
struct captured {
  std::optional<pkit::exit_status> status;  // empty: it did not end in time (it was killed)
  std::string out;
  std::string err;
  bool started = false;
  std::string start_error;
};

/// Runs `cmd` with stdin from /dev/null and stdout/stderr piped, reads both to EOF and
/// joins, all within `timeout`; kills it if it overruns.
inline captured run_captured(pkit::command cmd, std::chrono::milliseconds timeout = 30s) {
  captured c;
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::pipe();
  o.err = pkit::stdio::pipe();
  pkit::process p{std::move(cmd), std::move(o)};
  std::error_code ec;
  p.start(ec);
  if (ec) {
    c.start_error = p.last_failure() ? p.last_failure()->to_string() : ec.message();
    return c;
  }
  c.started = true;
  const auto deadline = steady::now() + timeout;
  pkit::unique_fd out = p.take_stdout_pipe();
  pkit::unique_fd err = p.take_stderr_pipe();
  std::vector<std::string> texts;
  drain({out.get(), err.get()}, texts, deadline);
  c.out = texts[0];
  c.err = texts[1];
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
  c.status = p.join_status(std::max(left, 1ms));
  if (!c.status) {
    p.kill();
    p.join_status(5s);
  }
  return c;
}

/// Checks that own_children() can see our children at all (it needs
/// CONFIG_PROC_CHILDREN): otherwise "no zombie, no child left" would hold vacuously.
inline void require_children_visible() {
  pkit::process p{pkit::command{helper(), "pause"}};
  const pid_t pid = p.start();
  const auto kids = own_children();
  const bool seen = std::find(kids.begin(), kids.end(), pid) != kids.end();
  p.kill();
  p.join_status(5s);
  BOOST_TEST_REQUIRE(seen, "/proc/self/task/*/children does not list our child " << pid);
}

/// "exited with code 3", or "no exit" for an empty optional.
inline std::string describe(const std::optional<pkit::exit_status>& st) {
  return st ? st->to_string() : std::string{"no exit within the deadline"};
}

/// Ends the test program (with a message, exit code 3) if the scope is not left within
/// `limit`: a fault that makes pkit hang fails the suite instead of stalling it. Not
/// abort(): Boost.Test would catch SIGABRT on this thread and longjmp across threads. Our
/// children die with us (PR_SET_PDEATHSIG), so this leaves nothing behind.
class watchdog {
public:
  watchdog(std::string what, std::chrono::seconds limit)
      : what_(std::move(what)), thread_([this, limit] {
          std::unique_lock<std::mutex> lock(m_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            const std::string msg = "\nwatchdog: '" + what_ + "' still running after " +
                                    std::to_string(limit.count()) + " s: a hang, failing the test program\n";
            write_all(STDERR_FILENO, msg);
            std::_Exit(3);
          }
        }) {}
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    {
      std::lock_guard<std::mutex> lock(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

private:
  std::string what_;
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

/// The exit code the probe uses for "this scenario cannot run here".
inline constexpr int probe_skip = 77;

/// Runs the probe in `mode` and checks it: exit 0 passes; exit 77 is a skip (the reason is
/// shown); anything else fails, showing the probe's output.
inline void expect_probe_passes(const std::string& mode, std::chrono::milliseconds timeout = 60s) {
  captured c = run_captured(pkit::command{probe(), mode}, timeout);
  BOOST_TEST_REQUIRE(c.started, "cannot start the probe: " << c.start_error);
  BOOST_TEST_REQUIRE(c.status.has_value(), "probe '" << mode << "' did not end within "
                                                      << timeout.count() << " ms; output:\n"
                                                      << c.out << c.err);
  if (*c.status == pkit::exit_status::exited(probe_skip)) {
    BOOST_TEST_MESSAGE("SKIPPED probe '" << mode << "': " << c.out << c.err);
    return;
  }
  BOOST_TEST(c.status->success(), "probe '" << mode << "' " << c.status->to_string()
                                            << "; output:\n"
                                            << c.out << c.err);
}

}  // namespace faults
