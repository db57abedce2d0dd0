#pragma once

// The parent's side of a fork server, and the server's own loop (see fork_server.hpp).

#include "detail/child_setup.hpp"

#include <pkit/exit_status.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/unique_fd.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <chrono>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <unistd.h>

namespace pkit::detail {

struct server_spawn_request {
  const std::string* name = nullptr;
  const std::vector<std::string>* args = nullptr;
  int stdio[3] = {-1, -1, -1};                            // borrowed; -1 inherit the server's
  const std::vector<std::pair<int, int>>* pass = nullptr;  // {child fd, borrowed source}
  bool want_ready = false;
  bool new_process_group = true;
  bool die_with_parent = true;
  /// When the child leads its group: once it has exited, the server SIGKILLs the group
  /// before it reaps the leader (so never a recycled group id). Default off.
  bool kill_group_at_exit = false;
};

struct server_spawn_result {
  std::uint64_t id = 0;
  pid_t pid = -1;  // also set when the server made the child but had to kill it (error)
  unique_fd pidfd;  // not our child: for signals and for noticing its death
  unique_fd ready;  // the child's status pipe, when want_ready
  std::error_code error;
  const char* stage = "";
};

/// Test hooks: faults a server applies to its first spawn reply or at its shutdown, and
/// the parent to its first spawn request. Production code never sets them.
struct fork_server_faults {
  enum class reply_fault {
    none,
    wrong_id,   // the reply names another request
    garbage,    // an unknown reply kind
    oversized,  // the reply is longer than a reply
    no_fds,     // an ok reply without the child's pidfd
    fail_send,  // the reply cannot be sent (as if sendmsg failed with EIO)
  };
  reply_fault reply = reply_fault::none;
  bool huge_name_len = false;  // the request claims a 4 GiB target name
  bool spare_first_at_shutdown = false;  // the server's shutdown does not kill its first child
  /// The parent's watch of the new server fails as if out of descriptors (EMFILE): its
  /// pidfd, the watch of its events socket, or the watch of its exit — what a descriptor
  /// limit does, in builds whose sanitizer runtime cannot live at that limit.
  enum class watch_fault { none, pidfd, events, exit };
  watch_fault watch = watch_fault::none;
  pid_t* server_pid = nullptr;  // where launch() notes the server's pid, once forked
  /// How long the server's shutdown waits for its children to die, all together.
  std::chrono::milliseconds shutdown_wait{4000};
  /// How long the server sleeps after each fork before its own bookkeeping: the child
  /// runs first, as it may on a loaded machine.
  std::chrono::milliseconds after_fork{0};
};

class fork_server_core : public std::enable_shared_from_this<fork_server_core> {
public:
  using exit_handler = std::function<void(exit_status)>;

  /// Forks the server process and connects to it.
  static std::shared_ptr<fork_server_core> launch(fork_server::registry targets,
                                                  const fork_server::options& options = {},
                                                  const fork_server_faults& faults = {});

  ~fork_server_core();

  const fork_server::registry& targets() const noexcept { return targets_; }
  pid_t pid() const noexcept;
  bool running() const noexcept;

  /// Asks the server to fork `req`; synchronous (one request at a time), bounded by the
  /// server's request timeout (errc::fork_server_timeout). A reply that is malformed or
  /// names another request is errc::fork_server_protocol. Whenever the server may have
  /// made a child that this call does not return, the server is told to kill and reap
  /// it: nothing started is left unsupervised. A successful result must be `watch`ed.
  server_spawn_result spawn(const server_spawn_request& req);
  /// Asks the server to signal the process group led by child `id` (the child alone if it
  /// leads none; the leader through its pidfd too if it has left its group) — done by the
  /// server, and only while it has not reaped the leader, so the signal can never reach a
  /// recycled group id. `and_at_exit`: also SIGKILL the group once the leader has exited,
  /// before it is reaped. One-way: the record is queued without waiting (callers hold a
  /// process's lock, or are the reaper thread) and carried out in order with the other
  /// requests; a leader already reaped is skipped (its exit is on its way). A record the
  /// control socket cannot take now (a server busy with many, or stopped) waits here, in
  /// order, and is sent by the reaper thread once the socket can take it: while the
  /// server lives, a group signal is never cut down to the leader. Returns an empty code
  /// once sent or queued; fork_server_unavailable when the server is gone or shutting
  /// down; not_owner in a forked copy; EINVAL for a bad signal number; ENOBUFS when
  /// `max_unsent_signals` records already wait (a server stopped for long); ENOMEM when
  /// there is no memory to queue it or no way to send it later.
  /// Any thread; never blocks.
  std::error_code signal_group(std::uint64_t id, int signo, bool and_at_exit = false) noexcept;
  /// How many group signals may wait for a full control socket.
  static constexpr std::size_t max_unsent_signals = 65536;
  /// Delivers the child's exit (relayed by the server) to `handler` on the reaper
  /// thread; an exit that arrived before this call is delivered at once. `pidfd` is
  /// borrowed (valid until the handler ran or `unwatch` returned): if the server dies,
  /// the child's end is noticed through it and reported as killed by SIGKILL (what its
  /// PDEATHSIG does).
  void watch(std::uint64_t id, int pidfd, exit_handler handler);
  /// Stops watching `id`; its exit, when relayed, is dropped. False if not watched.
  bool unwatch(std::uint64_t id);
  /// Closes the control socket; the server kills its children, reports their exits
  /// and exits; waits for all of that unless on the reaper thread.
  void shutdown() noexcept;

