#pragma once

// The one reaper thread of the library (the only global state pkit has; see reaper.cpp).

#include <pkit/exit_status.hpp>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <pkit/unique_fd.hpp>
#include <sys/types.h>

namespace pkit::detail {

/// Watches pidfds of pkit's children in an epoll set and collects each exit with
/// waitid(P_PIDFD): it never calls waitpid(-1) and installs no SIGCHLD handler, so it
/// cannot take the exit status of a child the host program started itself. An exit that
/// happened before the watch was added is not lost: a pidfd stays readable once its
/// process has exited. Handlers run on the reaper thread, one at a time.
///
/// Created on first use; lives until the program ends (never destroyed, so that static
/// `process` objects can still be stopped at exit). A forked child that uses pkit gets a
/// fresh reaper of its own.
class reaper {
public:
  using exit_handler = std::function<void(exit_status)>;
  /// Called when a watched fd is readable; returns false to stop watching it.
  using fd_handler = std::function<bool()>;

  static reaper& instance();

  /// Watches an own child through its pidfd (borrowed: it must stay open until the
  /// handler has run or `unwatch` returned). The handler gets the reaped status.
  std::uint64_t watch_child(int pidfd, exit_handler handler);
  /// Watches any readable fd (level-triggered): a socket, or a pidfd of a process that is
  /// not our child (readable once that process has exited).
  std::uint64_t watch_fd(int fd, fd_handler handler);
  /// Stops a watch. Once this returns the handler is not running and will not run again
  /// (unless called from that very handler, which is then allowed to finish). Returns
  /// false when the watch had already fired (child watches) or did not exist.
  bool unwatch(std::uint64_t id);

  /// Runs `task` on the reaper thread soon (for reports that must not run on the
  /// caller's thread, e.g. while it holds a lock the report needs).
  void post(std::function<void()> task);

  /// Runs `task` on the reaper thread and waits for it (directly when already there).
  /// Used to create children from a thread that lives as long as the program: Linux ties
  /// PR_SET_PDEATHSIG to the creating *thread*, so a child made by a short-lived thread
  /// would be killed when that thread ends.
  void run_sync(const std::function<void()>& task);

  bool on_reaper_thread() const noexcept { return std::this_thread::get_id() == thread_id_; }

  /// Held by the fork start method around fork(): while it is held, the reaper thread runs
  /// no handler, so no user callback holds a lock (stdio, a logger) the forked child could
  /// need. Empty (not locking) when called on the reaper thread itself.
  std::unique_lock<std::mutex> quiesce();

  reaper(const reaper&) = delete;
  reaper& operator=(const reaper&) = delete;

private:
  reaper();
  void loop();
  void dispatch(std::uint64_t id);

  struct entry {
    int fd = -1;
    bool child = false;
    exit_handler on_exit;
    fd_handler on_readable;
  };

  pid_t owner_ = 0;  // the process this reaper belongs to
  unique_fd epoll_;
  std::mutex mutex_;  // guards entries_, next_id_, running_
  std::condition_variable idle_;
  std::unordered_map<std::uint64_t, entry> entries_;
  std::uint64_t next_id_ = 1;
  std::uint64_t running_ = 0;  // id whose handler runs now, 0 if none
  std::mutex handler_mutex_;   // held while any handler runs (see quiesce)
  std::thread::id thread_id_;
  unique_fd wakeup_;  // eventfd for post()
  std::vector<std::function<void()>> posted_;  // guarded by mutex_
};

}  // namespace pkit::detail
