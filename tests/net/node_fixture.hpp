#pragma once

// The two actor systems, the node agent and the helpers shared by the node agent suites
// (net_node_agent_test): a node publishing its agent on 127.0.0.1, a controller connected
// to it, relays, and waits on pids bounded by a deadline.

#include <boost/test/unit_test.hpp>

#include <actor_stopper.hpp>
#include <test_relay.hpp>

#include "proc_stat.hpp"

#include <pkit/actors/error.hpp>
#include <pkit/net/link_timing.hpp>
#include <pkit/net/node_agent.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace node_test {

using namespace std::chrono_literals;
using pkit::actors::process_actor;
using pkit::actors::process_spec;
using pkit::net::errc;
using pkit::net::node_actor;
using pkit_test_common::actor_stopper;
using pkit_test_common::end_and_wait;

constexpr auto deadline = 20s;

/// One actor system with the io middleman, pkit::net's types and `timing` (none: no
/// heartbeats, a controller that falls silent when idle).
struct net_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  explicit net_system(std::optional<pkit::net::link_timing> timing = pkit::net::link_timing{1s, 5s}) {
    cfg.load<caf::io::middleman>();
    pkit::net::init(cfg);
    if (timing) {
      auto refused = pkit::net::apply_link(cfg, *timing);
      BOOST_TEST_REQUIRE(!refused.has_value(), (refused ? refused->message() : ""));
    } else {
      cfg.set("middleman.app-identifiers", std::vector<std::string>{pkit::net::app_identifier});
    }
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

/// The error of `x` rendered, or "" when it holds a value (error() would be undefined:
/// Boost evaluates a message even when the check passes).
template <class T>
std::string why(const caf::actor_system& sys, const caf::expected<T>& x) {
  return x ? std::string{} : sys.render(x.error());
}

using pkit_test_common::relay_impl;

/// The program the nodes allow: its own resolved path (validate() refuses /bin/sleep where
/// /bin links to usr/bin).
inline const std::string sleep_path = "/usr/bin/sleep";

/// A remote spec as validate() wants it: named, run as the node's default user.
inline process_spec sleep_spec(const std::string& name = "sleeper") {
  process_spec spec;
  spec.name = name;
  spec.argv = {sleep_path, "60"};
  spec.stop_timeout_ms = 5000;
  return spec;
}

/// A node with an agent (allowed: /usr/bin/sleep, run as "nobody" by default, at most
/// `max_children`; `adjust` may change that) published on an ephemeral loopback port, and
/// a controller connected to it.
struct two_nodes {
  net_system node;
  net_system controller;
  node_actor agent;
  node_actor remote;
  std::uint16_t port = 0;
  /// Ends the agent, also when a check below fails in the constructor (no destructor runs
  /// then; this member's does, before the node's system).
  actor_stopper stop_agent;

  explicit two_nodes(std::uint32_t max_children = 4, pkit::net::link_timing node_timing = {1s, 5s},
                     std::optional<pkit::net::link_timing> controller_timing = pkit::net::link_timing{1s, 5s},
                     const std::function<void(pkit::net::node_config&)>& adjust = {})
      : node{node_timing}, controller{controller_timing} {
    pkit::net::node_config config;
    config.name = "node-a";
    config.allow.programs = {sleep_path};
    // The tests run as root: a root node needs a user for remote children.
    config.allow.default_user = "nobody";
    config.max_children = max_children;
    if (adjust)
      adjust(config);
    auto bad = config.check();
    BOOST_TEST_REQUIRE(!bad.has_value(), (bad ? bad->message() : ""));
    agent = pkit::net::spawn_node_agent(*node.sys, std::move(config));
    stop_agent.actor = caf::actor_cast<caf::actor>(agent);
    auto published = node.sys->middleman().publish(agent, 0, "127.0.0.1");
    BOOST_TEST_REQUIRE(static_cast<bool>(published), why(*node.sys, published));
    port = *published;
    auto r = controller.sys->middleman().remote_actor<node_actor>("127.0.0.1", port);
    BOOST_TEST_REQUIRE(static_cast<bool>(r), why(*controller.sys, r));
    remote = *r;
  }
  // The relays end with the fixture too: a failed REQUIRE must not leave one running, or
  // the controller's system would wait for it for ever (the test would hang, not fail).
  // The agent ends next (stop_agent).
  ~two_nodes() {
    for (const auto& r : relays) caf::anon_send_exit(r, caf::exit_reason::kill);
  }

  std::vector<caf::actor> relays;

  caf::actor make_relay(caf::scoped_actor& sink) {
    relays.push_back(controller.sys->spawn(relay_impl, caf::actor_cast<caf::actor>(sink)));
    return relays.back();
  }

  /// The spawn's reply: the process actor (started: its pid in first_pid), or the refusal.
  caf::expected<process_actor> spawn(caf::scoped_actor& self, const std::string& id, process_spec spec,
                                     caf::actor relay) {
    caf::expected<process_actor> out{caf::sec::request_timeout};
    self->request(remote, deadline, pkit::net::node_spawn_atom_v, id, std::move(spec), std::move(relay))
        .receive(
            [&](process_actor& p, std::int32_t pid) {
              first_pids[p.address()] = pid;
              out = std::move(p);
            },
            [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// The pid of `p`'s first run, as the spawn answered it (the spawn starts the child).
  std::int32_t first_pid(const process_actor& p) const {
    auto it = first_pids.find(p.address());
    return it == first_pids.end() ? 0 : it->second;
  }

  std::map<caf::actor_addr, std::int32_t> first_pids;

  std::vector<pkit::net::node_child_info> list(caf::scoped_actor& self) {
    std::vector<pkit::net::node_child_info> out;
    self->request(remote, deadline, pkit::net::node_list_atom_v)
        .receive([&](std::vector<pkit::net::node_child_info>& x) { out = std::move(x); },
                 [&](caf::error& e) { BOOST_TEST_ERROR(controller.sys->render(e)); });
    return out;
  }
};

/// Waits until `pid` has terminated (its pidfd polls readable), at most `deadline`.
inline bool wait_gone(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0)
    return errno == ESRCH;  // already reaped
  pollfd p{fd, POLLIN, 0};
  int n = ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(deadline).count()));
  ::close(fd);
  return n == 1;
}

/// True once /proc/PID is gone: ended and reaped (by pkit's reaper), no zombie left. Polls,
/// bounded: no event announces the reap of a process whose actor has ended.
inline bool reaped(pid_t pid) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (pkit_test_proc::proc_exists(pid)) {
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

inline std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr)
      ++n;
    ::closedir(d);
  }
  return n;
}

/// Waits for the down message of `monitored` (monitored by `self` beforehand).
inline std::optional<caf::error> wait_down(caf::scoped_actor& self) {
  std::optional<caf::error> reason;
  self->receive([&](caf::down_msg& dm) { reason = dm.reason; }, caf::after(deadline) >> [] {});
  return reason;
}

}  // namespace node_test
