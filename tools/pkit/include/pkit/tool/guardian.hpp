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
/// The watchdog (`pkit node`): a node agent that is frozen (SIGSTOP, a wedged scheduler,
/// a stuck network or timer thread: watchdog_feeder.hpp) cannot stop its children, while
/// the controller that lost it restarts them elsewhere.
/// Once armed, the guardian expects a feed at least every `limit`; when none comes it
/// SIGKILLs every child of its owner with that child's group (found from the kernel's
/// parent links, registered or not: a node frozen between a child's spawn and its watch
/// must not leave that child running), every registered group and, if asked, its owner
/// (the node) too — stopped first, so that it reaps nothing meanwhile — fencing, as
/// systemd's WatchdogSec= does to a service that stops answering: the node's connections
/// then close, so its controller fails over at once even when only the node's actors were
/// wedged and its network thread still answered heartbeats. A feed is a timestamp in
/// memory shared with the guardian (CLOCK_BOOTTIME: a suspended host does not make a
/// stale feed look fresh): no traffic, nothing that can fill up or block, and a guardian
/// that was itself delayed judges by the owner's real last feed, never by a late read.
/// The guardian is a process of its own, out of the owner's session, so a SIGSTOP of the
/// owner does not stop it (a frozen cgroup or VM freezes both: it fires when it runs again).

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <memory>
#include <string>

namespace pkit::tool {

namespace detail {
/// One datagram to the guardian: 'w' (watch) or 'u' (unwatch) with a pgid; 't' wakes it
/// (the watchdog was armed or disarmed: look again).
struct guardian_record {
  char op;
  pid_t pgid;
};
}  // namespace detail

class guardian {
public:
  /// Forks the guardian. Must be called while the process has a single thread (before
  /// the actor system, libpkit's reaper or any other thread starts): the child runs
  /// ordinary code after fork. Throws std::system_error (pipe, fork) or std::logic_error
  /// when more than one thread exists.
  /// `owner_name` non-empty: the guardian keeps stderr, to say there (under that name)
  /// when its watchdog fired; otherwise its stdio is /dev/null.
  static std::unique_ptr<guardian> spawn(const std::string& owner_name = {});

  guardian(const guardian&) = delete;
  guardian& operator=(const guardian&) = delete;
  /// Closes the socket (the guardian kills what is still registered and exits) and reaps
  /// the guardian.
  ~guardian();

  /// Registers / unregisters process group `pgid`. Thread-safe, never blocks (one
  /// datagram each; kept in order in a backlog while the guardian does not read); errors
  /// are ignored (a guardian that died cannot be helped).
  void watch(pid_t pgid) noexcept;
  void unwatch(pid_t pgid) noexcept;

  /// Arms the watchdog (and counts as a feed): unless feed() comes at least every
  /// `limit`, every child of the owner (the process that called spawn()) is SIGKILLed
  /// with its process group, then every registered group, then the owner if
  /// `kill_owner`. A limit of zero or less disarms it. Thread-safe.
  void arm_watchdog(std::chrono::milliseconds limit, bool kill_owner) noexcept;
  /// Feeds the watchdog: an atomic store, never blocks (it also sends what watch/unwatch
  /// left in the backlog, when the backlog's lock is free). After it fired without killing
  /// the owner, a feed makes it watch again. Thread-safe.
  void feed() noexcept;
  /// Feeds the watchdog with the time the owner was last known alive (a now_ms() value,
  /// not in the future): the limit runs from there, so a feeder that learns of life
  /// after the fact does not stretch it. A time older than the last feed's is ignored.
  /// Otherwise as feed().
  void feed_at(std::int64_t alive_ms) noexcept;
  /// The watchdog's clock: CLOCK_BOOTTIME in ms (a host suspended meanwhile does not make
  /// a stale feed look recent).
  static std::int64_t now_ms() noexcept;

  /// The guardian's pid.
  pid_t pid() const noexcept { return pid_; }

private:
  using record = detail::guardian_record;
  struct shared_watch;
  guardian(pid_t pid, int fd, shared_watch* watch) noexcept : pid_(pid), fd_(fd), watch_(watch) {}
  void send(char op, pid_t pgid) noexcept;
  void flush_locked() noexcept;

  pid_t pid_;
  int fd_;
  shared_watch* watch_;  // MAP_SHARED with the guardian; unmapped by ~guardian
  std::mutex backlog_mutex_;
  std::deque<record> backlog_;  // records the socket had no room for; guarded by backlog_mutex_
  std::atomic<bool> backlogged_{false};  // !backlog_.empty(), for feed()'s look without the lock
};

}  // namespace pkit::tool
