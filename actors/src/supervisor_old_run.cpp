#include "supervisor_old_run.hpp"

#include <cerrno>

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace pkit::actors::detail {
namespace {

// The raw system call: this C library's wrapper is declared but not always provided.
int open_pidfd(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)); }

}  // namespace

void old_run::watch(pid_t pid) noexcept {
  pidfd_.reset();
  if (pid > 0) pidfd_.reset(open_pidfd(pid));
  // ESRCH: already exited and reaped; any other failure (EMFILE, ...): no fd to watch, so
  // the next run starts at once, as it did before this guard existed.
}

bool old_run::lingers() noexcept {
  if (!pidfd_) return false;
  pollfd p{pidfd_.get(), POLLIN, 0};
  int n = 0;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return true;  // not readable: the process has not exited
  pidfd_.reset();
  return false;
}

}  // namespace pkit::actors::detail
