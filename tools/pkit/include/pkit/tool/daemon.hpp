#pragma once

/// \file
/// The daemon of `pkit run`: runs a tree_config as a supervision tree in the foreground,
/// prints its events on stderr, answers control requests (control_handler), reloads the
/// file, stops in order on request and tells systemd (sd_notify) how it goes.

#include <pkit/tool/config.hpp>
#include <pkit/tool/control_handler.hpp>
#include <pkit/tool/event_printer.hpp>
#include <pkit/tool/guardian.hpp>
#include <pkit/tool/log_capture.hpp>

#include <pkit/actors/supervisor.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/fwd.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace pkit::tool {

namespace detail {
class line_writer;
class node_links;
}  // namespace detail

struct daemon_options {
  log_format format = log_format::human;
  bool colour = false;  ///< ANSI colours in human lines (main: only on a terminal)
  /// Stop in order after this long (`--for`); none: until a signal or `ctl shutdown`.
  std::optional<std::chrono::milliseconds> run_for;
  std::chrono::milliseconds start_timeout{120000};
  /// Where event lines go (stderr by default); tests may redirect.
  int event_fd = 2;
};

/// Exit codes of `pkit run`. exit_killed_at_stop: the tree was stopped as asked, but some
/// program outlived its stop_timeout and got SIGKILL — not a failure of the tree (the
/// example unit's RestartPreventExitStatus=3: a `ctl shutdown` is not undone by systemd).
enum daemon_exit : int { exit_clean = 0, exit_failed = 1, exit_usage = 2, exit_killed_at_stop = 3 };

/// Owns the actor system and the tree. Construct it, `start()` it, then `run()` it on the
/// main thread; the control server calls `handle`/`open_stream` from its own threads.
class daemon final : public control_handler {
public:
  /// `keeper` (may be null) is told the process group of every program started.
  daemon(tree_config tree, daemon_options options, guardian* keeper = nullptr);
  ~daemon() override;
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;

  /// Starts the tree and returns once every program is up (READY=1 is sent then), or
  /// returns why it could not start (the started ones are stopped again). Main thread.
  /// While it waits it reads `signal_fd` (as `run`, -1 for none): a first SIGTERM/SIGINT
  /// cancels the start (what started is stopped in order; the reason says "cancelled"),
  /// a second one forces it (every process killed, `forced` set: the caller should
  /// _exit). `pkit run` exits 1 either way, as for any start that failed. A SIGHUP is
  /// kept: the tree is reloaded once it is up (a cancelled or failed start drops it).
  std::optional<std::string> start(int signal_fd, bool& forced);
  /// start() without signals (tests).
  std::optional<std::string> start() {
    bool forced = false;
    return start(-1, forced);
  }

  /// Waits for the end: SIGTERM/SIGINT (read from `signal_fd`, a signalfd of them and
  /// SIGHUP; -1 for none) start an orderly stop, a second one forces it; SIGHUP reloads;
  /// `--for`, `ctl shutdown` and the root giving up end it too. Returns the exit code
  /// (daemon_exit); `forced` tells that the stop was forced (the caller should _exit).
  int run(int signal_fd, bool& forced);

  /// The status rows ({"programs":[...]}, see PROTOCOL.md), live. Any thread but CAF's.
  nlohmann::json status();
  /// The rows as recorded from events (what the final table shows once the tree is gone).
  nlohmann::json recorded_status() const;
  /// Re-reads the file and applies the difference; the reply says what was done.
  control_reply reload();
  /// Asks `run` to begin an orderly stop. Thread-safe.
  void request_shutdown() noexcept;
  /// Queues `line` for the event fd (a newline is added) behind the event lines; never
  /// blocks (a full queue drops it, counted). Any thread.
  void say(std::string line) noexcept;
  /// Waits at most `grace` for the queued event lines to reach stderr (before an _exit).
  /// Any thread.
  void flush_events(std::chrono::milliseconds grace) noexcept;

  control_reply handle(const std::string& command, const nlohmann::json& args) override;
  std::unique_ptr<control_stream> open_stream(const std::string& command, const nlohmann::json& args, sink to,
                                              control_reply& error) override;

  /// The tree as loaded (its settings: name, control_socket, ...). Main thread only: a
  /// reload replaces it.
  const tree_config& tree() const noexcept { return tree_; }
  caf::actor_system& system() noexcept { return *system_; }


private:
  struct row;
  class stream;
  friend class stream;
  class tail_stream;
  struct tail_sink;
  // Routes the "log" outputs of every program of `root` to their files (log capture).
  // Throws what log_capture::configure throws (a file that cannot be opened).
  void configure_outputs(const group_config& root);
  std::unique_ptr<control_stream> open_tail(const nlohmann::json& args, sink to, control_reply& error);
  // Ends (JSON null item) every tail whose program the tree no longer has or no longer
  // logs: after a remove or a reload, under control_.
  void end_gone_tails();

