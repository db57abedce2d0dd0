#include <pkit/exit_status.hpp>

#include <csignal>
#include <cstring>
#include <sys/wait.h>

namespace pkit {

exit_status exit_status::from_wait_status(int status) noexcept {
  if (WIFSIGNALED(status)) return killed(WTERMSIG(status), WCOREDUMP(status) != 0);
  return exited(WEXITSTATUS(status));
}

exit_status exit_status::from_siginfo(int code, int status) noexcept {
  switch (code) {
    case CLD_KILLED: return killed(status, false);
    case CLD_DUMPED: return killed(status, true);
    default: return exited(status);
  }
}

std::string exit_status::to_string() const {
  if (lost_) return "exit status lost (collected by another waiter)";
  if (!signaled_) return "exited with code " + std::to_string(value_);
  std::string s = "killed by signal " + std::to_string(value_) + " (" + signal_name(value_) + ")";
  if (core_) s += " (core dumped)";
  return s;
}

std::string signal_name(int signo) {
  // sigabbrev_np (glibc >= 2.32) is thread-safe, unlike strsignal.
  if (const char* abbrev = sigabbrev_np(signo)) return std::string("SIG") + abbrev;
  return "SIG" + std::to_string(signo);
}

}  // namespace pkit
