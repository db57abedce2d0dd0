#include "tcp_probe.hpp"

#include <caf/atom.hpp>

#include <pkit/unique_fd.hpp>

#include <cerrno>
#include <cstring>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

namespace pkit::net::detail {

namespace {

// One address: "" when it connected within the time left, else why not.
std::string try_address(const addrinfo& ai, std::chrono::steady_clock::time_point deadline) {
  unique_fd fd{::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol)};
  if (!fd) return std::strerror(errno);
  if (::connect(fd.get(), ai.ai_addr, ai.ai_addrlen) == 0) return {};
  if (errno != EINPROGRESS) return std::strerror(errno);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "no answer";
    pollfd p{fd.get(), POLLOUT, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::strerror(errno);
    if (n == 0) return "no answer";
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return std::strerror(errno);
    return err == 0 ? std::string{} : std::string(std::strerror(err));
  }
}

}  // namespace

std::string tcp_reachable(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
    return std::string("cannot resolve: ") + ::gai_strerror(rc);
  std::string why = "no address";
  for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    why = try_address(*ai, deadline);
    if (why.empty()) break;
  }
  ::freeaddrinfo(found);
  if (why == "no answer") why = "no answer within " + std::to_string(timeout.count()) + " ms";
  return why;
}

caf::behavior tcp_prober(caf::event_based_actor* self, std::string host, std::uint16_t port,
                         std::chrono::milliseconds timeout) {
  return {[self, host, port, timeout](caf::connect_atom) -> std::string {
    self->quit();
    return tcp_reachable(host, port, timeout);
  }};
}

}  // namespace pkit::net::detail
