#pragma once

// pidfd system calls. glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37), so
// its declarations cannot be linked from C++; these call the kernel directly.

#include <cerrno>
#include <csignal>
#include <poll.h>
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

/// Whether the exited child behind `pidfd` can be collected now, by its parent. A pidfd is
/// readable from its process's exit on, but a child that another process traces when it
/// dies (strace -p, gdb, a crash reporter) is a zombie only that tracer sees until it
/// waits for it or detaches: until then a blocking waitid of the parent's blocks, and a
/// WNOHANG one finds nothing. True as well when waitid fails (the child is not ours, or
/// gone): collecting it then reports it lost at once.
inline bool collectable(int pidfd) noexcept {
  siginfo_t info{};
  int r;
  do r = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG | WNOWAIT);
  while (r != 0 && errno == EINTR);
  return r != 0 || info.si_pid != 0;
}

/// Whether the process behind `pidfd` has died within `timeout_ms` (a pidfd turns readable
/// at its process's death). For a child just SIGKILLed: it dies within microseconds unless
/// it sleeps uninterruptibly, and nothing that reports other exits may wait for that.
inline bool died_within(int pidfd, int timeout_ms) noexcept {
  pollfd p{pidfd, POLLIN, 0};
  int n;
  do n = ::poll(&p, 1, timeout_ms);  // EINTR restarts the whole bound: a rare signal only
  while (n < 0 && errno == EINTR);
  return n > 0;
}

/// Signals the process group that `leader` leads, and the leader through `pidfd` only if
/// the group signal did not reach it (it has left its group) — once, so a program that
/// reads a second SIGTERM as "force quit" does not. `leader` must be an unreaped child of
/// the caller's, so its group id cannot have been reused by an unrelated group. Returns 0,
/// or -1 with errno set by the pidfd signal (ESRCH: the leader has exited).
inline int signal_group_led_by(pid_t leader, int pidfd, int signo) noexcept {
  if (::kill(-leader, signo) == 0 && ::getpgid(leader) == leader) return 0;
  return pidfd_send_signal(pidfd, signo);
}

}  // namespace pkit::detail
