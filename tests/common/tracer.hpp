#pragma once

// A process that traces another (PTRACE_SEIZE: the traced process runs on) and never waits
// for it: while it lives, the traced process's zombie is its to collect, not the real
// parent's — a run that outlives its SIGKILL as far as its parent can tell (strace -p, gdb
// or a crash reporter attached when the process dies). Shared by the suites that need
// such a run (libpkit_traced_child_test, net_node_agent_orphan_test).
//
// Attaching needs CAP_SYS_PTRACE or a Yama ptrace_scope of 0: without them
// (`may_not_trace()`) cases skip with a warning; any other failure fails them.

#include <cerrno>
#include <csignal>

#include <fcntl.h>
#include <sys/prctl.h>

#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pkit_test_common {

class tracer {
public:
  /// Forks the tracer and waits until it has attached to `traced` (or failed to).
  explicit tracer(pid_t traced) {
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) {
      error_ = errno;
      return;
    }
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Async-signal-safe calls only: a forked copy of a threaded test. It dies with the
      // test (however the test ends: a tracer left behind would hold the zombie, and
      // ctest's output pipe, for ever).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      const int e = ::ptrace(PTRACE_SEIZE, traced, nullptr, nullptr) == 0 ? 0 : errno;
      (void)!::write(report[1], &e, sizeof e);
      for (;;) ::pause();
    }
    if (pid_ < 0) error_ = errno;
    ::close(report[1]);
    int e = ECHILD;  // the tracer died before it said
    ssize_t n;
    do n = ::read(report[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    ::close(report[0]);
    if (pid_ > 0) error_ = n == static_cast<ssize_t>(sizeof e) ? e : ECHILD;
  }
  tracer(const tracer&) = delete;
  tracer& operator=(const tracer&) = delete;
  ~tracer() { end(); }

  /// Whether it traces the process now.
  bool attached() const { return error_ == 0; }
  /// Whether it could not because this process may not trace (then a case skips; any
  /// other failure is the test's own and fails it).
  bool may_not_trace() const { return error_ == EPERM; }
  /// Why it did not attach (an errno), for a failing case's message.
  int error() const { return error_; }

  /// Ends the tracer: the traced zombie goes back to its real parent.
  void end() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

private:
  pid_t pid_ = -1;
  int error_ = 0;
};

/// The message of a case skipped because this process may not trace.
inline constexpr const char* cannot_trace = "skipped: this process may not ptrace (no CAP_SYS_PTRACE, Yama ptrace_scope)";

}  // namespace pkit_test_common

/// In a Boost.Test case: skips it (with a warning) when this process may not trace, and
/// fails it when tracer `t` did not attach for any other reason.
#define PKIT_TEST_REQUIRE_TRACED(t)                                                    \
  do {                                                                                 \
    if ((t).may_not_trace()) {                                                         \
      BOOST_WARN_MESSAGE(false, pkit_test_common::cannot_trace);                       \
      return;                                                                          \
    }                                                                                  \
    BOOST_REQUIRE_MESSAGE((t).attached(), "the tracer did not attach: errno " << (t).error()); \
  } while (false)
