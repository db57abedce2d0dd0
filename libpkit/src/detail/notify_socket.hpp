#pragma once

// systemd's readiness protocol for one run (process_options::notify_socket): a datagram
// socket at a fresh abstract address, named to the child in NOTIFY_SOCKET, on which the
// child (or a process of its user) sends "READY=1".

#include <pkit/unique_fd.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

#include <sys/types.h>

namespace pkit::detail {

/// One run's notification socket. Created by the starting thread; afterwards `drain` and
/// `ready` may be called from any thread (the reaper's watch and an exit report may race:
/// a READY=1 read by either is seen by both). Owns its descriptor (SOCK_CLOEXEC).
class notify_socket {
public:
  /// Binds an AF_UNIX SOCK_DGRAM socket with SO_PASSCRED at "@pkit/notify/<pid>/<n>".
  /// `uid` is the effective uid the child will have: datagrams from it are accepted.
  /// Returns null with `ec` set (socket, bind or setsockopt's errno) on failure.
  static std::unique_ptr<notify_socket> open(uid_t uid, std::error_code& ec);

  int fd() const noexcept { return fd_.get(); }
  /// "NOTIFY_SOCKET=@pkit/notify/...", for the child's environment.
  const std::string& env_entry() const noexcept { return env_; }
  /// The child's pid, once it exists: its datagrams are accepted whatever its uid.
  void expect(pid_t child) noexcept { child_.store(child, std::memory_order_relaxed); }

  /// Reads every queued datagram without blocking. Returns true once a `READY=1` line has
  /// arrived from an accepted sender (sticky: later calls return true at once).
  bool drain();
  bool ready() const;

private:
  notify_socket() = default;
  bool accept_one();

  unique_fd fd_;
  std::string env_;
  uid_t uid_ = 0;
  std::atomic<pid_t> child_{0};
  mutable std::mutex m_;  // guards ready_ and the reads
  bool ready_ = false;
};

}  // namespace pkit::detail
