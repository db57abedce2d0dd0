#include "detail/notify_socket.hpp"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string_view>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace pkit::detail {
namespace {

std::atomic<unsigned long> next_socket{0};

// One "KEY=value\n..." datagram: true when a line is exactly READY=1 (sd_notify's format:
// newline-separated assignments, the last one possibly without a newline).
bool says_ready(std::string_view msg) {
  while (!msg.empty()) {
    const std::size_t nl = msg.find('\n');
    if (msg.substr(0, nl) == "READY=1") return true;
    if (nl == std::string_view::npos) break;
    msg.remove_prefix(nl + 1);
  }
  return false;
}

}  // namespace

std::unique_ptr<notify_socket> notify_socket::open(uid_t uid, std::error_code& ec) {
  std::unique_ptr<notify_socket> s(new notify_socket);
  s->uid_ = uid;
  s->fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s->fd_) {
    ec.assign(errno, std::system_category());
    return nullptr;
  }
  // The kernel attaches each sender's pid, uid and gid (SCM_CREDENTIALS), checked by it:
  // what a sender claims in the datagram itself is never trusted.
  const int on = 1;
  if (::setsockopt(s->fd_.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
    ec.assign(errno, std::system_category());
    return nullptr;
  }
  // An abstract address (no file to create or clean up; gone with the socket). The name is
  // predictable, so another program could take it first: then the next number is tried.
  // Its length is exact — sd_notify and Python's socket module both pass the name's bytes
  // without a trailing NUL, and abstract names are compared with their length.
  for (int attempt = 0;; ++attempt) {
    const std::string name = "pkit/notify/" + std::to_string(::getpid()) + "/" +
                             std::to_string(next_socket.fetch_add(1, std::memory_order_relaxed));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    addr.sun_path[0] = '\0';
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (::bind(s->fd_.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0) {
      s->env_ = "NOTIFY_SOCKET=@" + name;
      return s;
    }
    if (errno != EADDRINUSE || attempt >= 16) {
      ec.assign(errno, std::system_category());
      return nullptr;
    }
  }
}

// Reads one datagram; false when none is queued. Descriptors sent along are closed.
bool notify_socket::accept_one() {
  char data[4096];  // systemd's limit for a notification (it drops longer ones too)
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 253)];
  iovec iov{data, sizeof data};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return false;
  const ucred* cred = nullptr;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
      cred = reinterpret_cast<const ucred*>(CMSG_DATA(c));
    } else if (c->cmsg_type == SCM_RIGHTS) {
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        ::close(fd);
      }
    }
  }
  if (cred == nullptr || static_cast<std::size_t>(n) > sizeof data) return true;  // truncated: dropped
  const pid_t child = child_.load(std::memory_order_relaxed);
  const bool trusted = (child > 0 && cred->pid == child) || cred->uid == uid_;
  if (trusted && says_ready({data, static_cast<std::size_t>(n)})) ready_ = true;
  return true;
}

bool notify_socket::drain() {
  std::lock_guard<std::mutex> lock(m_);
  while (!ready_ && accept_one()) {
  }
  return ready_;
}

bool notify_socket::ready() const {
  std::lock_guard<std::mutex> lock(m_);
  return ready_;
}

}  // namespace pkit::detail
