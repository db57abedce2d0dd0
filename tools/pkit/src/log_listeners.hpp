#pragma once

// The listeners of log_capture (`pkit ctl tail`) and the per-program history they can
// start from. Shared by the capture and every listener handle, so that a handle may
// outlive its capture.

#include <pkit/tool/log_capture.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pkit::tool::detail {

class log_listeners {
public:
  explicit log_listeners(std::size_t history_bytes) : history_bytes_(history_bytes) {}

  /// Registers `fn` for `name`'s lines; first hands `history` (if set) the kept lines,
  /// under the same lock, so no live line comes before or among them.
  std::uint64_t add(const std::string& name, log_capture::listener fn, const log_capture::history_handler& history);
  /// Once this returns, the listener is not running and never runs again. Not from the
  /// listener itself (it holds the lock this takes).
  void remove(std::uint64_t id) noexcept;
  /// The reader thread: one line of `name`, to its history and its listeners.
  void deliver(const std::string& name, int stream, std::uint64_t run, std::string_view text, bool continued);

private:
  struct program {
    std::map<std::uint64_t, log_capture::listener> listeners;
    std::deque<captured_line> history;
    std::size_t history_size = 0;  // bytes of `history`: each line's text and record
  };
  std::mutex m_;  // held while listeners run: removal waits for a running call
  const std::size_t history_bytes_;
  std::unordered_map<std::string, program> programs_;
  std::unordered_map<std::uint64_t, std::string> name_of_;
  std::uint64_t next_id_ = 1;
};

}  // namespace pkit::tool::detail
