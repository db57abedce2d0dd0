#pragma once

// The parent's side of a fork server, and the server's own loop (see fork_server.hpp).

#include "detail/child_setup.hpp"

#include <pkit/exit_status.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/unique_fd.hpp>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace pkit::detail {

struct server_spawn_request {
  const std::string* name = nullptr;
  const std::vector<std::string>* args = nullptr;
  int stdio[3] = {-1, -1, -1};                            // borrowed; -1 inherit the server's
  const std::vector<std::pair<int, int>>* pass = nullptr;  // {child fd, borrowed source}
  bool want_ready = false;
  bool new_process_group = true;
  bool die_with_parent = true;
};

struct server_spawn_result {
  std::uint64_t id = 0;
  pid_t pid = -1;
  unique_fd pidfd;  // not our child: for signals and for noticing its death
  unique_fd ready;  // the child's status pipe, when want_ready
  std::error_code error;
  const char* stage = "";
};

class fork_server_core : public std::enable_shared_from_this<fork_server_core> {
public:
  using exit_handler = std::function<void(exit_status)>;

  /// Forks the server process and connects to it.
  static std::shared_ptr<fork_server_core> launch(fork_server::registry targets);

  ~fork_server_core();

  const fork_server::registry& targets() const noexcept { return targets_; }
  pid_t pid() const noexcept;
  bool running() const noexcept;

  /// Asks the server to fork `req`; synchronous (one request at a time).
  server_spawn_result spawn(const server_spawn_request& req);
  /// Delivers the child's exit (relayed by the server) to `handler` on the reaper
  /// thread; an exit that arrived before this call is delivered at once. `pidfd` is
  /// borrowed (valid until the handler ran or `unwatch` returned): if the server dies,
  /// the child's end is noticed through it and reported as killed by SIGKILL (what its
  /// PDEATHSIG does).
  void watch(std::uint64_t id, int pidfd, exit_handler handler);
  bool unwatch(std::uint64_t id);
  /// Closes the control socket; the server kills its children, reports their exits
  /// and exits; waits for all of that unless on the reaper thread.
  void shutdown() noexcept;


private:
  struct pending {
    int pidfd = -1;
    exit_handler handler;
    std::uint64_t fallback_watch = 0;  // reaper watch on pidfd once the server is gone
  };

  explicit fork_server_core(fork_server::registry targets) : targets_(std::move(targets)) {}
  bool on_events();          // reaper thread: the event socket is readable
  void on_server_gone();     // reaper thread: event socket EOF
  void on_server_exit();     // reaper thread: the server process was reaped
  std::uint64_t arm_fallback(std::uint64_t id, int pidfd);  // with mutex_ held

  fork_server::registry targets_;
  unique_fd control_;   // requests and replies (parent side)
  unique_fd events_;    // exit events (parent side)
  unique_fd server_pidfd_;
  pid_t server_pid_ = -1;

  std::mutex request_mutex_;  // one request at a time on control_
  std::uint64_t next_id_ = 1;

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  std::map<std::uint64_t, pending> watches_;
  std::map<std::uint64_t, exit_status> early_;  // exits that came before their watch
  bool events_open_ = false;
  bool server_alive_ = false;
  bool shutting_down_ = false;
  std::uint64_t events_watch_ = 0;
  std::uint64_t exit_watch_ = 0;
};

/// The server's main loop; runs in the forked server process and never returns.
[[noreturn]] void fork_server_main(const fork_server::registry& targets, int control, int events);

}  // namespace pkit::detail
