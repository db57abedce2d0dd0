#pragma once

// The lines of one remote stream session (remote_control_server.cpp): filled by the
// stream's sink on the daemon's threads, emptied by the endpoint's actor when its client
// polls. Bounded: a client that does not keep up loses its stream, never pkit run's memory.

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace pkit::tool::detail {

class remote_stream_queue {
public:
  explicit remote_stream_queue(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  struct pushed {
    bool go_on = false;  ///< the stream should go on (no end queued)
    bool wake = false;   ///< a poll waits (or the stream just ended): tell the endpoint
  };

  /// Queues one item line, or the end line (`is_end`); once an end is queued nothing more
  /// is. Over the bound, what is queued is dropped for `overrun_line` (an end line).
  /// Any thread; never blocks for long.
  pushed push(std::string line, bool is_end, const std::string& overrun_line);

  /// A poll now waits for lines: the next push asks for a wake-up (one per wait, so that a
  /// busy stream does not send a message per line). Any thread.
  void await_lines();

  /// Whether the end line is queued (it may not have been taken yet).
  bool ended();

  /// Takes queued lines, at most about `max_bytes` of them (at least one). Any thread.
  std::vector<std::string> take(std::size_t max_bytes);

  /// Whether lines are queued. Any thread.
  bool ready();

  /// Whether the end line was queued and has been taken: the session is over.
  bool finished();

private:
  std::mutex m_;
  std::deque<std::string> lines_;
  std::size_t bytes_ = 0;
  std::size_t max_bytes_;
  bool ended_ = false;
  bool waiting_ = false;
};

}  // namespace pkit::tool::detail
