#include <pkit/net/listen_policy.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

namespace pkit::net {

bool is_loopback_address(std::string_view address) {
  // inet_pton needs a NUL-terminated string; an embedded NUL must not cut it short.
  if (address.find('\0') != std::string_view::npos)
    return false;
  const std::string text{address};
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6))
      return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

std::optional<error> check_listen(std::string_view address, const tls_files* tls) {
  if (is_loopback_address(address) || (tls != nullptr && tls->complete()))
    return std::nullopt;
  std::string subject = address.empty() ? std::string{"(all interfaces)"} : std::string{address};
  std::string reason =
    "a listener beyond loopback needs TLS with mutual authentication: give a certificate, "
    "its key and the peers' CA file (tools/make-certs.sh makes them), or listen on "
    "127.0.0.1 or ::1";
  if (tls != nullptr && !tls->capath.empty())
    reason = "a CA directory (capath) is refused; give the peers' private CA file instead";
  return error{make_error_code(errc::listen_needs_tls), std::move(subject), std::move(reason)};
}

}  // namespace pkit::net
