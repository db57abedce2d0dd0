#pragma once

// pkit run's event lines on stderr, written by a thread of their own: whoever reports an
// event (the main loop, the event actor, a control worker) only queues the line, so a
// stderr that nobody reads (a stopped terminal, a full pipe) never holds pkit run up.

#include <condition_variable>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace pkit::tool::detail {

/// A bounded queue of lines drained to one fd by a detached thread.
///
/// Ownership: `start` returns a shared handle; the thread holds one too, so the writer
/// lives as long as its thread even when the handle is gone (the thread may be stuck in
/// write(2) on a pipe nobody reads: it is detached, never joined, and ends with the
/// process). Threads: every member is safe from any thread. Errors: a full queue drops
/// the line and counts it (a line "pkit: N event lines dropped" comes once there is room
/// again); once the fd reports EPIPE (the reader is gone) nothing more is written.
class line_writer {
public:
  /// Starts the thread writing to `fd` (not owned: stderr). At most `max_bytes` of lines
  /// wait. Throws std::system_error if the thread cannot start.
  static std::shared_ptr<line_writer> start(int fd, std::size_t max_bytes = std::size_t{1} << 20);

  /// Queues `line` (a newline is added); never blocks on the fd.
  void write(std::string line) noexcept;

  /// Waits at most `grace` for the queued lines to be written (none: at once).
  void flush(std::chrono::milliseconds grace) noexcept;

  /// Lets the thread end once the queue is empty; later lines are dropped silently.
  void close() noexcept;

  /// Lines dropped so far (a full queue).
  std::size_t dropped() const noexcept;

  line_writer(int fd, std::size_t max_bytes) : fd_(fd), max_bytes_(max_bytes) {}

private:
  void drain();
  bool put(const std::string& text) const noexcept;  // false: EPIPE, stop writing

  const int fd_;
  const std::size_t max_bytes_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t dropped_ = 0;         // in total
  std::size_t unreported_ = 0;      // dropped since the last "dropped" line
  bool busy_ = false;               // the thread is writing lines it took off the queue
  bool broken_ = false;             // EPIPE: the reader is gone
  bool closed_ = false;
};

}  // namespace pkit::tool::detail
