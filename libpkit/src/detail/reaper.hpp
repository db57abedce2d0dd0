#pragma once

// The one reaper thread of the library (the only global state pkit has; see reaper.cpp).

#include <pkit/exit_status.hpp>
#include <pkit/unique_fd.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
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
/// process has exited. A child traced by another process when it died cannot be
/// collected until its tracer lets it go: its handler waits (the child is looked at
/// again every 10 ms to 1 s) while every other child's exit is reported as usual. Handlers and timer tasks run on the reaper thread, one at a time,
/// and never under a lock of the reaper's: a handler may call any member (and user code
/// run from a handler — `on_exit` — may block on its own locks without blocking anyone
/// who starts, stops or joins another process; it only delays later reports).
///
/// Created on first use; lives until the program ends (never destroyed, so that static
/// `process` objects can still be stopped at exit). A forked child that uses pkit gets a
/// fresh reaper of its own.
class reaper {
public:
  using exit_handler = std::function<void(exit_status)>;
  using clock = std::chrono::steady_clock;
  /// Called when a watched fd is readable; returns false to stop watching it.
  using fd_handler = std::function<bool()>;

  static reaper& instance();

  /// Watches an own child through its pidfd (borrowed: it must stay open until the
  /// handler has run or `unwatch` returned). The handler gets the reaped status.
  std::uint64_t watch_child(int pidfd, exit_handler handler);
  /// Watches an own child through its pidfd without collecting it: `on_exited` is called
  /// once, when the child has exited, and leaves it unreaped (a zombie whose pid and
  /// process group id stay reserved) for the handler to collect — so that whoever owns
  /// the child can finish with its process group first. Same fd rules as `watch_child`.
  std::uint64_t watch_exit(int pidfd, std::function<void()> on_exited);
  /// Watches any readable fd (level-triggered): a socket, or a pidfd of a process that is
  /// not our child (readable once that process has exited). The reaper watches a
  /// duplicate of its own, so the handler may close `fd` (and returns false then).
  std::uint64_t watch_fd(int fd, fd_handler handler);
  /// Watches `fd` for one readable event: the watch ends before `handler` runs, so the
  /// handler may close `fd`. Same fd rules as `watch_child`, no descriptor of the
  /// reaper's own (for watches that may be many: a fork server's children once it died).
  std::uint64_t watch_fd_once(int fd, std::function<void()> handler);
  /// Watches `fd` for one writable event (or its error or hang-up), as `watch_fd_once`
  /// does for readable ones: a socket whose send buffer was full can take more now.
  std::uint64_t watch_writable_once(int fd, std::function<void()> handler);
  /// Stops a watch. Once this returns the handler is not running and will not run again
  /// (unless called from that very handler, which is then allowed to finish). Returns
  /// false when the watch had already fired (child watches) or did not exist.
  bool unwatch(std::uint64_t id);

  /// Runs `task` on the reaper thread soon (for reports that must not run on the
  /// caller's thread, e.g. while it holds a lock the report needs).
  void post(std::function<void()> task);

  /// Runs `task` on the reaper thread at `when` (or soon after; a handler that blocks
  /// delays it). Returns an id for `cancel`. Used for stop deadlines, so a stop goes on
  /// without a thread waiting for it.
  std::uint64_t schedule(clock::time_point when, std::function<void()> task);
  /// Cancels a scheduled task that has not started; false when it ran or is running.
  bool cancel(std::uint64_t timer);

  bool on_reaper_thread() const noexcept { return std::this_thread::get_id() == thread_id_; }
  /// Whether the calling thread is this process's reaper thread — without creating a
  /// reaper when there is none yet (a check must not start a thread: a `process` made and
  /// destroyed unstarted in a forked copy of a threaded program must stay thread-free).
  static bool called_on_reaper_thread() noexcept;

  reaper(const reaper&) = delete;
  reaper& operator=(const reaper&) = delete;

private:
  reaper();
  void loop();
  void dispatch(std::uint64_t id);
  void run_due_timers();
  std::uint64_t add(int fd, int kind, exit_handler on_exit, std::function<void()> on_exited,
                    fd_handler on_readable);

  void park(std::unique_lock<std::mutex>& lock, std::uint64_t id);
  void unpark(std::uint64_t id);

  struct entry {
    unique_fd own;  // fd watches: the reaper's duplicate of the watched fd
    int fd = -1;    // the number registered in epoll (own's, for fd watches)
    int kind = 0;  // 0: fd, 1: child (reap), 2: exit (no reap), 3: fd once, 4: writable once
    exit_handler on_exit;
    std::function<void()> on_exited;
    fd_handler on_readable;
    /// A child that exited while traced by another process: out of the epoll set (its
    /// pidfd stays readable) and looked at again after this long, doubled each time.
    std::chrono::milliseconds parked{0};
  };

  pid_t owner_ = 0;  // the process this reaper belongs to
  unique_fd epoll_;
  std::mutex mutex_;  // guards entries_, next_id_, running_
  std::condition_variable idle_;
  std::unordered_map<std::uint64_t, entry> entries_;
  std::uint64_t next_id_ = 1;
  std::uint64_t running_ = 0;  // id whose handler runs now, 0 if none
  std::multimap<clock::time_point, std::pair<std::uint64_t, std::function<void()>>> timers_;
  std::thread::id thread_id_;
  unique_fd wakeup_;  // eventfd for post()
  std::vector<std::function<void()>> posted_;  // guarded by mutex_
};

}  // namespace pkit::detail
