// pkit::net::check_listen: plain listeners on numeric loopback only (FAULTS C1/C2);
// anything else needs a complete TLS file set.

#define BOOST_TEST_MODULE net_listen
#include <boost/test/unit_test.hpp>

#include <pkit/net/listen_policy.hpp>

#include <array>
#include <string>
#include <string_view>

using pkit::net::check_listen;
using pkit::net::errc;
using pkit::net::is_loopback_address;
using pkit::net::tls_files;

namespace {

/// Complete as far as check_listen looks (it does not read the files).
tls_files complete_set() { return {"/c/node.pem", "/c/node.key", "/c/ca.pem", {}, {}}; }

}  // namespace

BOOST_AUTO_TEST_CASE(loopback_addresses) {
  for (std::string_view a : {"127.0.0.1", "127.1.2.3", "127.255.255.254", "::1",
                             "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"})
    BOOST_TEST(is_loopback_address(a), a);
  for (std::string_view a : {"", "0.0.0.0", "::", "10.0.0.1", "192.168.1.10", "128.0.0.1",
                             "126.255.255.255", "fe80::1", "::ffff:10.0.0.1", "::2",
                             "localhost", "127.0.0.1 ", " 127.0.0.1", "127.0.0.1:80",
                             "127.1", "0x7f.0.0.1", "[::1]"})
    BOOST_TEST(!is_loopback_address(a), '"' << a << '"');
  using namespace std::string_view_literals;
  BOOST_TEST(!is_loopback_address("127.0.0.1\0.10.0.0.1"sv));
}

BOOST_AUTO_TEST_CASE(loopback_may_listen_plain_or_with_tls) {
  auto tls = complete_set();
  for (std::string_view a : {"127.0.0.1", "::1"}) {
    BOOST_TEST(!check_listen(a, nullptr).has_value(), a);
    BOOST_TEST(!check_listen(a, &tls).has_value(), a);
  }
}

BOOST_AUTO_TEST_CASE(beyond_loopback_needs_complete_tls) {
  tls_files none;
  auto partial = complete_set();
  partial.ca.clear();
  auto with_capath = complete_set();
  with_capath.capath = "/etc/ssl/certs";
  for (std::string_view a : {"0.0.0.0", "::", "192.168.1.10", "fe80::1", "localhost"}) {
    for (const tls_files* tls : std::array<const tls_files*, 4>{nullptr, &none, &partial,
                                                               &with_capath}) {
      auto refused = check_listen(a, tls);
      BOOST_TEST_REQUIRE(refused.has_value(), a);
      BOOST_TEST(refused->code == pkit::net::make_error_code(errc::listen_needs_tls));
      BOOST_TEST(refused->subject == std::string{a});
      BOOST_TEST(refused->reason.find(tls == &with_capath ? "capath" : "127.0.0.1") !=
                 std::string::npos, refused->reason);
    }
    auto tls = complete_set();
    BOOST_TEST(!check_listen(a, &tls).has_value(), a);
  }
}

BOOST_AUTO_TEST_CASE(all_interfaces_is_named_as_such) {
  // CAF binds INADDR_ANY for an empty address (FAULTS C2).
  auto refused = check_listen("", nullptr);
  BOOST_TEST_REQUIRE(refused.has_value());
  BOOST_TEST(refused->subject == "(all interfaces)");
  BOOST_TEST(refused->message().find("needs TLS") != std::string::npos, refused->message());
  auto tls = complete_set();
  BOOST_TEST(!check_listen("", &tls).has_value());
}
