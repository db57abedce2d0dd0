#pragma once

/// \file
/// `pkit::exit_status`: how a process ended.

#include <string>

namespace pkit {

/// How a process ended: it exited with a code, or it was killed by a signal (possibly
/// dumping core), or — rarely — its status was lost (someone else reaped it, e.g. the
/// host program's `waitpid(-1)`). A plain value type; a default-constructed one means
/// "exited with 0".
class exit_status {
public:
  /// `exit_code()` of a lost status: no real exit code or signal number can be this.
  static constexpr int lost_exit_code = -2147483647 - 1;

  constexpr exit_status() noexcept = default;

  /// The process called exit(code) / returned `code` from its target.
  static constexpr exit_status exited(int code) noexcept { return {false, code, false}; }
  /// The process was killed by signal `signo`.
  static constexpr exit_status killed(int signo, bool core_dumped = false) noexcept {
    return {true, signo, core_dumped};
  }
  /// The process has ended but its status could not be collected (another waiter took
  /// it, or the kernel discarded it). Distinct from every real exit: `is_lost()`.
  static constexpr exit_status lost() noexcept {
    exit_status s{false, lost_exit_code, false};
    s.lost_ = true;
    return s;
  }
  /// Decodes a `wait`-style status word (`WIFEXITED` & co.).
  static exit_status from_wait_status(int status) noexcept;
  /// Decodes `siginfo_t::si_code` (`code`) and `si_status` (`status`) as filled by `waitid`.
  static exit_status from_siginfo(int code, int status) noexcept;

  constexpr bool is_exited() const noexcept { return !signaled_ && !lost_; }
  constexpr bool is_killed() const noexcept { return signaled_; }
  /// The status was lost (see `lost()`): neither exited nor killed.
  constexpr bool is_lost() const noexcept { return lost_; }
  /// Exit code; only meaningful when `is_exited()` (-1 otherwise).
  constexpr int code() const noexcept { return is_exited() ? value_ : -1; }
  /// Signal number; 0 unless `is_killed()`.
  constexpr int signal() const noexcept { return signaled_ ? value_ : 0; }
  constexpr bool core_dumped() const noexcept { return core_; }
  /// True for `exited(0)` only.
  constexpr bool success() const noexcept { return is_exited() && value_ == 0; }

  /// Python's `Process.exitcode` convention: the exit code, or minus the signal number;
  /// `lost_exit_code` for a lost status.
  constexpr int exit_code() const noexcept { return signaled_ ? -value_ : value_; }

  /// True when this run was ended by a stop (`process::stop`, `stop_async`, the
  /// destructor, `terminate` is not one) that had to escalate: its timeout passed and
  /// libpkit sent SIGKILL to the child or, with `kill_group`, to what was left of its
  /// group (systemd's result "timeout"). The status itself says how the child ended: a
  /// leader that obeyed the stop signal while its group had to be killed is `killed(SIGTERM)`
  /// with `stop_escalated()`; a SIGKILL from anyone else during the grace period is not
  /// escalated. An annotation, not part of the wait status: `==` ignores it.
  constexpr bool stop_escalated() const noexcept { return escalated_; }
  /// This status with `stop_escalated()` set to `on` (libpkit sets it; also for decoding).
  constexpr exit_status with_stop_escalated(bool on = true) const noexcept {
    exit_status s = *this;
    s.escalated_ = on;
    return s;
  }
  /// "exited with code 3", "killed by signal 9 (SIGKILL)", "... (core dumped)",
  /// "exit status lost".
  std::string to_string() const;

  /// How the process ended (exited/killed/lost, code or signal, core): `stop_escalated()`
  /// is not compared.
  friend constexpr bool operator==(const exit_status& a, const exit_status& b) noexcept {
    return a.signaled_ == b.signaled_ && a.value_ == b.value_ && a.core_ == b.core_ && a.lost_ == b.lost_;
  }

private:
  constexpr exit_status(bool sig, int value, bool core) noexcept
      : signaled_(sig), value_(value), core_(core) {}

  bool signaled_ = false;
  int value_ = 0;
  bool core_ = false;
  bool lost_ = false;
  bool escalated_ = false;
};

/// Name of a signal as in "SIGKILL"; "SIG<n>" for numbers without a name.
std::string signal_name(int signo);

}  // namespace pkit
