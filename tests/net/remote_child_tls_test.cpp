// A supervisor child on another node over mutual TLS: the node_directory of a process
// with CAF's OpenSSL module connects through the OpenSSL manager (never plain BASP).

#include <boost/test/unit_test.hpp>

#include "cert_set.hpp"
#include "remote_fixture.hpp"

#include <caf/openssl/all.hpp>

using namespace remote_test;
using pkit_net_test::certs;

namespace {

/// Heartbeats as usual, but a link dropped only after 5 s of silence: how fast a loss is
/// noticed is not what this file tests, and under ASan beside another test (CI's -j2) a
/// TLS connect once went silent for over fast_link's 1 s and failed the start.
const pkit::net::link_timing tls_link{100ms, 5s};

/// An actor system with the middleman, the OpenSSL module and `files` applied.
struct tls_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  explicit tls_system(const pkit::net::tls_files& files) {
    cfg.load<caf::io::middleman>();
    cfg.load<caf::openssl::manager>();  // after the middleman: CAF requires the order
    pkit::net::init(cfg);
    auto refused = files.apply(cfg, tls_link);
    BOOST_TEST_REQUIRE(!refused.has_value(), (refused ? refused->message() : ""));
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_remote_child_over_mutual_tls) {
  tls_system node{certs::get().node()};
  pkit::net::node_config config;
  config.name = "a";
  config.allow.programs = {sleep_path};
  config.allow.default_user = "nobody";
  auto agent = pkit::net::spawn_node_agent(*node.sys, std::move(config));
  actor_stopper stop_agent{caf::actor_cast<caf::actor>(agent)};
  auto port = caf::openssl::publish(agent, 0, "127.0.0.1");
  BOOST_TEST_REQUIRE(static_cast<bool>(port), why(*node.sys, port));

  tls_system controller{certs::get().controller()};
  pkit::net::node_directory directory{*controller.sys};
  // Beyond loopback is allowed here: the links are TLS.
  BOOST_TEST(!directory.add_node({"far", "192.0.2.7", 4242}).has_value());
  BOOST_TEST_REQUIRE(!directory.add_node({"a", "127.0.0.1", *port}).has_value());
  supervisor_options options;
  options.place = &directory;
  auto sup = start_supervisor(*controller.sys, tree({remote_child("r", {"a"})}), deadline, std::move(options));
  BOOST_TEST_REQUIRE(static_cast<bool>(sup), why(*controller.sys, sup));
  // Declared after the directory: however the case ends, the supervisor (which stops its
  // child) has ended before the directory it uses is shut down and destroyed
  // (node_directory.hpp's order).
  struct ender {
    caf::actor_system& sys;
    caf::actor sup;
    pkit::net::node_directory& directory;
    ~ender() {
      end_and_wait(sys, {sup}, deadline);
      directory.shutdown();
    }
  } end_sup{*controller.sys, caf::actor_cast<caf::actor>(*sup), directory};
  caf::scoped_actor self{*controller.sys};
  child_info r;
  self->request(*sup, deadline, which_children_atom_v)
      .receive([&](std::vector<child_info>& xs) { r = xs.at(0); }, [](caf::error&) {});
  BOOST_TEST(r.node == "a");
  BOOST_TEST(alive(r.pid));
  self->request(*sup, deadline, stop_atom_v).receive([](caf::ok_atom) {}, [](caf::error&) {});
  BOOST_TEST(wait_gone(r.pid));
}
