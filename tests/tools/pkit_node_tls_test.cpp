// `pkit node` over TLS: the real binary with node certificates made by
// tools/make-certs.sh; a controller in this process with the right set connects and is
// served, one without a certificate or with another CA's is refused, and the node serves
// on. Every connect is a request with a deadline: a refused handshake must answer.

#include <boost/test/unit_test.hpp>

#include "pkit_node_process.hpp"
#include "temp_dir.hpp"

#include <pkit/net/link_timing.hpp>
#include <pkit/net/node_agent.hpp>
#include <pkit/net/tls_files.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/all.hpp>
#include <caf/scoped_actor.hpp>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>

#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using pkit::net::node_actor;
using pkit_test_tools::pkit_node_process;

constexpr auto deadline = 20s;

void make_certs(const std::filesystem::path& dir, const std::string& args) {
  const std::string cmd = "bash '" PKIT_MAKE_CERTS "' " + args + " '" + dir.string() + "' >/dev/null";
  BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, cmd);
}

/// A trusted pair of CAs (node "a", controller "main"), a rogue pair with a controller
/// "main" of its own, and an allow-list.
struct tls_setup {
  pkit_test_common::temp_dir dir;
  std::filesystem::path good = dir.path() / "good";
  std::filesystem::path rogue = dir.path() / "rogue";
  std::string allow = dir.file("allow.toml");

  tls_setup() {
    make_certs(good, "--node a --controller main");
    make_certs(rogue, "--controller main");
    std::ofstream out(allow);
    out << "programs = [\"/usr/bin/sleep\"]\n";
    if (::geteuid() == 0) out << "default_user = \"nobody\"\n";
  }

  std::vector<std::string> node_args() const {
    return {"--allow", allow, "--tls-cert", (good / "node-a.pem").string(), "--tls-key",
            (good / "node-a.key").string(), "--tls-ca", (good / "controller-ca.pem").string()};
  }
};

/// A TLS controller: with `files`, through tls_files::apply (as pkit's own processes);
/// without, CAF's OpenSSL module with no certificate (its anonymous mode).
struct tls_controller {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  explicit tls_controller(const pkit::net::tls_files* files) {
    cfg.load<caf::io::middleman>();
    cfg.load<caf::openssl::manager>();
    pkit::net::init(cfg);
    auto bad = files != nullptr ? files->apply(cfg, pkit::net::link_timing{1s, 5s})
                                : pkit::net::apply_link(cfg, pkit::net::link_timing{1s, 5s});
    BOOST_TEST_REQUIRE(!bad.has_value(), (bad ? bad->message() : ""));
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  /// The node's actor at 127.0.0.1:`port`, or the error.
  caf::expected<node_actor> connect(std::uint16_t port) {
    caf::scoped_actor self{*sys};
    caf::expected<node_actor> out{caf::sec::request_timeout};
    self->request(sys->openssl_manager().actor_handle(), deadline, caf::connect_atom_v, std::string{"127.0.0.1"},
                  port)
        .receive(
            [&](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>& sigs) {
              if (ptr && sys->assignable<node_actor>(sigs)) out = caf::actor_cast<node_actor>(std::move(ptr));
              else out = caf::make_error(caf::sec::unexpected_actor_messaging_interface);
            },
            [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// The node's name, from a hello over `node`; "" on error.
  std::string hello(const node_actor& node) {
    caf::scoped_actor self{*sys};
    std::string name;
    self->request(node, deadline, pkit::net::node_hello_atom_v, pkit::net::node_protocol_version)
        .receive([&](pkit::net::node_info& info) { name = info.name; },
                 [&](caf::error& e) { BOOST_TEST_ERROR(sys->render(e)); });
    return name;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(tls)

BOOST_AUTO_TEST_CASE(the_right_controller_is_served_the_wrong_ones_are_refused) {
  tls_setup setup;
  auto args = setup.node_args();
  args.insert(args.end(), {"--name", "tls-node"});
  pkit_node_process node(args);
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  BOOST_TEST(node.wait_stderr("TLS, mutual authentication").has_value());

  const pkit::net::tls_files good{setup.good / "controller-main.pem", setup.good / "controller-main.key",
                                  setup.good / "node-ca.pem", {}, {}};
  const pkit::net::tls_files rogue{setup.rogue / "controller-main.pem", setup.rogue / "controller-main.key",
                                   setup.good / "node-ca.pem", {}, {}};
  {
    tls_controller anonymous{nullptr};
    auto r = anonymous.connect(*port);
    BOOST_TEST(!r, "a controller without a certificate was served");
  }
  {
    tls_controller wrong_ca{&rogue};
    auto r = wrong_ca.connect(*port);
    BOOST_TEST(!r, "a controller with another CA's certificate was served");
  }
  tls_controller controller{&good};
  auto r = controller.connect(*port);
  BOOST_TEST_REQUIRE(static_cast<bool>(r), (r ? "" : controller.sys->render(r.error())));
  BOOST_TEST(controller.hello(*r) == "tls-node");
  ::kill(node.pid(), SIGTERM);
  BOOST_TEST(node.wait_exit().value_or(-1) == 0, node.stderr_text());
}

BOOST_AUTO_TEST_CASE(a_bad_tls_set_is_refused_naming_the_file) {
  tls_setup setup;
  // The key given as the CA file: not a certificate.
  auto args = setup.node_args();
  args.back() = (setup.good / "node-a.key").string();
  pkit_node_process node(args);
  BOOST_TEST(node.wait_exit().value_or(-1) == 5);
  const auto err = node.stderr_text();
  BOOST_TEST(err.find("node-a.key") != std::string::npos, err);
  BOOST_TEST(node.stdout_text().empty());
}

BOOST_AUTO_TEST_CASE(a_partial_tls_set_is_refused) {
  tls_setup setup;
  pkit_node_process node({"--allow", setup.allow, "--tls-cert", (setup.good / "node-a.pem").string()});
  BOOST_TEST(node.wait_exit().value_or(-1) == 5);
  BOOST_TEST(node.stdout_text().empty());
}

BOOST_AUTO_TEST_SUITE_END()
