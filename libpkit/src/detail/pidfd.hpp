#pragma once

// pidfd system calls. glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37), so
// its declarations cannot be linked from C++; these call the kernel directly.

#include <csignal>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>  // P_PIDFD for waitid
#include <unistd.h>

namespace pkit::detail {

inline int pidfd_open(pid_t pid, unsigned int flags = 0) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

inline int pidfd_send_signal(int pidfd, int sig) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

}  // namespace pkit::detail
