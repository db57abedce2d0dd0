#include "systemd_notify.hpp"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace pkit::tool::detail {

namespace {

// An unsigned decimal, whole, else nullopt-like false.
bool parse_u64(const char* s, std::uint64_t& out) {
  if (s == nullptr || *s == '\0') return false;
  const char* end = s + std::strlen(s);
  auto [p, ec] = std::from_chars(s, end, out);
  return ec == std::errc{} && p == end;
}

// The failure, said once per process: systemd would otherwise be left waiting silently.
void complain(const char* what, int err) {
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  std::fprintf(stderr, "pkit: cannot notify systemd through NOTIFY_SOCKET (%s: %s): it will not be told the tree's state\n",
               what, std::strerror(err));
}

}  // namespace

void notify(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || *path == '\0') return;
  // As sd_notify: a filesystem path or an abstract name (@…); anything else (vsock:) is
  // not a socket this implementation reaches.
  if (path[0] != '/' && path[0] != '@') return complain(path, EAFNOSUPPORT);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(path);
  if (len < 2 || len >= sizeof addr.sun_path) return complain(path, EINVAL);
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return complain("socket", errno);
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  ssize_t sent;
  do sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), addr_len);
  while (sent < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (sent < 0) complain(path, err);
}

std::chrono::microseconds systemd_watchdog() {
  std::uint64_t usec = 0;
  if (!parse_u64(std::getenv("WATCHDOG_USEC"), usec) || usec == 0) return std::chrono::microseconds(0);
  // WATCHDOG_PID: the watchdog is for that process only (a service whose main process
  // started pkit run, say); absent, it is ours.
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid != nullptr) {
    std::uint64_t who = 0;
    if (!parse_u64(pid, who) || who != static_cast<std::uint64_t>(::getpid())) return std::chrono::microseconds(0);
  }
  return std::chrono::microseconds(usec);
}

}  // namespace pkit::tool::detail
