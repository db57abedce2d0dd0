#pragma once

// Clients of a real `pkit run`'s control socket for the end-to-end tests: the real
// `pkit ctl` binary run to completion or followed line by line (a stream), and a raw
// socket client speaking the protocol's JSON lines itself.

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace pkit_test_tools {

/// What one finished `pkit ctl` run gave.
struct ctl_result {
  int code = -1;  ///< exit code (128+N for a signal), -1 if it did not end in time
  std::string out;
  std::string err;
  /// `out` parsed as JSON (discarded when it is not).
  nlohmann::json json() const { return nlohmann::json::parse(out, nullptr, false); }
};

/// Runs `pkit ctl --socket SOCKET ARGS...` to its end (killed at `deadline`).
ctl_result run_ctl(const std::string& socket, const std::vector<std::string>& args,
                   std::chrono::milliseconds deadline = std::chrono::seconds(20));

/// A long-running `pkit ctl --socket SOCKET ARGS...` (events, tail) whose stdout is read
/// line by line as it comes. The destructor kills (SIGKILL) and reaps it.
class ctl_stream {
public:
  ctl_stream(const std::string& socket, const std::vector<std::string>& args);
  /// `pkit ctl ARGS...` as given (e.g. --host and its TLS flags).
  explicit ctl_stream(const std::vector<std::string>& ctl_args);
  ~ctl_stream();
  ctl_stream(const ctl_stream&) = delete;
  ctl_stream& operator=(const ctl_stream&) = delete;

  pid_t pid() const noexcept { return pid_; }
  /// The next stdout line, or nullopt at the deadline or at EOF.
  std::optional<std::string> next_line(std::chrono::milliseconds deadline = std::chrono::seconds(20));
  /// Sends `sig` and returns the exit code (128+N for a signal), -1 if it did not end.
  int stop(int sig, std::chrono::milliseconds deadline = std::chrono::seconds(10));

private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  bool reaped_ = false;
  int code_ = -1;
};

/// A raw connection to a control socket (the caller's credentials). Throws
/// std::system_error when it cannot connect.
class raw_client {
public:
  explicit raw_client(const std::string& socket);
  ~raw_client();
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  int fd() const noexcept { return fd_; }
  /// Writes all of `data`; false when the peer closed or reset.
  bool send(const std::string& data);
  /// The next reply line parsed, or nullopt at the deadline, EOF or an error.
  std::optional<nlohmann::json> read_reply(std::chrono::milliseconds deadline = std::chrono::seconds(10));

private:
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace pkit_test_tools
