#include "detail/fork_server_wire.hpp"

#include <pkit/errc.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>

namespace pkit::detail::wire {
namespace {

// Waits until `fd` is ready for `events` or the deadline passes (false, errno ETIMEDOUT).
bool wait_ready(int fd, short events, const clock::time_point* deadline) {
  if (deadline == nullptr) return true;
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let the call itself report the error
    if (r == 0) {
      errno = ETIMEDOUT;
      return false;
    }
  }
}

}  // namespace

void append(std::string& out, const void* p, std::size_t n) {
  out.append(static_cast<const char*>(p), n);
}

int send_record(int sock, std::string_view data, const int* fds, std::size_t nfds,
                const clock::time_point* deadline) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (nfds > 0) {
    control.resize(CMSG_SPACE(sizeof(int) * nfds));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  const int flags = MSG_NOSIGNAL | (deadline != nullptr ? MSG_DONTWAIT : 0);
  for (;;) {
    ssize_t r = ::sendmsg(sock, &msg, flags);
    if (r == static_cast<ssize_t>(data.size())) return 0;
    if (r >= 0) return EMSGSIZE;  // a SEQPACKET record is never sent in part
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && deadline != nullptr) {
      if (!wait_ready(sock, POLLOUT, deadline)) return ETIMEDOUT;
      continue;
    }
    return errno;
  }
}

received receive_record(int sock, std::vector<char>& buf, const clock::time_point* deadline) {
  received out;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * max_fds));
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  const int flags = MSG_CMSG_CLOEXEC | (deadline != nullptr ? MSG_DONTWAIT : 0);
  ssize_t r;
  for (;;) {
    r = ::recvmsg(sock, &msg, flags);
    if (r >= 0) break;
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && deadline != nullptr) {
      if (!wait_ready(sock, POLLIN, deadline)) {
        out.size = -1;
        out.error = ETIMEDOUT;
        return out;
      }
      continue;
    }
    out.size = -1;
    out.error = errno;
    return out;
  }
  // Take ownership of every descriptor that arrived before looking at anything else, so
  // a record that is rejected leaks none.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      out.fds.emplace_back(fd);
    }
  }
  out.size = r;
  out.truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return out;
}

std::error_code check_reply(const received& r, const reply& rep, std::uint64_t expected,
                            bool want_fds, bool& stale) {
  stale = false;
  const std::error_code bad = errc::fork_server_protocol;
  if (r.truncated || r.size != static_cast<ssize_t>(sizeof(reply))) return bad;
  if (rep.fd_count < 0 || rep.fd_count > 2 || r.fds.size() != static_cast<std::size_t>(rep.fd_count))
    return bad;
  switch (static_cast<reply_kind>(rep.kind)) {
    case reply_kind::ok: break;
    case reply_kind::errno_value:
      if (rep.value <= 0 || rep.fd_count != 0) return bad;
      break;
    case reply_kind::errc_value:
      if (rep.value <= 0 || rep.value > static_cast<int>(errc::fork_server_protocol) ||
          rep.fd_count != 0)
        return bad;
      break;
    default: return bad;
  }
  // Ids grow by one per request and requests are answered in order: an older id is the
  // late answer to a request that timed out; a newer (or zero) id was never asked for.
  if (rep.id != 0 && rep.id < expected) {
    stale = true;
    return {};
  }
  if (rep.id != expected) return bad;
  if (static_cast<reply_kind>(rep.kind) == reply_kind::ok &&
      (want_fds ? rep.pid <= 0 || rep.fd_count < 1 : rep.fd_count != 0))
    return bad;
  return {};
}

}  // namespace pkit::detail::wire
