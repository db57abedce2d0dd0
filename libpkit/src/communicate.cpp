#include <pkit/communicate.hpp>

#include <pkit/errc.hpp>
#include <pkit/process.hpp>

#include "detail/reaper.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <ctime>
#include <new>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

namespace pkit {

namespace {

// Most bytes moved by one read or write: the size of a default pipe buffer, so one call
// empties (or fills) a pipe without holding huge chunks of a stream in flight.
constexpr std::size_t chunk = 64 * 1024;

// Non-blocking ends: poll says a pipe is writable once *some* space is free, so a
// blocking write of a large chunk could still block — and with it the reading of the
// other two streams, which is the deadlock communicate exists to avoid.
std::error_code make_nonblocking(const unique_fd& fd) noexcept {
  if (!fd) return {};
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return {errno, std::system_category()};
  }
  return {};
}

// Blocks SIGPIPE in the calling thread while the input is written and takes back a
// SIGPIPE that a write generated (one to a pipe whose reader is gone is directed at the
// writing thread), so a child that exits without reading never kills the program. One
// that was pending before is left alone: it is not ours.
class sigpipe_guard {
public:
  explicit sigpipe_guard(bool active) noexcept : active_(active) {
    if (!active_) return;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    was_pending_ = ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;
  ~sigpipe_guard() {
    if (!active_) return;
    if (broken_ && !was_pending_) {
      const timespec zero{};
      while (::sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  /// A write failed with EPIPE: a SIGPIPE may be pending for this thread.
  void broken() noexcept { broken_ = true; }

private:
  bool active_;
  bool was_pending_ = false;
  bool broken_ = false;
  sigset_t pipe_{};
  sigset_t old_{};
};

// Milliseconds for poll until `deadline`, rounded up (rounding down would wake up early
// and spin on a zero timeout); -1 without a deadline.
int poll_timeout(std::optional<std::chrono::steady_clock::time_point> deadline) {
  if (!deadline) return -1;
  const auto left = *deadline - std::chrono::steady_clock::now();
  if (left <= left.zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, INT_MAX));
}

// A timeout this long is none: adding it to now() would overflow the clock's nanoseconds
// (milliseconds::max() is a natural way to say "no limit").
constexpr std::chrono::milliseconds forever = std::chrono::hours{24 * 365 * 100};

std::chrono::milliseconds time_left(std::chrono::steady_clock::time_point deadline) {
  const auto left = deadline - std::chrono::steady_clock::now();
  if (left <= left.zero()) return std::chrono::milliseconds{0};
  return std::chrono::ceil<std::chrono::milliseconds>(left);
}

}  // namespace

communicator::communicator(process& p, std::string input, std::optional<std::size_t> max_output)
    : process_(p),
      // Moved out once, here: from now on a restart of the process cannot close them
      // under this reader.
      in_(p.take_stdin_pipe()),
      out_(p.take_stdout_pipe()),
      err_(p.take_stderr_pipe()),
      input_(std::move(input)),
      max_output_(max_output) {
  if (!input_.empty() && !in_) {
    failed_ = errc::invalid_argument;
    return;
  }
  for (const unique_fd* fd : {&in_, &out_, &err_}) {
    if (auto ec = make_nonblocking(*fd)) {
      failed_ = ec;
      return;
    }
  }
}

communicator::~communicator() = default;

communicate_result communicator::partial() const { return {out_text_, err_text_, std::nullopt}; }

communicate_result communicator::communicate(std::optional<std::chrono::milliseconds> timeout) {
  std::error_code ec;
  communicate_result r = communicate(timeout, ec);
  if (ec) throw std::system_error(ec, "communicate");
  return r;
}

communicate_result communicator::communicate(std::optional<std::chrono::milliseconds> timeout,
                                             std::error_code& ec) noexcept {
  ec.clear();
  try {
    if (detail::reaper::called_on_reaper_thread()) {
      ec = errc::would_deadlock;
      return partial();
    }
    if (failed_) {
      ec = failed_;
      return partial();
    }
    std::optional<time_point> deadline;
    if (timeout && *timeout < forever) deadline = std::chrono::steady_clock::now() + *timeout;
    if (!pump(deadline, ec)) return partial();

    communicate_result r;
    if (deadline) {
      r.status = process_.join_status(time_left(*deadline));
      if (!r.status) {
        ec = std::make_error_code(std::errc::timed_out);
        return partial();
      }
    } else {
      r.status = process_.join_status();
    }
    r.out = std::move(out_text_);
    r.err = std::move(err_text_);
    out_text_.clear();
    err_text_.clear();
    return r;
  } catch (const std::system_error& e) {
    ec = e.code();
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  } catch (...) {
    ec = std::make_error_code(std::errc::io_error);
  }
  try {
    return partial();
  } catch (...) {
    return {};
  }
}

// Moves data until every pipe is closed (true), or until an error or the deadline
// (false, `ec` set).
bool communicator::pump(std::optional<time_point> deadline, std::error_code& ec) {
  sigpipe_guard guard{static_cast<bool>(in_)};
  for (;;) {
    if (in_ && written_ == input_.size()) {
      in_.reset();                 // all written (or none to write): the child sees EOF
      std::string{}.swap(input_);  // and the copy is no longer needed
    }
    std::array<pollfd, 3> fds{};
    std::array<unique_fd*, 3> owners{};
    nfds_t n = 0;
    for (unique_fd* fd : {&in_, &out_, &err_}) {
      if (*fd) {
        fds[n] = pollfd{fd->get(), static_cast<short>(fd == &in_ ? POLLOUT : POLLIN), 0};
        owners[n++] = fd;
      }
    }
    if (n == 0) return true;
    // Checked on every round, not only when poll times out: a child that writes without
    // pause would otherwise never let the deadline pass.
    if (deadline && std::chrono::steady_clock::now() >= *deadline) {
      ec = std::make_error_code(std::errc::timed_out);
      return false;
    }
    const int ready = ::poll(fds.data(), n, poll_timeout(deadline));
    if (ready < 0) {
      if (errno == EINTR) continue;
      ec = {errno, std::system_category()};
      return false;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      bool ok = true;
      if (owners[i] == &in_) {
        ok = write_input(ec);
        if (!in_) guard.broken();  // closed early only on EPIPE (see write_input)
      } else {
        ok = read_output(*owners[i], owners[i] == &out_ ? out_text_ : err_text_, ec);
      }
      if (!ok) return false;
    }
  }
}

// One non-blocking write of the input. EPIPE (the child closed stdin or exited) ends the
// input without an error, as Python's communicate ignores BrokenPipeError.
bool communicator::write_input(std::error_code& ec) {
  const std::size_t size = std::min(chunk, input_.size() - written_);
  const ssize_t n = ::write(in_.get(), input_.data() + written_, size);
  if (n >= 0) {
    written_ += static_cast<std::size_t>(n);
    return true;
  }
  if (errno == EINTR || errno == EAGAIN) return true;
  if (errno == EPIPE) {
    in_.reset();
    std::string{}.swap(input_);
    written_ = 0;
    return true;
  }
  ec = {errno, std::system_category()};
  return false;
}

// One non-blocking read into `text`; closes `fd` at end of file. With `max_output`, reads
// at most one byte beyond the limit, so an overflow is noticed without reading more.
bool communicator::read_output(unique_fd& fd, std::string& text, std::error_code& ec) {
  std::size_t size = chunk;
  if (max_output_) {
    const std::size_t room = *max_output_ - std::min(*max_output_, text.size());
    if (room < chunk) size = room + 1;  // (room + 1 itself could wrap to a 0-byte read)
  }
  const std::size_t old = text.size();
  text.resize(old + size);
  const ssize_t n = ::read(fd.get(), text.data() + old, size);
  text.resize(old + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  if (n > 0) {
    if (max_output_ && text.size() > *max_output_) {
      text.resize(*max_output_);
      failed_ = ec = std::make_error_code(std::errc::no_buffer_space);
      return false;
    }
    return true;
  }
  if (n == 0) {
    fd.reset();
    return true;
  }
  if (errno == EINTR || errno == EAGAIN) return true;
  ec = {errno, std::system_category()};
  return false;
}

communicate_result communicate(process& p, communicate_options options) {
  std::error_code ec;
  communicate_result r = communicate(p, std::move(options), ec);
  if (ec) throw std::system_error(ec, "communicate");
  return r;
}

communicate_result communicate(process& p, communicate_options options,
                               std::error_code& ec) noexcept {
  try {
    // Checked before the pipe ends are taken, so that they stay with the process.
    if (detail::reaper::called_on_reaper_thread()) {
      ec = errc::would_deadlock;
      return {};
    }
    communicator c{p, std::move(options.input), options.max_output};
    return c.communicate(options.timeout, ec);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return {};
  }
}

}  // namespace pkit
