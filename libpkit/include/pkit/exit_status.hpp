#pragma once

/// \file
/// `pkit::exit_status`: how a process ended.

#include <string>

namespace pkit {

/// How a process ended: it exited with a code, or it was killed by a signal (possibly
/// dumping core). A plain value type; a default-constructed one means "exited with 0".
class exit_status {
public:
  constexpr exit_status() noexcept = default;

  /// The process called exit(code) / returned `code` from its target.
  static constexpr exit_status exited(int code) noexcept { return {false, code, false}; }
  /// The process was killed by signal `signo`.
  static constexpr exit_status killed(int signo, bool core_dumped = false) noexcept {
    return {true, signo, core_dumped};
  }
  /// Decodes a `wait`-style status word (`WIFEXITED` & co.).
  static exit_status from_wait_status(int status) noexcept;
  /// Decodes `siginfo_t::si_code` (`code`) and `si_status` (`status`) as filled by `waitid`.
  static exit_status from_siginfo(int code, int status) noexcept;

  constexpr bool is_exited() const noexcept { return !signaled_; }
  constexpr bool is_killed() const noexcept { return signaled_; }
  /// Exit code; only meaningful when `is_exited()`.
  constexpr int code() const noexcept { return signaled_ ? -1 : value_; }
  /// Signal number; 0 unless `is_killed()`.
  constexpr int signal() const noexcept { return signaled_ ? value_ : 0; }
  constexpr bool core_dumped() const noexcept { return core_; }
  /// True for `exited(0)` only.
  constexpr bool success() const noexcept { return !signaled_ && value_ == 0; }

  /// Python's `Process.exitcode` convention: the exit code, or minus the signal number.
  constexpr int exit_code() const noexcept { return signaled_ ? -value_ : value_; }

  /// "exited with code 3", "killed by signal 9 (SIGKILL)", "... (core dumped)".
  std::string to_string() const;

  friend constexpr bool operator==(const exit_status&, const exit_status&) noexcept = default;

private:
  constexpr exit_status(bool sig, int value, bool core) noexcept
      : signaled_(sig), value_(value), core_(core) {}

  bool signaled_ = false;
  int value_ = 0;
  bool core_ = false;
};

/// Name of a signal as in "SIGKILL"; "SIG<n>" for numbers without a name.
std::string signal_name(int signo);

}  // namespace pkit