  /// For tests: the ids the parent still keeps any state for (watched, awaiting their
  /// watch, early exits).
  std::size_t tracked_ids() const;
  /// For tests: how many group signals wait for the control socket now.
  std::size_t unsent_signals() const;

private:
  struct unsent_signal {
    std::uint64_t child;
    int signo;
    bool and_at_exit;
  };
  struct pending {
    int pidfd = -1;
    exit_handler handler;
    std::uint64_t fallback_watch = 0;  // reaper watch on pidfd once the server is gone
  };

  explicit fork_server_core(fork_server::registry targets) : targets_(std::move(targets)) {}
  // With request_mutex_ held: tell the server to discard child `id` (best effort now,
  // else before the next request).
  void abandon(std::uint64_t id);
  std::error_code flush_abandoned(const std::chrono::steady_clock::time_point& deadline);
  // With request_mutex_ held: sends a request and takes its reply (skipping late replies
  // to requests given up on). On error the connection stays usable.
  std::error_code round_trip(std::uint64_t id, const std::string& data, const int* fds,
                             std::size_t nfds, bool want_fds, void* reply_out,
                             std::vector<unique_fd>& fds_out);
  bool on_events();          // reaper thread: the event socket is readable
  void on_server_gone();     // reaper thread: event socket EOF
  void on_server_exit();     // reaper thread: the server process was reaped
  std::uint64_t arm_fallback(std::uint64_t id, int pidfd);  // with mutex_ held
  // With mutex_ held: sends one group-signal record without waiting (0, else the errno;
  // ETIMEDOUT when the socket is full).
  int send_signal_record(const unsent_signal& u);
  // With mutex_ held: flush_signals once control_ is writable (else, or when no watch can
  // be made, after a short delay). False when not even a timer could be had.
  bool arm_flush(bool when_writable) noexcept;
  void flush_signals();  // reaper thread: sends unsent_signals_ while the socket takes them

  fork_server::registry targets_;
  unique_fd control_;   // requests and replies (parent side); reset with both mutexes held
  unique_fd events_;    // exit events (parent side)
  unique_fd server_pidfd_;
  pid_t server_pid_ = -1;
  /// The process that launched the server. A forked copy of the program has this object
  /// too, but the server is not its: there requests fail with not_owner and shutdown does
  /// nothing (it would SIGKILL the original's server and wait for ever).
  const pid_t owner_pid_ = ::getpid();

  std::mutex request_mutex_;  // one request at a time on control_; guards the next three
  std::uint64_t next_id_ = 1;
  std::vector<std::uint64_t> unsent_abandons_;
  fork_server_faults faults_;  // of the requests: huge_name_len (`watch` is launch()'s alone)
  std::chrono::milliseconds request_timeout_{};

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  std::map<std::uint64_t, pending> watches_;
  std::set<std::uint64_t> unwatched_;           // spawned, not yet watched
  std::map<std::uint64_t, exit_status> early_;  // exits that came before their watch
  bool events_open_ = false;
  bool server_alive_ = false;
  bool shutting_down_ = false;
  std::uint64_t events_watch_ = 0;
  std::uint64_t exit_watch_ = 0;
  /// Group signals the control socket could not take, oldest first. While any wait, new
  /// ones queue behind them: the server gets them in the order they were asked for.
  std::deque<unsent_signal> unsent_signals_;
  std::uint64_t flush_watch_ = 0;  // the reaper's writable watch on control_, 0 if none
  std::uint64_t flush_timer_ = 0;  // a retry after a transient error, or when no watch could be made
};

/// The server's main loop; runs in the forked server process and never returns.
[[noreturn]] void fork_server_main(const fork_server::registry& targets, int control, int events,
                                   const fork_server_faults& faults);

}  // namespace pkit::detail
