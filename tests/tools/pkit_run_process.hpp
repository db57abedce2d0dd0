#pragma once

// The real `pkit` binary run by a test: its stderr read line by line as it comes (event
// lines), its stdout collected in a file, its exit awaited with a deadline.

#include "line_pipe.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace pkit_test_tools {

/// The binary under test (compiled in).
std::string pkit_binary();

class pkit_process {
public:
  /// Where pkit runs: the test's process group, one of its own (pgid == pid, as a
  /// shell's job: a test may signal that group without signalling itself), or a session
  /// of its own (a terminal given as stdin then becomes its controlling terminal).
  enum class grouping { shared, own_group, own_session };
  /// Starts `pkit ARGS...` with `extra_env` ("NAME=value") added to the environment. A
  /// `stdin_path` is opened read-only as pkit's stdin (else it shares the test's).
  explicit pkit_process(const std::vector<std::string>& args, const std::vector<std::string>& extra_env = {},
                        grouping where = grouping::shared, const std::string& stdin_path = {});
  /// Kills (SIGKILL) and reaps pkit if still running.
  ~pkit_process();
  pkit_process(const pkit_process&) = delete;
  pkit_process& operator=(const pkit_process&) = delete;

  pid_t pid() const noexcept { return pid_; }

  /// The next JSON event line for which `match` holds (earlier ones are consumed), or
  /// nullopt when none came before `deadline` or stderr ended.
  std::optional<nlohmann::json> wait_event(const std::function<bool(const nlohmann::json&)>& match,
                                           std::chrono::milliseconds deadline = std::chrono::seconds(20));
  /// The next stderr line containing `text` (any line), or nullopt.
  std::optional<std::string> wait_line(const std::string& text,
                                       std::chrono::milliseconds deadline = std::chrono::seconds(20));
  /// Whether wait_exit reads pkit's stderr while it waits (kept for wait_event and
  /// stderr_text): a pkit that writes more than the pipe holds would otherwise block, in
  /// its last lines or in LeakSanitizer's report at exit. `leave` for a test of a stalled
  /// reader, whose premise reading would undo.
  enum class stderr_while_waiting { read, leave };
  /// The exit code (128+N for a signal), or nullopt if it did not exit by then.
  std::optional<int> wait_exit(std::chrono::milliseconds deadline = std::chrono::seconds(30),
                               stderr_while_waiting reading = stderr_while_waiting::read);
  /// Every stderr line read so far.
  const std::vector<std::string>& lines() const noexcept { return err_.lines(); }
  std::string stdout_text() const;
  std::string stderr_text() const;
  /// Closes the test's end of pkit's stderr pipe (a reader that went away: pkit's next
  /// write gets EPIPE/SIGPIPE). The wait_* then find nothing more.
  void close_stderr();
  /// True when a thread of pkit is asleep in write(2) on its stderr — the pipe is full,
  /// whatever its capacity and however the lines fell into its pages (/proc/PID/task/
  /// TID/syscall: a sleeping task's system call and arguments).
  bool stderr_writer_blocked() const;

private:
  pid_t pid_ = -1;
  line_pipe err_{-1};  // pkit's stderr
  int pidfd_ = -1;
  std::string out_path_;
  bool reaped_ = false;
  int code_ = -1;
};

/// An event matcher: program `name`, event kind `kind`, and (when > 0) run `run`.
std::function<bool(const nlohmann::json&)> is_event(const std::string& name, const std::string& kind, int run = 0);

/// True when `pid` no longer exists or is a zombie.
bool gone(pid_t pid);

/// Polls until every pid is gone; false at the deadline.
bool all_gone(const std::vector<pid_t>& pids, std::chrono::milliseconds deadline);

/// Polls /proc/PID/status until `pid` ignores `sig` (SigIgn); false at the deadline. A
/// program counts as ready once it exists, before it has set its handlers up.
bool wait_ignores(pid_t pid, int sig, std::chrono::milliseconds deadline = std::chrono::seconds(10));

/// As wait_ignores, for a signal `pid` catches (SigCgt).
bool wait_catches(pid_t pid, int sig, std::chrono::milliseconds deadline = std::chrono::seconds(10));

/// The pids whose process group is `pgid` (from /proc).
std::vector<pid_t> group_members(pid_t pgid);

}  // namespace pkit_test_tools
