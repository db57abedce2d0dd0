#include "detail/pidfd.hpp"
#include "detail/exec_spawn.hpp"
#include "detail/has_nul.hpp"
#include "detail/spawn_stack.hpp"

#include <pkit/errc.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/close_range.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
extern char** environ;

// glibc's own name for clone(). Sanitizer runtimes intercept clone() and, for a
// CLONE_VM child, run their fork bookkeeping in the child — on memory it shares with us,
// corrupting the parent's view of its own threads. The child here runs no instrumented
// code, so it needs no bookkeeping: call past the interceptor.
extern "C" int __clone(int (*fn)(void*), void* stack, int flags, void* arg, ...);

namespace pkit::detail {
namespace {

constexpr std::size_t max_arg_strlen = 32 * 4096;  // the kernel's MAX_ARG_STRLEN

std::string_view env_name(std::string_view entry) {
  return entry.substr(0, entry.find('='));
}

// Whether environment entry `entry` ("NAME=value", or a bare "NAME") is named `name`
// (which has no '='), without measuring the whole entry.
bool named(const char* entry, std::string_view name) {
  return std::strncmp(entry, name.data(), name.size()) == 0 &&
         (entry[name.size()] == '=' || entry[name.size()] == '\0');
}

struct shared_state {
  const exec_image* image;
  const child_setup* setup;
  const char* const* candidates;  // plain copies: the child calls no C++ member
  std::size_t candidate_count;
  int highest;  // highest_source(*setup)
  volatile int stage;
  volatile int error;
};

// The highest descriptor the child needs from the parent's table (stdio and pass
// sources, the cgroup's cgroup.procs; at least 2).
int highest_source(const child_setup& s) noexcept {
  int high = 2;
  for (int fd : s.stdio) high = fd > high ? fd : high;
  for (std::size_t i = 0; i < s.pass_count; ++i) high = s.pass[i].second > high ? s.pass[i].second : high;
  high = s.cgroup_procs > high ? s.cgroup_procs : high;  // containment::cgroup
  return high;
}

PKIT_CHILD_CODE int child_main(void* arg) {
  auto* sh = static_cast<shared_state*>(arg);
  // Cloned with CLONE_FILES: we still share the parent's descriptor table. Take a private
  // copy of just the part we need (CLOSE_RANGE_UNSHARE, Linux 5.9) before touching any
  // descriptor; without it, a full copy (unshare). Copying only the low part is what
  // makes a spawn cost the same with 10 or 10,000 descriptors open in the parent.
  if (raw_syscall(SYS_close_range, sh->highest + 1, ~0U, CLOSE_RANGE_UNSHARE) != 0 &&
      raw_syscall(SYS_unshare, CLONE_FILES) != 0) {
    sh->error = ENOMEM;
    sh->stage = static_cast<int>(child_stage::dup);
    exit_now(127);
  }
  reset_signal_dispositions();
  int no_internal = -1;
  child_failure f = apply_child_setup(*sh->setup, no_internal);
  if (f.stage != child_stage::none) {
    sh->error = f.error;
    sh->stage = static_cast<int>(f.stage);
    exit_now(127);
  }
  set_signal_mask(nullptr);
  // execvp's rules: try every candidate; remember EACCES; stop on an error that says the
  // file exists but cannot run for another reason.
  int err = ENOENT;
  bool saw_eacces = false;
  for (std::size_t i = 0; i < sh->candidate_count; ++i) {
    // Returns only on failure, with -errno (errno itself is the parent thread's here).
    err = static_cast<int>(-raw_syscall(SYS_execve, reinterpret_cast<long>(sh->candidates[i]),
                                        reinterpret_cast<long>(sh->image->argv()),
                                        reinterpret_cast<long>(sh->image->envp())));
    if (err == EACCES) {
      saw_eacces = true;
    } else if (err != ENOENT && err != ENOTDIR && err != ENAMETOOLONG) {
      break;
    }
  }
  if (saw_eacces && (err == ENOENT || err == ENOTDIR)) err = EACCES;
  sh->error = err;
  sh->stage = static_cast<int>(child_stage::exec);
  exit_now(127);
}

}  // namespace

exec_image exec_image::build(const command& cmd, std::error_code& ec, const std::string* extra_env) {
  exec_image img;
  ec.clear();
  // A cwd with a NUL would chdir to the directory its first part names.
  if (cmd.argv.empty() || cmd.argv[0].empty() || has_nul(cmd.cwd)) {
    ec = errc::invalid_argument;
    return img;
  }
  std::size_t total = 0;
  auto fits = [&](std::size_t length) {
    if (length + 1 > max_arg_strlen) {
      ec = std::make_error_code(std::errc::argument_list_too_long);
      return false;
    }
    total += length + 1 + sizeof(char*);
    return true;
  };
  for (const auto& a : cmd.argv) {
    if (has_nul(a)) {
      ec = errc::invalid_argument;
      return img;
    }
    if (!fits(a.size())) return img;
  }

  // Environment: inherited (or empty), then the changes in order. Pointers, not copies:
  // a restart goes through here every time, and copying a few dozen inherited strings
  // (and freeing them after the spawn) was most of the time between a start request and
  // the clone. The inherited strings are passed as execve(environ) and posix_spawn pass
  // them; the changes are the command's own strings (and *extra_env), which outlive the
  // image.
  if (!cmd.clear_env && environ != nullptr) {
    std::size_t n = 0;
    while (environ[n] != nullptr) ++n;
    img.envp_.reserve(n + cmd.env.size() + 2);
    img.envp_.assign(environ, environ + n);
  }
  auto apply = [&](const std::string& change) {
    if (has_nul(change) || change.empty() || change.front() == '=') {
      ec = errc::invalid_argument;
      return false;
    }
    const std::string_view name = env_name(change);
    std::erase_if(img.envp_, [&](const char* e) { return named(e, name); });
    if (change.find('=') != std::string::npos) img.envp_.push_back(change.c_str());
    return true;
  };
  for (const auto& change : cmd.env)
    if (!apply(change)) return img;
  if (extra_env != nullptr && !apply(*extra_env)) return img;
  for (const char* e : img.envp_)
    if (!fits(std::strlen(e))) return img;
  long arg_max = ::sysconf(_SC_ARG_MAX);
  if (arg_max > 0 && total + 2 * sizeof(char*) > static_cast<std::size_t>(arg_max)) {
    ec = std::make_error_code(std::errc::argument_list_too_long);
    return img;
  }

  img.argv_.reserve(cmd.argv.size() + 1);
  for (const auto& a : cmd.argv) img.argv_.push_back(a.c_str());
  img.argv_.push_back(nullptr);
  img.envp_.push_back(nullptr);

  // PATH lookup happens here, in the parent: the child must not allocate. The PATH is the
  // child's (after the environment changes), like execvpe.
  const std::string& prog = cmd.argv[0];
  if (prog.find('/') != std::string::npos) {
    img.candidates_.push_back(prog);
  } else {
    std::string path = "/bin:/usr/bin";  // glibc's default when PATH is unset
    for (const char* e : img.envp_)
      if (e != nullptr && named(e, "PATH")) path = e + 5;
    std::size_t start = 0;
    for (;;) {
      std::size_t end = path.find(':', start);
      std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
      img.candidates_.push_back((dir.empty() ? std::string(".") : dir) + "/" + prog);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  for (const auto& c : img.candidates_) img.candidate_ptrs_.push_back(c.c_str());
  return img;
}

exec_result exec_spawn(const exec_image& image, const child_setup& setup) {
  exec_result result;
  shared_state sh{&image, &setup, image.candidate_ptrs(), image.candidates().size(), highest_source(setup), 0, 0};

  // The child runs on a small stack of its own (it needs little: raw system calls only).
  const spawn_stack stack;
  if (!stack.ok()) {
    result.clone_error = errno;
    return result;
  }

  // Block every signal across the clone: a handler must not run in the child while it
  // shares our memory, and the child resets dispositions before unblocking.
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  pid_t pid;
  int attempts = 0;
  for (;;) {
    pid = ::__clone(child_main, stack.top(),
                  CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_PIDFD | SIGCHLD, &sh, &pidfd);
    // A short, bounded retry on EAGAIN: a process slot may free up (FAULTS S4).
    if (pid >= 0 || errno != EAGAIN || ++attempts > 3) break;
    ::sched_yield();
  }
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);

  if (pid < 0) {
    result.clone_error = clone_errno;
    return result;
  }
  result.pid = pid;
  result.pidfd.reset(pidfd);
  if (sh.stage != 0) {
    result.failure = {static_cast<child_stage>(sh.stage), sh.error};
    // The child has called _exit(127): reap it now so no zombie is left.
    siginfo_t info{};
    while (::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED) != 0 &&
           errno == EINTR) {
    }
    result.pidfd.reset();
  }
  return result;
}

}  // namespace pkit::detail
