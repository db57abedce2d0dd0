#include "detail/child_setup.hpp"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace pkit::detail {
namespace {

// The kernel's struct sigaction for rt_sigaction on x86_64/aarch64 (not glibc's).
struct kernel_sigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  unsigned long mask;
};

// A raw system call that reports failure as -errno instead of touching errno: in a
// CLONE_VM child errno is the parent thread's.
PKIT_CHILD_CODE inline long raw(long nr, long a = 0, long b = 0, long c = 0, long d = 0) noexcept {
  return raw_syscall(nr, a, b, c, d);
}

PKIT_CHILD_CODE inline long retry(long nr, long a = 0, long b = 0, long c = 0) noexcept {
  long r;
  do r = raw(nr, a, b, c);
  while (r == -EINTR);
  return r;
}

// Closes every descriptor in [first, last]. close_range (Linux 5.9) does it in one call;
// older kernels get a scan of /proc/self/fd with raw getdents64 — never a loop up to
// RLIMIT_NOFILE, which is slow under a huge limit and misses fds above a lowered one.
PKIT_CHILD_CODE void close_from(unsigned first, unsigned last) noexcept {
  if (first > last) return;
  if (raw(SYS_close_range, first, last, 0) == 0) return;
  long dir = raw(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/fd"),
                 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  alignas(8) char buf[4096];
  for (;;) {
    long n = raw(SYS_getdents64, dir, reinterpret_cast<long>(buf), sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[]
      unsigned short reclen;
      __builtin_memcpy(&reclen, buf + off + 16, sizeof reclen);
      const char* name = buf + off + 19;
      unsigned long fd = 0;
      bool number = *name != '\0';
      for (const char* c = name; *c != '\0'; ++c) {
        if (*c < '0' || *c > '9') {
          number = false;
          break;
        }
        fd = fd * 10 + static_cast<unsigned long>(*c - '0');
      }
      if (number && fd >= first && fd <= last && static_cast<long>(fd) != dir) raw(SYS_close, static_cast<long>(fd));
      off += reclen;
    }
  }
  raw(SYS_close, dir);
}

// setgroups, then the gid, then the uid: each call needs the privilege (CAP_SETGID,
// CAP_SETUID) that the next one may drop. setres*id sets the saved ids too, so the child
// cannot switch back; the ids are read back, so a call that "succeeded" without taking
// (a kernel or seccomp filter that fakes success) is caught rather than exec'ing as root.
// The raw calls change this task only, which is what a child needs (glibc's setuid()
// would broadcast to every thread — there are none here).
PKIT_CHILD_CODE child_failure set_credentials(const child_setup& s) noexcept {
  long r = raw(SYS_setgroups, static_cast<long>(s.group_count), reinterpret_cast<long>(s.groups));
  if (r != 0) return {child_stage::setgroups, static_cast<int>(-r)};
  r = raw(SYS_setresgid, s.gid, s.gid, s.gid);
  if (r != 0) return {child_stage::setgid, static_cast<int>(-r)};
  r = raw(SYS_setresuid, s.uid, s.uid, s.uid);
  if (r != 0) return {child_stage::setuid, static_cast<int>(-r)};
  gid_t g[3] = {};
  uid_t u[3] = {};
  if (raw(SYS_getresgid, reinterpret_cast<long>(&g[0]), reinterpret_cast<long>(&g[1]),
          reinterpret_cast<long>(&g[2])) != 0 ||
      g[0] != s.gid || g[1] != s.gid || g[2] != s.gid)
    return {child_stage::setgid, EPERM};
  if (raw(SYS_getresuid, reinterpret_cast<long>(&u[0]), reinterpret_cast<long>(&u[1]),
          reinterpret_cast<long>(&u[2])) != 0 ||
      u[0] != s.uid || u[1] != s.uid || u[2] != s.uid)
    return {child_stage::setuid, EPERM};
  return {};
}

}  // namespace

const char* stage_name(child_stage stage) noexcept {
  switch (stage) {
    case child_stage::none: return "none";
    case child_stage::pgid: return "setpgid";
    case child_stage::pdeathsig: return "prctl(PR_SET_PDEATHSIG)";
    case child_stage::rlimit: return "setrlimit";
    case child_stage::chdir: return "chdir";
    case child_stage::dup: return "dup2";
    case child_stage::exec: return "exec";
    case child_stage::ready: return "ready";
    case child_stage::cgroup: return "cgroup";
    case child_stage::setgroups: return "setgroups";
    case child_stage::setgid: return "setgid";
    case child_stage::setuid: return "setuid";
  }
  return "unknown";
}

void reset_signal_dispositions() noexcept {
  for (int sig = 1; sig < 65; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    kernel_sigaction old{};
    if (raw(SYS_rt_sigaction, sig, 0, reinterpret_cast<long>(&old), 8) != 0) continue;
    if (old.handler == reinterpret_cast<void*>(SIG_DFL)) continue;
    kernel_sigaction dfl{};
    dfl.handler = reinterpret_cast<void*>(SIG_DFL);
    raw(SYS_rt_sigaction, sig, reinterpret_cast<long>(&dfl), 0, 8);
  }
}

