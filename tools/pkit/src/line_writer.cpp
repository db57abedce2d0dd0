#include "line_writer.hpp"

#include <cerrno>
#include <thread>

#include <unistd.h>

namespace pkit::tool::detail {

std::shared_ptr<line_writer> line_writer::start(int fd, std::size_t max_bytes) {
  auto w = std::make_shared<line_writer>(fd, max_bytes);
  std::thread([w] { w->drain(); }).detach();
  return w;
}

void line_writer::write(std::string line) noexcept {
  try {
    line += '\n';
    std::lock_guard lock(mutex_);
    if (broken_ || closed_) return;
    if (queued_bytes_ + line.size() > max_bytes_) {
      ++dropped_;
      ++unreported_;
      return;
    }
    queued_bytes_ += line.size();
    queue_.push_back(std::move(line));
  } catch (...) {  // out of memory: the line is lost, as a full queue's
    return;
  }
  wake_.notify_one();
}

void line_writer::flush(std::chrono::milliseconds grace) noexcept {
  std::unique_lock lock(mutex_);
  idle_.wait_for(lock, grace, [this] { return broken_ || (queue_.empty() && !busy_); });
}

void line_writer::close() noexcept {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  wake_.notify_one();
}

std::size_t line_writer::dropped() const noexcept {
  std::lock_guard lock(mutex_);
  return dropped_;
}

// One write(2) per line, so that lines never mix with another writer's to the same fd.
bool line_writer::put(const std::string& text) const noexcept {
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) return false;
    if (n <= 0) return true;  // another error: this line is lost, the next may pass
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

void line_writer::drain() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return !queue_.empty() || unreported_ > 0 || closed_; });
    if (queue_.empty() && unreported_ == 0) return;  // closed
    std::deque<std::string> batch;
    batch.swap(queue_);
    queued_bytes_ = 0;
    std::size_t lost = unreported_;
    unreported_ = 0;
    busy_ = true;
    lock.unlock();
    bool ok = true;
    for (const auto& line : batch) ok = ok && put(line);
    if (ok && lost > 0)
      ok = put("pkit: " + std::to_string(lost) + " event lines dropped (stderr was not read fast enough)\n");
    lock.lock();
    busy_ = false;
    if (!ok) {
      broken_ = true;
      queue_.clear();
      queued_bytes_ = 0;
    }
    idle_.notify_all();
    if (broken_) return;
  }
}

}  // namespace pkit::tool::detail
