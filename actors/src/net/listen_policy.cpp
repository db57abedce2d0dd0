#include <pkit/net/listen_policy.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/openssl/manager.hpp>

#include <filesystem>
#include <string>
#include <system_error>
#include <tuple>

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

std::optional<error> require_authenticated(caf::actor_system& sys, const tls_files& applied) {
  auto refuse = [](std::string setting, std::string why) {
    return error{make_error_code(errc::tls_not_in_effect), std::move(setting), std::move(why)};
  };
  if (!sys.has_openssl_manager())
    return refuse("caf::openssl::manager", "not loaded: the system would speak plain BASP");
  if (!sys.openssl_manager().authentication_enabled())
    return refuse("caf::openssl::manager",
                  "peer authentication is off (no certificate, key or CA configured): CAF "
                  "would use anonymous TLS");
  const caf::actor_system_config& cfg = sys.config();
  if (!cfg.openssl_capath.empty())
    return refuse("openssl.capath", "set to '" + cfg.openssl_capath + "': refused");
  auto absolute = [](const std::filesystem::path& p) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(p, ec);
    return ec ? p.string() : abs.string();
  };
  for (auto [value, expected, setting] :
       {std::tuple{&cfg.openssl_certificate, absolute(applied.certificate), "openssl.certificate"},
        std::tuple{&cfg.openssl_key, absolute(applied.key), "openssl.key"},
        std::tuple{&cfg.openssl_cafile, absolute(applied.ca), "openssl.cafile"}})
    if (*value != expected)
      return refuse(setting, "is '" + *value + "', not the checked '" + expected + "'");
  if (cfg.openssl_passphrase != applied.passphrase)
    return refuse("openssl.passphrase", "not the checked passphrase");
  return std::nullopt;
}

}  // namespace pkit::net
