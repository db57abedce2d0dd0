#pragma once

/// \file
/// The guardian of `pkit run`: a tiny process forked at startup that kills every process
/// group of the tree when `pkit run` dies, however it dies (SIGKILL included).
///
/// Why: a program's direct child gets PR_SET_PDEATHSIG, but its own children (a shell's
/// background jobs) do not, and a subreaper cannot help once pkit itself is gone. The
/// guardian holds one end of a socket pair whose other end only `pkit run` holds; the
/// kernel closes that end when pkit dies, and the guardian then sends SIGKILL to every process group
/// still registered (children lead their own group: pgid == pid) and exits.
///
/// Residual risk (documented): a registered group that has become empty could have its
/// id reused by an unrelated new group leader before the guardian drops it. The guardian
/// drops a group as soon as it is unregistered and empty, and checks every registered
/// group for emptiness once a second, so reuse needs the kernel to hand out the same pid
/// within that window (a full pid wrap-around).
///
/// The watchdog (`pkit node`): a node agent that is frozen (SIGSTOP, a wedged scheduler)
/// cannot stop its children, while the controller that lost it restarts them elsewhere.
/// Once armed, the guardian expects a feed at least every `limit`; when none comes, it
/// SIGKILLs every registered group (fencing, as a cluster fences a silent member) and
/// waits for the next feed to watch again. The guardian is a process of its own, so a
/// SIGSTOP of the agent does not stop it.

#include <sys/types.h>

#include <chrono>
#include <memory>

namespace pkit::tool {

class guardian {
public:
  /// Forks the guardian. Must be called while the process has a single thread (before
  /// the actor system, libpkit's reaper or any other thread starts): the child runs
  /// ordinary code after fork. Throws std::system_error (pipe, fork) or std::logic_error
  /// when more than one thread exists.
  static std::unique_ptr<guardian> spawn();

  guardian(const guardian&) = delete;
  guardian& operator=(const guardian&) = delete;
  /// Closes the socket (the guardian kills what is still registered and exits) and reaps
  /// the guardian.
  ~guardian();

  /// Registers / unregisters process group `pgid`. Thread-safe (one datagram each); errors are ignored (a guardian that died cannot be helped).
  void watch(pid_t pgid) noexcept;
  void unwatch(pid_t pgid) noexcept;

  /// Arms the watchdog: unless feed() comes at least every `limit`, every registered
  /// group is SIGKILLed. A zero `limit` disarms it. Thread-safe; errors ignored, as above.
  void arm_watchdog(std::chrono::milliseconds limit) noexcept;
  /// Feeds the watchdog (and re-arms it after it fired). Thread-safe; never blocks (a
  /// feed the socket has no room for is dropped); errors ignored.
  void feed() noexcept;

  /// The guardian's pid.
  pid_t pid() const noexcept { return pid_; }

private:
  guardian(pid_t pid, int fd) noexcept : pid_(pid), fd_(fd) {}
  void send(char op, pid_t pgid, int flags = 0) noexcept;

  pid_t pid_;
  int fd_;
};

}  // namespace pkit::tool
