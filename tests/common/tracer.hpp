#pragma once

// A process that traces another (PTRACE_SEIZE: the traced process runs on) and never waits
// for it: while it lives, the traced process's zombie is its to collect, not the real
// parent's — a run that outlives its SIGKILL as far as its parent can tell (strace -p, gdb
// or a crash reporter attached when the process dies). Shared by the suites that need
// such a run (libpkit_traced_child_test, net_node_agent_orphan_test).
//
// Attaching needs CAP_SYS_PTRACE or a Yama ptrace_scope of 0: `attached` says whether it
// did; cases then skip with a warning.

#include <cerrno>
#include <csignal>

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
    if (::pipe(report) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      // Async-signal-safe calls only: a forked copy of a threaded test.
      const char ok = ::ptrace(PTRACE_SEIZE, traced, nullptr, nullptr) == 0 ? '1' : '0';
      (void)!::write(report[1], &ok, 1);
      for (;;) ::pause();
    }
    ::close(report[1]);
    char ok = '0';
    attached_ = pid_ > 0 && ::read(report[0], &ok, 1) == 1 && ok == '1';
    ::close(report[0]);
  }
  tracer(const tracer&) = delete;
  tracer& operator=(const tracer&) = delete;
  ~tracer() { end(); }

  bool attached() const { return attached_; }

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
  bool attached_ = false;
};

/// The message of a case skipped because this process may not trace.
inline constexpr const char* cannot_trace = "skipped: this process may not ptrace (no CAP_SYS_PTRACE, Yama ptrace_scope)";

}  // namespace pkit_test_common
