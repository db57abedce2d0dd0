#pragma once

// Spawning an external program safely from a multithreaded parent.

#include "detail/child_setup.hpp"

#include <pkit/command.hpp>
#include <pkit/unique_fd.hpp>

#include <string>
#include <system_error>
#include <vector>

namespace pkit::detail {

/// A command turned into what execve needs, built (and validated) in the parent so the
/// child allocates nothing.
class exec_image {
public:
  /// Validates `cmd`: non-empty argv, no NUL bytes (argv, env, cwd), each string under MAX_ARG_STRLEN and
  /// argv + envp under the kernel's ARG_MAX (all E2BIG otherwise). Resolves the PATH
  /// candidates for a program name without '/'. Returns an error and the failing stage.
  /// `extra_env` ("NAME=value", pkit's own: NOTIFY_SOCKET), if given, is applied after
  /// the command's changes. The image points into `cmd`, `*extra_env` and the process
  /// environment (as execve(environ) does) instead of copying them: all three must
  /// outlive it, which they do for the spawn it is built for.
  static exec_image build(const command& cmd, std::error_code& ec, const std::string* extra_env = nullptr);

  const char* const* argv() const noexcept { return argv_.data(); }
  const char* const* envp() const noexcept { return envp_.data(); }
  const std::vector<std::string>& candidates() const noexcept { return candidates_; }
  const char* const* candidate_ptrs() const noexcept { return candidate_ptrs_.data(); }

private:
  std::vector<const char*> argv_;
  std::vector<const char*> envp_;  // into environ, cmd.env and *extra_env
  std::vector<std::string> candidates_;
  std::vector<const char*> candidate_ptrs_;
};

struct exec_result {
  pid_t pid = -1;
  unique_fd pidfd;
  child_failure failure;  // stage != none: the child failed before or at exec (reaped)
  int clone_error = 0;    // clone itself failed (EAGAIN, ENOMEM)
};

/// clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD): the child shares our memory and runs only
/// raw system calls until execve, the way glibc's posix_spawn does; the calling thread is
/// suspended until the child has exec'd or died, so an exec failure is known (stage and
/// errno, written to memory we share) when this returns, and a failed child is reaped
/// here. The pidfd comes from the clone itself: no window in which the pid could be
/// reused or the exit missed.
exec_result exec_spawn(const exec_image& image, const child_setup& setup);

}  // namespace pkit::detail
