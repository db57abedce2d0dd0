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

  /// Queues one item line, or the end line (`is_end`); once an end is queued nothing more
  /// is. Over the bound, what is queued is dropped for `overrun_line` (an end line).
  /// Returns whether the stream should go on. Any thread; never blocks for long.
  bool push(std::string line, bool is_end, const std::string& overrun_line);

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
};

}  // namespace pkit::tool::detail
