#pragma once

// The real `pkit node` run by a test: its stdin a pipe the test holds open (as an
// operator's terminal would be: something a child must not read), its stdout and stderr
// read line by line as they come (pipes, polled with a deadline: the tests synchronise on lines, never on sleeps),
// its exit awaited through a pidfd.

#include "line_pipe.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace pkit_test_tools {


class pkit_node_process {
public:
  /// Starts `pkit node ARGS...`; with a `wrapper` (a command that execs its arguments,
  /// looked up in PATH: `prlimit --as=N`, `ip netns exec NS`), `WRAPPER... pkit node
  /// ARGS...`, whose pid stays the node's.
  explicit pkit_node_process(const std::vector<std::string>& args, const std::vector<std::string>& wrapper = {});
  /// Kills (SIGKILL) and reaps it if still running.
  ~pkit_node_process();
  pkit_node_process(const pkit_node_process&) = delete;
  pkit_node_process& operator=(const pkit_node_process&) = delete;

  pid_t pid() const noexcept { return pid_; }

  /// The port of the "listening on HOST:PORT" line on stdout, or nullopt (no such line
  /// within the deadline, or the node exited first).
  std::optional<std::uint16_t> wait_listening(std::chrono::milliseconds deadline = std::chrono::seconds(20));
  /// The next stdout line containing `text` (after the listening line), or nullopt.
  std::optional<std::string> wait_stdout(const std::string& text,
                                         std::chrono::milliseconds deadline = std::chrono::seconds(20));
  /// The next stderr line containing `text`, or nullopt.
  std::optional<std::string> wait_stderr(const std::string& text,
                                         std::chrono::milliseconds deadline = std::chrono::seconds(20));
  /// The exit code (128+N for a signal), or nullopt if it did not exit by then; its
  /// stdout and stderr are read meanwhile (kept for wait_stdout/wait_stderr).
  std::optional<int> wait_exit(std::chrono::milliseconds deadline = std::chrono::seconds(30));

  std::string stdout_text() { return out_.text(); }
  std::string stderr_text() { return err_.text(); }

private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stdin_writer_ = -1;  // the write end of the node's stdin, open for its life
  line_pipe out_{-1};
  line_pipe err_{-1};
  bool reaped_ = false;
  int code_ = -1;
};

/// Waits (pidfd, no polling) until `pid` has ended; true if it did within `deadline`.
bool wait_pid_gone(pid_t pid, std::chrono::milliseconds deadline = std::chrono::seconds(20));

}  // namespace pkit_test_tools
