#pragma once

// What a freshly forked or cloned child does before it runs its target or execs: reset
// signals, process group, parent-death signal, working directory, resource limits, and
// descriptors. Everything here is async-signal-safe and made of raw system calls: it runs
// in the child of a multithreaded parent (a fork or a CLONE_VM|CLONE_VFORK clone that
// shares the parent's memory), where locks, malloc and sanitizer interceptors are off
// limits. The parent prepares every input (sorted arrays, C strings) beforehand.

#include <pkit/command.hpp>

#include <cstddef>
#include <sys/types.h>
#include <utility>

// The child code must not be instrumented: in a CLONE_VM child the sanitizers' per-thread
// state is the suspended parent thread's.
#define PKIT_CHILD_CODE __attribute__((no_sanitize("address", "undefined", "thread")))

namespace pkit::detail {

/// Stages of the child's start-up, reported back to the parent on failure.
enum class child_stage : int {
  none = 0,
  pgid,
  pdeathsig,
  rlimit,
  chdir,
  dup,
  exec,
  ready,
  cgroup,
  setgroups,
  setgid,
  setuid,
};

const char* stage_name(child_stage stage) noexcept;

/// The failure record a child hands to its parent (shared memory, pipe or socket).
struct child_failure {
  child_stage stage = child_stage::none;
  int error = 0;  // errno
};

/// Everything the child set-up needs, prepared by the parent. Plain data only.
struct child_setup {
  /// Sources for fds 0, 1, 2; -1 leaves the stream as inherited.
  int stdio[3] = {-1, -1, -1};
  /// {child fd, source fd}, for descriptors passed beyond 0..2.
  const std::pair<int, int>* pass = nullptr;
  std::size_t pass_count = 0;
  /// The child fd numbers that must stay open (every target above 2), sorted ascending.
  const int* keep = nullptr;
  std::size_t keep_count = 0;
  bool new_process_group = true;
  bool die_with_parent = true;
  pid_t parent = 0;  // for the PDEATHSIG race check
  /// cgroup.procs of the run's cgroup (containment::cgroup), or -1: the child writes "0"
  /// to it first, so that nothing it does or starts is outside the cgroup.
  int cgroup_procs = -1;
  const char* cwd = nullptr;
  const resource_limit* limits = nullptr;
  std::size_t limit_count = 0;
  /// process_options::user/group, resolved by the parent: when set, the child calls
  /// setgroups, setresgid and setresuid (in that order: each needs the privilege the next
  /// one drops) after the resource limits (raising a hard limit needs the privilege too)
  /// and before PR_SET_PDEATHSIG (a credential change clears the parent-death signal).
  bool set_credentials = false;
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;  // supplementary groups
  std::size_t group_count = 0;
};

/// Sets every signal disposition except SIGKILL/SIGSTOP back to SIG_DFL (a forked child
/// inherits the parent's handlers; ignored signals would even survive exec).
PKIT_CHILD_CODE void reset_signal_dispositions() noexcept;

/// Sets the calling thread's signal mask: empty when `blocked` is null.
PKIT_CHILD_CODE void set_signal_mask(const void* blocked_sigset) noexcept;

/// Applies `setup`. `internal_fd` (a status pipe, or -1) survives the descriptor clean-up
/// at a possibly different number, written back. On failure returns the stage and errno.
PKIT_CHILD_CODE child_failure apply_child_setup(const child_setup& setup, int& internal_fd) noexcept;

/// Writes all of `data` to `fd`, retrying on EINTR; async-signal-safe.
PKIT_CHILD_CODE bool write_all(int fd, const void* data, std::size_t size) noexcept;

/// _exit through the raw system call (no atexit handlers, no stdio flush).
[[noreturn]] PKIT_CHILD_CODE void exit_now(int code) noexcept;

/// A system call made with the instruction itself (libc's `syscall()` on other
/// architectures): returns -errno on failure and never touches errno. A forked child
/// that calls a libc function for the first time resolves its PLT entry — a walk through
/// the dynamic linker's tables that copy-on-write faults a dozen pages, on every start.
PKIT_CHILD_CODE long raw_syscall(long nr, long a = 0, long b = 0, long c = 0, long d = 0) noexcept;

}  // namespace pkit::detail
