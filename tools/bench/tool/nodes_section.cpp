// (e) issue 11's numbers — programs on nodes, side by side in one run:
//
//   (e1) start of a remote child over loopback against a local start, in this process: a
//        controller actor system and a node actor system joined by plain BASP on
//        127.0.0.1; from spawn to the start's reply (the pid), interleaved rounds.
//        Target: remote <= 2x local, the fast modes compared (p10 against p10).
//        Beside it, informational, what bounds any protocol on this transport: a second
//        start of a placed child (no placement, no actor handle new to either side: the
//        start crosses BASP once each way), and a bare request and answer to the node's
//        agent over the same link (node_hello: BASP alone, no child).
//   (e2) failover: a real `pkit run`, two real `pkit node`s; node a is SIGSTOPped (silent,
//        its connection open); the time from the stop until the program is ready on b,
//        read from pkit run's JSON event lines. Target: node_timeout + 100 ms.
//   (e3) `pkit ctl status` of 1,000 programs spread over 3 nodes, end to end (exec of the
//        client included). Target: < 100 ms.

#include "tool_bench_support.hpp"

#include <pkit/actors/process_actor.hpp>
#include <pkit/actors/scheduler.hpp>
#include <pkit/net/link_setup.hpp>
#include <pkit/net/node_agent.hpp>
#include <pkit/net/node_directory.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