void set_signal_mask(const void* blocked) noexcept {
  unsigned long none = 0;
  raw(SYS_rt_sigprocmask, SIG_SETMASK,
      reinterpret_cast<long>(blocked != nullptr ? blocked : &none), 0, 8);
}

child_failure apply_child_setup(const child_setup& s, int& internal_fd) noexcept {
  if (s.cgroup_procs >= 0) {
    // "0": the writing process. First, so that the child is held before it can do more.
    long r = retry(SYS_write, s.cgroup_procs, reinterpret_cast<long>("0"), 1);
    if (r < 0) return {child_stage::cgroup, static_cast<int>(-r)};
  }
  if (s.new_process_group) {
    long r = raw(SYS_setpgid, 0, 0);
    if (r != 0) return {child_stage::pgid, static_cast<int>(-r)};
  }
  if (s.set_credentials) {
    child_failure f = set_credentials(s);
    if (f.stage != child_stage::none) return f;
  }
  if (s.die_with_parent) {
    long r = raw(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
    if (r != 0) return {child_stage::pdeathsig, static_cast<int>(-r)};
    // The parent may have died before the prctl: then nobody would ever signal us.
    if (raw(SYS_getppid) != s.parent) exit_now(127);
  }
  for (std::size_t i = 0; i < s.limit_count; ++i) {
    rlimit lim{s.limits[i].soft, s.limits[i].hard};
    long r = raw(SYS_prlimit64, 0, s.limits[i].resource, reinterpret_cast<long>(&lim), 0);
    if (r != 0) return {child_stage::rlimit, static_cast<int>(-r)};
  }
  if (s.cwd != nullptr) {
    long r = raw(SYS_chdir, reinterpret_cast<long>(s.cwd));
    if (r != 0) return {child_stage::chdir, static_cast<int>(-r)};
  }

  // Descriptors. A source may sit on another mapping's target number, so first move
  // every source (and the internal fd) above the highest target, then dup them down.
  int base = 3;
  for (std::size_t i = 0; i < s.keep_count; ++i) base = s.keep[i] + 1 > base ? s.keep[i] + 1 : base;
  if (internal_fd >= 0) {
    long r = raw(SYS_fcntl, internal_fd, F_DUPFD_CLOEXEC, base);
    if (r < 0) return {child_stage::dup, static_cast<int>(-r)};
    internal_fd = static_cast<int>(r);
  }
  int moved_stdio[3] = {-1, -1, -1};
  for (int i = 0; i < 3; ++i) {
    if (s.stdio[i] < 0) continue;
    long r = raw(SYS_fcntl, s.stdio[i], F_DUPFD_CLOEXEC, base);
    if (r < 0) return {child_stage::dup, static_cast<int>(-r)};
    moved_stdio[i] = static_cast<int>(r);
  }
  // The moved pass sources are remembered in place of the sources: at most 256 of them
  // (checked by the parent), so a fixed array suffices without allocating.
  int moved_pass[256];
  for (std::size_t i = 0; i < s.pass_count && i < 256; ++i) {
    long r = raw(SYS_fcntl, s.pass[i].second, F_DUPFD_CLOEXEC, base);
    if (r < 0) return {child_stage::dup, static_cast<int>(-r)};
    moved_pass[i] = static_cast<int>(r);
  }
  for (int i = 0; i < 3; ++i) {
    if (moved_stdio[i] < 0) continue;
    long r = retry(SYS_dup3, moved_stdio[i], i, 0);
    if (r < 0) return {child_stage::dup, static_cast<int>(-r)};
  }
  for (std::size_t i = 0; i < s.pass_count && i < 256; ++i) {
    long r = retry(SYS_dup3, moved_pass[i], s.pass[i].first, 0);
    if (r < 0) return {child_stage::dup, static_cast<int>(-r)};
  }
  // Close everything above 2 but the targets and the internal fd (which is >= base, so
  // it sorts after every target).
  unsigned next = 3;
  for (std::size_t i = 0; i <= s.keep_count; ++i) {
    int k = i < s.keep_count ? s.keep[i] : internal_fd;
    if (k < 3) continue;
    if (static_cast<unsigned>(k) > next) close_from(next, static_cast<unsigned>(k) - 1);
    next = static_cast<unsigned>(k) + 1;
  }
  close_from(next, ~0u);
  return {};
}

bool write_all(int fd, const void* data, std::size_t size) noexcept {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    long r = raw(SYS_write, fd, reinterpret_cast<long>(p), static_cast<long>(size));
    if (r == -EINTR) continue;
    if (r <= 0) return false;
    p += r;
    size -= static_cast<std::size_t>(r);
  }
  return true;
}

void exit_now(int code) noexcept {
  for (;;) raw_syscall(SYS_exit_group, code);
}

long raw_syscall(long nr, long a, long b, long c, long d) noexcept {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
#else
  long r = ::syscall(nr, a, b, c, d);
  return r == -1 ? -errno : r;
#endif
}

}  // namespace pkit::detail
