#pragma once

// A controller with a node_directory and supervisors, and nodes (each its own actor
// system with a published agent) on 127.0.0.1, all in this process; events collected by
// a scoped actor subscribed to the supervisor; a connection cut with shutdown(2) to lose
// a node the way a network does (net_remote_child_test).

#include "node_fixture.hpp"

#include <pkit/actors/supervisor.hpp>
#include <pkit/net/node_directory.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <vector>

namespace remote_test {

using namespace node_test;
using namespace pkit::actors;

/// Short heartbeats on every side: a lost peer is noticed within about a second.
inline const pkit::net::link_timing fast_link{100ms, 1s};

/// A node: an actor system whose agent (allowed: /usr/bin/sleep, as "nobody") is
/// published on an ephemeral loopback port.
struct node_side {
  net_system sys;
  node_actor agent;
  std::uint16_t port = 0;
  /// The node's stop switch (node_config::stopping): set it to have the node refuse
  /// spawns and starts, as `pkit node` does once it got SIGTERM.
  std::shared_ptr<std::atomic<bool>> stopping = std::make_shared<std::atomic<bool>>(false);
  /// Ends the agent with this node, also when a check in the constructor fails (no
  /// destructor of ours runs then; a member's does, before the system's).
  actor_stopper stop_agent;

  /// `timing`: none makes a node that sends no heartbeats — silent when idle, as a
  /// stopped or partitioned node looks to its controller.
  explicit node_side(const std::string& name, std::optional<pkit::net::link_timing> timing = fast_link)
      : sys{timing} {
    pkit::net::node_config config;
    config.name = name;
    config.allow.programs = {sleep_path};
    config.allow.default_user = "nobody";
    config.stopping = stopping;
    auto bad = config.check();
    BOOST_TEST_REQUIRE(!bad.has_value(), (bad ? bad->message() : ""));
    agent = pkit::net::spawn_node_agent(*sys.sys, std::move(config));
    stop_agent.actor = caf::actor_cast<caf::actor>(agent);
    auto published = sys.sys->middleman().publish(agent, 0, "127.0.0.1");
    BOOST_TEST_REQUIRE(static_cast<bool>(published), why(*sys.sys, published));
    port = *published;
  }

  /// Stops listening: from now on a connect is refused.
  void close_port() { sys.sys->middleman().unpublish(agent, port); }
};

/// Cuts every established TCP connection of this process whose local port is `port`
/// (the node's side of its links) with shutdown(2): both ends see the link closed, as
/// when the network between them goes. Returns how many were cut.
inline int sever(std::uint16_t port) {
  int cut = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  while (dirent* e = ::readdir(d)) {
    const int fd = std::atoi(e->d_name);
    if (fd <= 2) continue;
    sockaddr_in local{};
    socklen_t len = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0 || local.sin_family != AF_INET) continue;
    if (ntohs(local.sin_port) != port) continue;
    sockaddr_in peer{};
    len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;  // the listener
    if (::shutdown(fd, SHUT_RDWR) == 0) ++cut;
  }
  ::closedir(d);
  return cut;
}

/// A loopback port nothing listens on (bound, then closed).
inline std::uint16_t dead_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// The controller: its actor system, the directory over `nodes`, a subscriber, and the
/// supervisors start() made — all ended by the destructor, however the case ends (a
/// failed REQUIRE before a case's own shutdown must not leave a supervisor running: the
/// actor system would wait for it for ever, a hang instead of a failure).
///
/// Declare the node_sides before the controller: they then outlive it, and a supervisor
/// ended here still stops its remote children through them.
struct controller_side {
  net_system sys{fast_link};
  std::unique_ptr<pkit::net::node_directory> directory;
  std::unique_ptr<caf::scoped_actor> self;
  std::vector<caf::actor> started;  ///< the supervisors start() made, ended by the destructor

  controller_side() {
    pkit::net::placement_timing timing;
    timing.connect_timeout = 2s;
    timing.spawn_timeout = 2s;
    timing.request_margin = 2s;
    timing.reconnect_initial = 50ms;
    timing.reconnect_max = 500ms;
    directory = std::make_unique<pkit::net::node_directory>(*sys.sys, timing);
    self = std::make_unique<caf::scoped_actor>(*sys.sys);
  }
  /// Ends every supervisor start() made (a second exit after a case's own is harmless)
  /// and waits for their ends, `deadline` at most; then the directory's actor, the
  /// scoped actor and the system, and only then the directory object (the supervisors
  /// hold a pointer to it: node_directory::shutdown's order).
  ~controller_side() {
    stop_supervisors();
    directory->shutdown();
    self.reset();
    sys.sys.reset();  // waits for the actors still ending (their stops are bounded)
    directory.reset();
  }

  void stop_supervisors() {
    if (const std::size_t left = end_and_wait(*sys.sys, started, deadline))
      BOOST_TEST_ERROR(left << " supervisor(s) did not end within the deadline: killed");
    started.clear();
  }

  void add(const std::string& name, std::uint16_t port) {
    auto bad = directory->add_node({name, "127.0.0.1", port});
    BOOST_TEST_REQUIRE(!bad.has_value(), (bad ? bad->message() : ""));
  }

  /// start_supervisor with the directory as placement and our scoped actor subscribed.
  supervisor_actor start(supervisor_spec spec) {
    supervisor_options options;
    options.place = directory.get();
    options.subscribers = {{caf::actor_cast<caf::actor>(*self)}};
    auto sup = start_supervisor(*sys.sys, std::move(spec), deadline, std::move(options));
    BOOST_TEST_REQUIRE(static_cast<bool>(sup), why(*sys.sys, sup));
    started.push_back(caf::actor_cast<caf::actor>(*sup));
    return *sup;
  }

  std::map<std::string, child_info> children(const supervisor_actor& sup) {
    std::map<std::string, child_info> out;
    (*self)->request(sup, deadline, which_children_atom_v)
        .receive(
            [&](std::vector<child_info>& xs) {
              for (auto& x : xs) out[x.id] = x;
            },
            [&](caf::error& e) { BOOST_TEST_ERROR(sys.sys->render(e)); });
    return out;
  }

  /// The next event of `kind` about `child` (others are skipped), within the deadline.
  std::optional<supervisor_event> next(const std::string& child, event_kind kind) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    std::optional<supervisor_event> out;
    while (!out && std::chrono::steady_clock::now() < until) {
      bool timed_out = false;
      (*self)->receive(
          [&](supervisor_event& e) {
            if (e.child == child && e.kind == kind) out = std::move(e);
          },
          [&](caf::down_msg&) {}, caf::after(deadline) >> [&] { timed_out = true; });
      if (timed_out) break;
    }
    return out;
  }
};

inline child_spec remote_child(const std::string& id, std::vector<std::string> nodes) {
  child_spec c;
  c.id = id;
  c.process.argv = {sleep_path, "60"};
  c.process.stop_timeout_ms = 2000;
  c.nodes = std::move(nodes);
  return c;
}

inline supervisor_spec tree(std::vector<child_spec> children, std::int32_t intensity = 5) {
  supervisor_spec s;
  s.name = "remote-tree";
  s.flags.intensity = intensity;
  s.flags.period_ms = 30000;
  s.flags.report = supervisor_report::none;
  s.children = std::move(children);
  return s;
}

inline bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

}  // namespace remote_test
