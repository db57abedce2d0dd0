#pragma once

// The lines of a pipe from a program under test (pkit run's stderr, pkit node's stdout and
// stderr), read as they come: polled with a deadline, so that tests synchronise on lines,
// never on sleeps. Header-only: shared by pkit_run_process and pkit_node_process.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <poll.h>
#include <unistd.h>

namespace pkit_test_tools {

class line_pipe {
public:
  explicit line_pipe(int fd) : fd_(fd) {}
  ~line_pipe() { close(); }
  line_pipe(const line_pipe&) = delete;
  line_pipe& operator=(const line_pipe&) = delete;
  /// Reads `fd` from now on (owned; closed at the end).
  void reset(int fd) { fd_ = fd; }

  /// The next line not handed out yet, waiting for it until `until`; false when none came
  /// by then or the pipe ended (a last line without its newline counts).
  bool next_line(std::string& line, std::chrono::steady_clock::time_point until) {
    using namespace std::chrono;
    if (consumed_ < lines_.size()) {
      line = lines_[consumed_++];
      return true;
    }
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        lines_.push_back(buffer_.substr(0, nl));
        buffer_.erase(0, nl + 1);
        line = lines_[consumed_++];
        return true;
      }
      auto left = duration_cast<milliseconds>(until - steady_clock::now()).count();
      if (left <= 0 || fd_ < 0) return false;
      pollfd p{fd_, POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      if (!read_some() && fd_ < 0 && buffer_.empty()) return false;
    }
  }

  /// One read(2) of what the pipe holds (call when it polled readable), kept for
  /// next_line; at EOF the pipe is closed and a last partial line terminated. False when
  /// nothing was read (EOF, EINTR, an error).
  bool read_some() {
    if (fd_ < 0) return false;
    char buf[4096];
    ssize_t got = ::read(fd_, buf, sizeof buf);
    if (got < 0 && errno == EINTR) return false;
    if (got <= 0) {
      close();
      if (!buffer_.empty() && buffer_.back() != '\n') buffer_ += '\n';
      return false;
    }
    buffer_.append(buf, static_cast<std::size_t>(got));
    return true;
  }

  int fd() const noexcept { return fd_; }

  /// The next line containing `text` (earlier lines are consumed), or nullopt when none
  /// came before `until` or the pipe ended.
  std::optional<std::string> wait_for(const std::string& text, std::chrono::steady_clock::time_point until) {
    std::string line;
    while (next_line(line, until))
      if (line.find(text) != std::string::npos) return line;
    return std::nullopt;
  }

  /// Reads what the pipe still holds (a writer that is gone leaves EOF; a live one gets
  /// `grace`) without consuming it for next_line.
  void drain(std::chrono::milliseconds grace = std::chrono::milliseconds(200)) {
    auto keep = consumed_;
    std::string line;
    while (next_line(line, std::chrono::steady_clock::now() + grace)) {
    }
    consumed_ = keep;
  }

  /// Every line read so far, and a last partial one.
  std::string text_so_far() const {
    std::string out;
    for (const auto& l : lines_) out += l + "\n";
    return out + buffer_;
  }
  /// drain(), then text_so_far().
  std::string text() {
    drain();
    return text_so_far();
  }

  const std::vector<std::string>& lines() const noexcept { return lines_; }
  /// Closes the reading end (a reader that went away).
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_;
  std::string buffer_;
  std::vector<std::string> lines_;
  std::size_t consumed_ = 0;
};

/// Waits until `pidfd` reports its process's exit, at most `deadline`, reading `pipes`
/// meanwhile (kept for their next_line): a program that writes more than a pipe holds
/// while it ends (600 programs' stop events; LeakSanitizer's report at exit) must not
/// block on a test that waits for its exit. True once it exited.
inline bool await_exit_reading(int pidfd, std::chrono::milliseconds deadline, std::vector<line_pipe*> pipes) {
  using namespace std::chrono;
  const auto until = steady_clock::now() + deadline;
  for (;;) {
    std::vector<pollfd> fds{{pidfd, POLLIN, 0}};
    for (auto* p : pipes)
      if (p->fd() >= 0) fds.push_back({p->fd(), POLLIN, 0});
    const auto left = std::max<long long>(0, ceil<milliseconds>(until - steady_clock::now()).count());
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left, 1 << 30)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (fds[0].revents & POLLIN) return true;
    for (std::size_t i = 1; i < fds.size(); ++i)
      if (fds[i].revents != 0)
        for (auto* p : pipes)
          if (p->fd() == fds[i].fd) p->read_some();
    if (n == 0 || steady_clock::now() >= until) return false;
  }
}

}  // namespace pkit_test_tools