namespace tool_bench {
namespace {

namespace pa = pkit::actors;

const std::string sleep_path = "/usr/bin/sleep";

// One actor system with plain BASP links (heartbeats 50 ms, timeout 1 s) on pkit's
// scheduler, as `pkit run` and `pkit node` have.
struct net_system {
  caf::actor_system_config cfg;
  pkit::net::tls_snapshot none;
  std::unique_ptr<caf::actor_system> sys;
  net_system() {
    if (auto bad = pkit::net::prepare_links(cfg, nullptr, {50ms, 1s}, none)) fail(bad->message());
    pa::use_pkit_scheduler(cfg);  // as pkit run and pkit node do
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

pa::process_spec sleeper() {
  pa::process_spec s;
  s.name = "bench";
  s.argv = {sleep_path, "60"};
  s.new_process_group = true;
  s.kill_group = true;
  s.stop_timeout_ms = 2000;
  return s;
}

// Spawn + start until the pid; then stopped and ended, and its actor awaited (not timed):
// no clean-up of one sample runs into the next one's time. Returns µs.
double start_once(caf::scoped_actor& self, const pa::process_actor& proc) {
  const auto t0 = now_ns();
  std::int32_t pid = 0;
  self->request(proc, std::chrono::seconds(10), pa::start_atom_v)
      .receive([&](std::int32_t p) { pid = p; }, [&](caf::error& e) { fail("start: " + to_string(e)); });
  const double us = bench::us_since(t0);
  if (pid <= 0) fail("start gave no pid");
  self->request(proc, std::chrono::seconds(10), pa::stop_atom_v).receive([](pkit::exit_status&) {}, [](caf::error&) {});
  self->monitor(proc);
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
  self->receive([](caf::down_msg&) {}, caf::after(std::chrono::seconds(10)) >> [] { fail("the actor did not end"); });
  return us;
}

// A controller and a node in this process, the node's agent published on loopback and
// known to the controller's directory as "n1".
struct node_pair {
  net_system node, controller;
  pkit::net::node_actor agent;
  std::uint16_t port = 0;  // the agent's, on 127.0.0.1
  std::unique_ptr<pkit::net::node_directory> dir;
  node_pair() {
    pkit::net::node_config config;
    config.name = "n1";
    config.allow.programs = {sleep_path};
    if (::geteuid() == 0) config.allow.default_user = "nobody";
    if (auto bad = config.check()) fail(bad->message());
    agent = pkit::net::spawn_node_agent(*node.sys, std::move(config));
    auto published = node.sys->middleman().publish(agent, 0, "127.0.0.1");
    if (!published) fail("publish: " + node.sys->render(published.error()));
    port = *published;
    dir = std::make_unique<pkit::net::node_directory>(*controller.sys);
    if (auto bad = dir->add_node({"n1", "127.0.0.1", port})) fail(bad->message());
  }
  ~node_pair() { caf::anon_send_exit(agent, caf::exit_reason::user_shutdown); }
  // A start of a relay whose child was placed, started and stopped before: the relay
  // asks the node's process actor again, through handles both sides already have.
  double restart_once(caf::scoped_actor& self) {
    auto proc = dir->spawn_remote(*controller.sys, {"n1"}, sleeper(), {});
    self->request(proc, std::chrono::seconds(10), pa::start_atom_v)
        .receive([](std::int32_t) {}, [](caf::error& e) { fail("first start: " + to_string(e)); });
    self->request(proc, std::chrono::seconds(10), pa::stop_atom_v)
        .receive([](pkit::exit_status&) {}, [](caf::error& e) { fail("stop: " + to_string(e)); });
    return tool_bench::start_once(self, proc);
  }
  // One request and its answer to the node's agent, from the controller's system.
  double round_trip_once(caf::scoped_actor& self, const pkit::net::node_actor& there) {
    const auto t0 = now_ns();
    self->request(there, std::chrono::seconds(10), pkit::net::node_hello_atom_v, pkit::net::node_protocol_version)
        .receive([](pkit::net::node_info&) {}, [](caf::error& e) { fail("node_hello: " + to_string(e)); });
    return bench::us_since(t0);
  }
  double start_once(caf::scoped_actor& self) {
    const double us = tool_bench::start_once(self, dir->spawn_remote(*controller.sys, {"n1"}, sleeper(), {}));
    // The relay is gone; the node forgets its process actor once that has ended.
    caf::scoped_actor there{*node.sys};
    const auto t0 = now_ns();
    for (bool empty = false; !empty; std::this_thread::sleep_for(100us)) {
      if (bench::ms_since(t0) > 10000) fail("the node did not forget its child");
      there->request(agent, std::chrono::seconds(10), pkit::net::node_list_atom_v)
          .receive([&](std::vector<pkit::net::node_child_info>& xs) { empty = xs.empty(); },
                   [](caf::error& e) { fail("node_list: " + to_string(e)); });
    }
    return us;
  }
};

void remote_start(std::vector<row>& rows) {
  node_pair pair;
  caf::scoped_actor self{*pair.controller.sys};
  bench::variant local{"local start (spawn_process, start -> pid)", [&] {
                         return start_once(self, pa::spawn_process(*pair.controller.sys, sleeper()));
                       },
                       {}};
  bench::variant remote{"remote start (node over loopback, start -> pid)", [&] { return pair.start_once(self); }, {}};
  // The node runs its children as its default user when it runs as root (a credentials
  // lookup and switch per start that the local start above does not do): the same
  // child, locally, for a like-for-like comparison (informational; the check is above's).
  bench::variant local_as{"local start as the node's user (nobody when root)", [&] {
                            auto spec = sleeper();
                            if (::geteuid() == 0) spec.user = "nobody";
                            return start_once(self, pa::spawn_process(*pair.controller.sys, std::move(spec)));
                          },
                          {}};
  bench::variant restart{"remote start again (placed before, start -> pid)", [&] { return pair.restart_once(self); },
                         {}};
  auto there = pair.controller.sys->middleman().remote_actor<pkit::net::node_actor>("127.0.0.1", pair.port);
  if (!there) fail("remote_actor: " + pair.controller.sys->render(there.error()));
  // Its own actor: one whose handle crossed the wire is one a peer can name as a sender,
  // and a relay takes no request from such an actor.
  caf::scoped_actor asker{*pair.controller.sys};
  bench::variant trip{"request and answer to the node's agent (BASP alone)",
                      [&] { return pair.round_trip_once(asker, *there); }, {}};
  remote.once();  // the first one connects: not what is measured
  trip.once();
  std::vector<bench::variant> vs{local, remote, local_as, restart, trip};
  // Both starts are bimodal on a small VM: a fast mode, and one ~1 ms later in which a
  // woken thread waits behind the just-exec'd child. Which mode holds a median changes
  // from run to run (local medians 210-1,142 us in three runs of one quiet hour), so a
  // ratio of medians flips between far under and far over the target. The check compares
  // the fast modes (p10 against p10): what the hops cost against a spawn, stable across
  // runs (3.7x-4.0x there); the ratio of medians is printed beside it.
  const int rounds = quick ? 3 : 60;
  for (int r = 0; r < rounds; ++r)
    for (auto& v : vs) v.samples.push_back(v.once());
  std::vector<bench::stats> sums;
  for (const auto& v : vs) {
    sums.push_back(bench::summarize(v.samples));
    rows.push_back({v.label, sums.back(), "us"});
  }
  std::printf("  (e1) remote start / local start as the node's user: %.2fx (informational)\n",
              sums[1].median / sums[2].median);
  std::printf("  (e1) remote start / local start, medians: %.2fx (informational)\n",
              sums[1].median / sums[0].median);
  // What no protocol over this link can go under: a local start as the node's user plus
  // one BASP round trip, against a local start (p10s).
  std::printf("  (e1) floor of any protocol here, (local as the node's user + BASP round trip) / local: %.2fx; "
              "a start again: %.2fx (informational)\n",
              (sums[2].p10 + sums[4].p10) / sums[0].p10, sums[3].p10 / sums[0].p10);
  checks.push_back({"(e1) remote start / local start (p10 against p10)", fmt("%.2fx", sums[1].p10 / sums[0].p10),
                    "<= 2x", sums[1].p10 <= 2 * sums[0].p10});
}

// A `pkit node` in the background; its port from the line it prints.
struct node_process {
  std::unique_ptr<background> proc;
  std::uint16_t port = 0;
  node_process(const fs::path& dir, const std::string& name) {
    const fs::path allow = dir / (name + "-allow.toml");
    write(allow, "programs = [\"" + sleep_path + "\"]\n" + (::geteuid() == 0 ? "default_user = \"nobody\"\n" : ""));
    const fs::path log = dir / (name + ".log");
    std::error_code ec;
    fs::remove(log, ec);  // background appends: an earlier round's port line must not be read
    proc = std::make_unique<background>(std::vector<std::string>{pkit_binary(), "node", "--allow", allow.string(),
                                                                 "--name", name, "--heartbeat", "50ms", "--timeout",
                                                                 "1s", "--max-children", "1000"},
                                        log);
    const auto t0 = now_ns();
    while (port == 0 && bench::ms_since(t0) < 20000) {
      const std::string text = read_file(log);
      if (auto at = text.find("listening on 127.0.0.1:"); at != std::string::npos)
        port = static_cast<std::uint16_t>(std::atoi(text.c_str() + at + 23));
      else
        std::this_thread::sleep_for(5ms);
    }
    if (port == 0) fail("pkit node " + name + " did not listen: " + read_file(log));
  }
  std::string table(const std::string& name) const {
    return "[nodes." + name + "]\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n";
  }
};

// The time (ms) from `t0` until pkit run's log shows `program` ready on `node`.
double until_ready_on(const fs::path& log, const std::string& program, const std::string& node, std::int64_t t0) {
  const std::string want = "\"node\":\"" + node + "\"";
  while (bench::ms_since(t0) < 20000) {
    std::istringstream in(read_file(log));
    for (std::string line; std::getline(in, line);)
      if (line.find("\"event\":\"ready\"") != std::string::npos && line.find(want) != std::string::npos &&
          line.find("\"program\":\"" + program + "\"") != std::string::npos)
        return bench::ms_since(t0);
    std::this_thread::sleep_for(1ms);
  }
  fail(program + " never got ready on " + node + ": " + read_file(log));
}

void failover(const fs::path& work, std::vector<row>& rows) {
  const fs::path dir = work / "failover";
  fs::create_directories(dir);
  std::vector<double> ms;
  for (int round = 0; round < (quick ? 1 : 5); ++round) {
    node_process a(dir, "a"), b(dir, "b");
    write(dir / "tree.toml", "intensity = 100\n[pkit]\nname = \"failover\"\ncontrol_socket = \"" +
                                 (dir / "pkit.sock").string() + "\"\nheartbeat = \"50ms\"\nnode_timeout = \"1s\"\n" +
                                 a.table("a") + b.table("b") + "[[program]]\nname = \"far\"\nnodes = [\"a\", \"b\"]\n" +
                                 "command = [\"" + sleep_path + "\", \"3600\"]\n");
    const fs::path log = dir / ("run" + std::to_string(round) + ".log");
    background tree({pkit_binary(), "run", (dir / "tree.toml").string(), "--log-format", "json"}, log);
    until_ready_on(log, "far", "a", now_ns());
    const auto t0 = now_ns();
    ::kill(a.proc->pid(), SIGSTOP);
    ms.push_back(until_ready_on(log, "far", "b", t0));
    ::kill(a.proc->pid(), SIGCONT);
  }
  const auto s = bench::summarize(ms);
  rows.push_back({"node SIGSTOPped -> ready on the other node", s, "ms"});
  checks.push_back({"(e2) failover (node_timeout 1 s, heartbeat 50 ms)", fmt("%.0f ms", s.median), "<= 1100 ms",
                    s.median <= 1100});
}

void status_over_nodes(const fs::path& work, std::vector<row>& rows) {
  const int n = quick ? 30 : 1000;
  const fs::path dir = work / "spread";
  fs::create_directories(dir);
  std::vector<std::unique_ptr<node_process>> nodes;
  std::string text = "intensity = 1000000\nstart_concurrency = 1000\n[pkit]\nname = \"spread\"\ncontrol_socket = \"" +
                     (dir / "pkit.sock").string() + "\"\nheartbeat = \"50ms\"\nnode_timeout = \"1s\"\n";
  for (int i = 1; i <= 3; ++i) {
    nodes.push_back(std::make_unique<node_process>(dir, "n" + std::to_string(i)));
    text += nodes.back()->table("n" + std::to_string(i));
  }
  for (int i = 1; i <= 3; ++i)
    text += "[[group]]\nname = \"g" + std::to_string(i) + "\"\nnode = \"n" + std::to_string(i) +
            "\"\nstart_concurrency = 1000\n[[group.program]]\nname = \"w" + std::to_string(i) + "\"\ninstances = " +
            std::to_string(n / 3 + (i <= n % 3 ? 1 : 0)) + "\ncommand = [\"" + sleep_path + "\", \"3600\"]\n";
  write(dir / "tree.toml", text);
  background tree({pkit_binary(), "run", (dir / "tree.toml").string()}, dir / "run.log");
  if (!await_pkit_tree(dir / "pkit.sock", static_cast<std::size_t>(n), 120000))
    fail("the spread tree did not come up: " + read_file(dir / "run.log"));
  std::vector<double> ms;
  for (int i = 0; i < (quick ? 3 : 20); ++i) {
    const auto t0 = now_ns();
    if (run({pkit_binary(), "ctl", "--socket", (dir / "pkit.sock").string(), "status"}).code != 0)
      fail("pkit ctl status failed");
    ms.push_back(bench::ms_since(t0));
  }
  const auto s = bench::summarize(ms);
  rows.push_back({"pkit ctl status, " + std::to_string(n) + " programs on 3 nodes", s, "ms"});
  checks.push_back({"(e3) status of " + std::to_string(n) + " programs over 3 nodes", fmt("%.1f ms", s.median),
                    "< 100 ms", s.median < 100});
}

}  // namespace

void section_nodes(const fs::path& work) {
  std::printf("\n(e) programs on nodes ...\n");
  std::fflush(stdout);
  std::vector<row> rows;
  remote_start(rows);
  failover(work, rows);
  status_over_nodes(work, rows);
  print_rows("(e) issue 11: remote start, failover, status over nodes", rows);
}

}  // namespace tool_bench
