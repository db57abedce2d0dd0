#include "remote_stream_queue.hpp"

namespace pkit::tool::detail {

remote_stream_queue::pushed remote_stream_queue::push(std::string line, bool is_end, const std::string& overrun_line) {
  std::lock_guard lock(m_);
  if (ended_) return {false, false};
  if (bytes_ + line.size() > max_bytes_) {
    // The socket disconnects such a client; here the stream ends, saying why.
    lines_.clear();
    lines_.push_back(overrun_line);
    bytes_ = overrun_line.size();
    ended_ = true;
    waiting_ = false;
    return {false, true};
  }
  bytes_ += line.size();
  lines_.push_back(std::move(line));
  ended_ = is_end;
  const bool wake = waiting_ || is_end;
  waiting_ = false;
  return {!is_end, wake};
}

void remote_stream_queue::await_lines() {
  std::lock_guard lock(m_);
  waiting_ = true;
}

bool remote_stream_queue::ended() {
  std::lock_guard lock(m_);
  return ended_;
}

std::vector<std::string> remote_stream_queue::take(std::size_t max_bytes) {
  std::lock_guard lock(m_);
  std::vector<std::string> out;
  std::size_t taken = 0;
  while (!lines_.empty() && (out.empty() || taken + lines_.front().size() <= max_bytes)) {
    taken += lines_.front().size();
    bytes_ -= lines_.front().size();
    out.push_back(std::move(lines_.front()));
    lines_.pop_front();
  }
  return out;
}

bool remote_stream_queue::ready() {
  std::lock_guard lock(m_);
  return !lines_.empty();
}

bool remote_stream_queue::finished() {
  std::lock_guard lock(m_);
  return ended_ && lines_.empty();
}

}  // namespace pkit::tool::detail
