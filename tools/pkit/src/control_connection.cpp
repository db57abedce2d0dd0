#include "control_connection.hpp"

#include <cerrno>

#include <sys/socket.h>

namespace pkit::tool::detail {

void connection::enqueue_locked(std::string line, std::size_t limit) {
  out_bytes += line.size();
  out.push_back(std::move(line));
  if (out_bytes > limit) overflow = true;
}

bool connection::queue_stream_line(std::string line, bool is_end, std::size_t limit) {
  std::lock_guard lock(m);
  if (gone || overflow || close_after_flush) return false;
  if (phase == stream_phase::opening) {
    pending_bytes += line.size();
    pending.push_back(std::move(line));
    if (pending_bytes > limit) overflow = true;
  } else {
    enqueue_locked(std::move(line), limit);
  }
  if (is_end) close_after_flush = true;
  return !overflow && !is_end;
}

bool connection::flush_locked() {
  while (!out.empty()) {
    const std::string& front = out.front();
    const auto n = ::send(fd.get(), front.data() + out_offset, front.size() - out_offset, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    out_offset += static_cast<std::size_t>(n);
    out_bytes -= static_cast<std::size_t>(n);
    if (out_offset == front.size()) {
      out.pop_front();
      out_offset = 0;
    }
  }
  return true;
}

}  // namespace pkit::tool::detail
