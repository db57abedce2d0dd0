// A peer that connected as a controller forges a process actor's reports: child_started
// with pid 1 (and with the pid of an unrelated process group of this machine) to all it
// can address — the node's published front and the process actor it was handed. Nothing
// may act on them: the node keeps serving (list answers the real pids, a new spawn runs),
// and when the node is then SIGKILLed its guardian kills only the children it really
// started, not the forged groups. A real `pkit node`; the peer is this test's actor system.

#include <boost/test/unit_test.hpp>

#include <test_relay.hpp>

#include "pkit_node_process.hpp"

#include <temp_dir.hpp>

#include <pkit/actors/messages.hpp>
#include <pkit/net/link_timing.hpp>
#include <pkit/net/node_agent.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <csignal>
#include <fstream>
#include <memory>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

using namespace std::chrono_literals;
using pkit::actors::process_actor;
using pkit_test_tools::pkit_node_process;
using pkit_test_tools::wait_pid_gone;

constexpr auto within = 10s;

/// `sleep 60` leading a process group of its own: what a forged report names.
struct bystander {
  pid_t pid = -1;
  bystander() {
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    char* argv[] = {const_cast<char*>("/usr/bin/sleep"), const_cast<char*>("60"), nullptr};
    BOOST_TEST_REQUIRE(::posix_spawn(&pid, argv[0], nullptr, &attr, argv, environ) == 0);
    posix_spawnattr_destroy(&attr);
  }
  ~bystander() {
    ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
  }
  /// Alive (not a zombie: this test has not reaped it, so waitpid WNOHANG tells).
  bool alive() const {
    int st;
    return ::waitpid(pid, &st, WNOHANG) == 0;
  }
};

using pkit_test_common::relay_impl;

/// The peer: an actor system connected to the node as a controller (plain, loopback).
struct peer {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  pkit::net::node_actor node;
  std::vector<caf::actor> relays;

  explicit peer(std::uint16_t port) {
    cfg.load<caf::io::middleman>();
    pkit::net::init(cfg);
    BOOST_TEST_REQUIRE(!pkit::net::apply_link(cfg, pkit::net::link_timing{1s, 5s}).has_value());
    sys = std::make_unique<caf::actor_system>(cfg);
    auto r = sys->middleman().remote_actor<pkit::net::node_actor>("127.0.0.1", port);
    BOOST_TEST_REQUIRE(static_cast<bool>(r), (r ? "" : sys->render(r.error())));
    node = *r;
  }
  ~peer() {
    for (const auto& r : relays) caf::anon_send_exit(r, caf::exit_reason::kill);
  }

  /// Spawns and starts `sleep 60` as `id`; the process actor and the pid its relay heard.
  std::pair<process_actor, std::int32_t> run(caf::scoped_actor& self, const std::string& id) {
    relays.push_back(sys->spawn(relay_impl, caf::actor_cast<caf::actor>(self)));
    pkit::actors::process_spec spec;
    spec.name = id;
    spec.argv = {"/usr/bin/sleep", "60"};
    spec.stop_timeout_ms = 1000;
    process_actor proc;
    self->request(node, within, pkit::net::node_spawn_atom_v, id, std::move(spec), relays.back())
        .receive([&](process_actor& p, std::int32_t) { proc = std::move(p); },
                 [&](caf::error& e) { BOOST_TEST_REQUIRE(false, sys->render(e)); });
    std::int32_t pid = 0;
    self->receive([&](pkit::actors::child_started_atom, std::string&, std::uint64_t, std::int32_t p) { pid = p; },
                  caf::after(within) >> [] {});
    BOOST_TEST_REQUIRE(pid > 1);
    return {proc, pid};
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(forged_child_reports_kill_nothing_and_the_node_serves_on) {
  pkit_test_common::temp_dir dir;
  const std::string allow = dir.file("allow.toml");
  std::ofstream(allow) << "programs = [\"/usr/bin/sleep\"]\n" << (::geteuid() == 0 ? "default_user = \"nobody\"\n" : "");
  pkit_node_process node({"--allow", allow, "--name", "forged", "--heartbeat", "200ms", "--timeout", "1s"});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  bystander other;

  peer p(*port);
  caf::scoped_actor self{*p.sys};
  auto [proc, pid] = p.run(self, "mine");
  using pkit::actors::child_started_atom_v;
  using pkit::actors::child_exited_atom_v;
  for (const auto& target : {caf::actor_cast<caf::actor>(p.node), caf::actor_cast<caf::actor>(proc)}) {
    for (std::int32_t forged : {1, static_cast<std::int32_t>(other.pid)}) {
      self->send(target, child_started_atom_v, std::string{"mine"}, std::uint64_t{1}, forged);
      self->send(target, child_started_atom_v, std::string{"mine"}, std::uint64_t{2}, forged);
      self->send(target, child_exited_atom_v, std::string{"mine"}, std::uint64_t{1}, pkit::exit_status::exited(0));
    }
  }
  // Served on, in order after the forgeries (one connection, one mailbox order): list
  // tells the real pid, and a new child runs.
  std::vector<pkit::net::node_child_info> children;
  self->request(p.node, within, pkit::net::node_list_atom_v)
      .receive([&](std::vector<pkit::net::node_child_info>& xs) { children = std::move(xs); },
               [&](caf::error& e) { BOOST_TEST_ERROR(p.sys->render(e)); });
  BOOST_TEST_REQUIRE(children.size() == 1u);
  BOOST_TEST(children[0].pid == pid);
  auto [proc2, pid2] = p.run(self, "mine-too");
  BOOST_TEST(::kill(pid, 0) == 0);
  BOOST_TEST(other.alive());

  // The node dies: its guardian kills what it really started, and nothing else.
  BOOST_REQUIRE(::kill(node.pid(), SIGKILL) == 0);
  BOOST_TEST(wait_pid_gone(pid), "the node's child outlived it");
  BOOST_TEST(wait_pid_gone(pid2), "the node's second child outlived it");
  BOOST_TEST(other.alive(), "a forged child_started had the guardian kill an unrelated process group");
  BOOST_TEST(::kill(1, 0) == 0);
}