  void on_event(const actors::supervisor_event& e);
  // Records the manual restarts the supervisor counted for the program at `key`.
  void note_manual_restarts(const std::string& key, std::uint32_t count);
  void on_root_down(const std::string& reason);
  void on_stopped(bool ok, const std::string& why);
  void reload_loop();                   // the SIGHUP reloads' thread
  // Waits for `sup`'s initial start (ready, down, start_timeout) reading `signal_fd`.
  // Returns why it failed, or none once it is up.
  std::optional<std::string> await_start(caf::scoped_actor& waiter, const actors::supervisor_actor& sup, int signal_fd,
                                         bool& forced);
  // Says which programs of `tree` (those `which` picks; all without it) inherit a
  // controlling terminal as stdin: SIGTTIN ahead. At start, add and reload.
  void warn_of_terminal_stdin(const tree_config& tree, const std::function<bool(const program_ref&)>& which = {});
  void wake() noexcept;
  void begin_stop(const char* why);
  void force_stop();
  void watchdog_tick();
  bool on_signal(int signo);        // true: the stop is forced
  std::optional<int> outcome();     // the exit code once the end has come
  std::string group_of(const std::string& supervisor) const;
  // The rows below `sup` (group `path`), in the order of `spec` (the whole tree's).
  nlohmann::json walk(const actors::supervisor_actor& sup, const std::string& path, const actors::supervisor_spec& spec);
  // What status requests read instead of tree_ (which a reload replaces under control_,
  // while status runs without it): a copy made after each change of tree_.
  struct tree_snapshot {
    tree_config tree;
    actors::supervisor_spec spec;
  };
  void publish_tree();  // under control_ (or before any request can come)
  std::shared_ptr<const tree_snapshot> snapshot() const;
  // The `status` request: every program, or those `args.names` names (unknown_program
  // for a name the tree does not have).
  control_reply status_of(const nlohmann::json& args);
  actors::supervisor_actor supervisor_at(const std::vector<std::string>& path);
  control_reply apply(const tree_config& next, const reload_plan& plan);
  control_reply on_children(const std::string& command, const nlohmann::json& args);
  control_reply add(const nlohmann::json& args);

  tree_config tree_;          // replaced by reload/add/remove: only under control_
  const std::string root_name_;  // the root supervisor's name (events from it have group "")
  daemon_options options_;
  guardian* keeper_;
  std::unique_ptr<caf::actor_system_config> cfg_;
  // The links to the tree's nodes (null without [nodes]): their directory outlives every
  // supervisor (shut down before system_ ends), their TLS files' copies outlive system_.
  std::unique_ptr<detail::node_links> links_;
  std::unique_ptr<caf::actor_system> system_;
  std::optional<std::string> setup_error_;  // why the links to the nodes cannot be made
  // The programs' captured output (stdout/stderr = "log"): installed as the actor
  // system's output_capture before the first program starts, removed before the system
  // ends, drained (stop()) once every program is gone.
  std::shared_ptr<log_capture> capture_;
  caf::actor events_;
  actors::supervisor_actor root_;
  int wake_fd_ = -1;
  std::mutex control_;  // one control request at a time (reload, add, ... change the tree)
  std::mutex tails_mutex_;  // guards tails_
  std::vector<std::weak_ptr<tail_sink>> tails_;  // the open tails

  mutable std::mutex mutex_;  // guards everything below
  std::map<std::string, row> rows_;       // by "group/child"
  std::vector<std::string> row_order_;
  std::map<std::uint64_t, sink> sinks_;
  std::uint64_t next_sink_ = 0;
  std::set<pid_t> live_groups_;
  std::shared_ptr<const tree_snapshot> snapshot_;  // publish_tree()
  std::vector<std::string> killed_at_stop_;  // the shutdown had to SIGKILL these (stop_timeout)

  std::atomic<bool> started_{false};  // root_ is set (control requests may come earlier)
  bool reload_after_start_ = false;   // a SIGHUP came during the start (main thread only)
  std::atomic<bool> shutdown_requested_{false};
  std::atomic<bool> root_down_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> stop_ok_{false};
  std::string down_reason_;  // written before root_down_ is set
  std::atomic<bool> stopping_{false};
  // tree_'s, copied when tree_ changes (under control_): the main loop never reads tree_.
  std::atomic<std::int64_t> shutdown_timeout_ms_;
  std::shared_ptr<detail::line_writer> out_;  // the event lines' queue to options_.event_fd
  // SIGHUP reloads run on reload_thread_ (they take control_, which a long control
  // request can hold for minutes); the main loop only sets reload_pending_.
  std::mutex reload_mutex_;
  std::condition_variable reload_wake_;
  bool reload_pending_ = false;
  bool reload_quit_ = false;
  std::thread reload_thread_;
  std::chrono::milliseconds watchdog_period_{0};
  std::chrono::steady_clock::time_point next_watchdog_{};
  std::chrono::steady_clock::time_point stop_deadline_ = std::chrono::steady_clock::time_point::max();
};

}  // namespace pkit::tool
