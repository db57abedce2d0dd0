// Issue 11 §2–§5, a node lost without its connection closing, end to end: a real `pkit
// run` (heartbeat 200 ms, node_timeout 1 s) with a program on one of two real `pkit node`
// processes, and that node made silent — SIGSTOP (the process frozen, its socket open),
// or a real partition (the node in a network namespace of its own behind a veth pair whose
// link is cut). The tree must report node_down within node_timeout + heartbeat + margin and
// fail over to the other node; the lost node must stop the lost controller's child on its
// own (the partition rule; a frozen node through its guardian's watchdog), so that the
// program runs twice at most for that window. The
// measured times are printed (BOOST_TEST_MESSAGE: run with --log_level=message).
// Every wait is on an event (an event line, a pidfd), bounded; never a sleep.

#define BOOST_TEST_MODULE pkit_run_partition
#include <boost/test/unit_test.hpp>

#include "pkit_node_process.hpp"
#include "pkit_run_process.hpp"

#include <proc_stat.hpp>
#include <temp_dir.hpp>

#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <set>

using namespace pkit_test_tools;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

const std::string sleep_path = "/usr/bin/sleep";
// The links' settings of the tree and of the nodes, and what the bounds allow on top of
// them: a loaded two-core box schedules late, the tree writes its event after the fact.
constexpr auto heartbeat = 200ms;
constexpr auto node_timeout = 1000ms;
constexpr auto margin = 1000ms;
constexpr auto detection_bound = node_timeout + heartbeat + margin;

long long ms(clock_type::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

/// A node allowed to run sleep (as nobody when the tests run as root), with the tree's
/// heartbeat and timeout; `extra` (TLS, --listen) and `wrapper` (ip netns exec) as given.
struct node {
  std::unique_ptr<pkit_node_process> proc;
  std::uint16_t port = 0;

  node(pkit_test_common::temp_dir& dir, const std::string& name, const std::vector<std::string>& extra = {},
       const std::vector<std::string>& wrapper = {}) {
    const std::string allow = dir.file(name + "-allow.toml");
    write_file(allow, "programs = [\"" + sleep_path + "\"]\n" + (::geteuid() == 0 ? "default_user = \"nobody\"\n" : ""));
    std::vector<std::string> args{"--allow", allow, "--name", name, "--heartbeat", "200ms", "--timeout", "1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    proc = std::make_unique<pkit_node_process>(args, wrapper);
    auto p = proc->wait_listening();
    BOOST_REQUIRE_MESSAGE(p.has_value(), "node " << name << " did not listen: " << proc->stderr_text());
    port = *p;
  }
};

pid_t parent_of(pid_t pid) {
  auto st = pkit_test_proc::read_proc_stat(pid);
  return st ? st->ppid : 0;
}

/// The tree: program "far" on node a, else b (in that order), links as the constants say.
std::string tree_text(const std::string& socket, const std::string& a_address, const std::string& b_address,
                      const std::string& tls_line = "") {
  return "intensity = 5\n[pkit]\nname = \"partition\"\ncontrol_socket = \"" + socket +
         "\"\nheartbeat = \"200ms\"\nnode_timeout = \"1s\"\n" + tls_line + "[nodes.a]\naddress = \"" + a_address +
         "\"\n[nodes.b]\naddress = \"" + b_address + "\"\n[[program]]\nname = \"far\"\nnodes = [\"a\", \"b\"]\n" +
         "command = [\"" + sleep_path + "\", \"1000\"]\nstop_timeout = \"2s\"\n";
}

/// What one loss of node a measured, from the moment it went silent.
struct loss_times {
  clock_type::time_point silent;  ///< SIGSTOP sent / link cut
  clock_type::time_point exited;  ///< the tree's `exited` (node_down) event read
  clock_type::time_point ready;   ///< far's `ready` on b read
  pid_t second = 0;               ///< far's pid on b
};

/// far runs on a (pid returned, a child of a's process); it must be running before a is cut.
pid_t first_run_on_a(pkit_process& run, node& a) {
  auto ready = run.wait_event(is_event("far", "ready"));
  BOOST_REQUIRE_MESSAGE(ready, "far never got ready:\n" << run.stderr_text() << "\nnode a:\n" << a.proc->stderr_text());
  BOOST_REQUIRE_EQUAL(ready->value("node", ""), "a");
  const pid_t first = ready->value("pid", 0);
  BOOST_REQUIRE_EQUAL(parent_of(first), a.proc->pid());
  return first;
}

/// After `silence` makes a silent: the tree's node_down within the bound, then far on b.
loss_times lose_a(pkit_process& run, node& b, const std::function<void()>& silence) {
  loss_times t;
  t.silent = clock_type::now();
  silence();
  auto lost = run.wait_event(is_event("far", "exited"), 10s);
  t.exited = clock_type::now();
  BOOST_REQUIRE_MESSAGE(lost, "no exited event for far:\n" << run.stderr_text());
  BOOST_TEST(lost->value("reason", "").find("node_down") != std::string::npos, lost->dump());
  BOOST_TEST((t.exited - t.silent <= detection_bound),
             "node_down after " << ms(t.exited - t.silent) << " ms, bound " << ms(detection_bound) << " ms");
  auto again = run.wait_event(is_event("far", "ready"), 15s);
  t.ready = clock_type::now();
  BOOST_REQUIRE_MESSAGE(again, "far not ready again:\n" << run.stderr_text());
  BOOST_TEST(again->value("node", "") == "b");
  t.second = again->value("pid", 0);
  BOOST_TEST(parent_of(t.second) == b.proc->pid());
  BOOST_TEST_MESSAGE("node a silent -> node_down: " << ms(t.exited - t.silent) << " ms (heartbeat timeout + interval "
                                                    << ms(node_timeout + heartbeat) << " ms); failover (silent -> ready on b): "
                                                    << ms(t.ready - t.silent) << " ms; node_down -> ready on b: "
                                                    << ms(t.ready - t.exited) << " ms");
  return t;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_stopped_node_is_fenced_by_its_guardian_before_the_failover) {
  pkit_test_common::temp_dir dir;
  node a(dir, "a");
  node b(dir, "b");
  const std::string file = dir.file("tree.toml");
  write_file(file, tree_text(dir.file("ctl.sock"), "127.0.0.1:" + std::to_string(a.port),
                             "127.0.0.1:" + std::to_string(b.port)));
  pkit_process run({"run", file, "--log-format", "json"});
  const pid_t first = first_run_on_a(run, a);

  // Frozen: its socket stays open, nothing answers the heartbeats, and the agent can stop
  // nothing. Its guardian (a process of its own, not frozen) stops being fed and, within
  // 3/4 of (timeout - heartbeat), kills the child's group and the node: before the
  // controller can declare the node lost, so far never runs on both nodes.
  const auto frozen_at = clock_type::now();
  auto t = lose_a(run, b, [&] { BOOST_REQUIRE(::kill(a.proc->pid(), SIGSTOP) == 0); });
  BOOST_TEST(gone(first), "a's child still ran when far was ready on b: two instances");
  BOOST_TEST(a.proc->wait_exit(10s).value_or(-1) == 128 + SIGKILL, "node a was not fenced:\n" << a.proc->stderr_text());
  BOOST_TEST(a.proc->wait_stderr("watchdog: no sign of life").has_value(), a.proc->stderr_text());
  BOOST_TEST_MESSAGE("a frozen -> far ready on b after " << ms(t.ready - frozen_at) << " ms; a's child was gone by then");
  BOOST_TEST(!gone(t.second), "far on b ended");

  BOOST_REQUIRE(::kill(run.pid(), SIGTERM) == 0);
  BOOST_TEST(run.wait_exit().value_or(-1) == 0, run.stderr_text());
  BOOST_TEST(wait_pid_gone(t.second), "far outlived pkit run on b");
}

// A node that is busy is not a frozen node: a burst of starts (here 600 programs at once)
// keeps its actors running longer than the watchdog's limit (262 ms with these links)
// before a message queued behind them runs, yet they make progress all along. The
// guardian must not fence it (the watchdog once judged by one periodic message's delay,
// and killed a healthy node and its children while it started a tree).
BOOST_AUTO_TEST_CASE(a_node_busy_with_a_burst_of_starts_is_not_fenced) {
  constexpr int programs = 600;
  pkit_test_common::temp_dir dir;
  const std::string allow = dir.file("a-allow.toml");
  write_file(allow, "programs = [\"" + sleep_path + "\"]\n" + (::geteuid() == 0 ? "default_user = \"nobody\"\n" : ""));
  // limit = 3/4 of (timeout - heartbeat), at least 100 ms: 262 ms. Measured with a
  // diagnostic build (not kept) on a 2-core host beside pkit_node_test, as CI runs them:
  // the probe's own message waited 350 to 1,080 ms behind the starts (12 runs) — what the
  // old watchdog judged by, so this limit still pins that defect there, with a margin of
  // 1.3x at the least. Meanwhile the node's network thread, runnable but given almost no
  // CPU during its own burst and the host's load, ran the canary's timer 100 to 175 ms
  // late (267 ms once), and the feeder thread once went unscheduled for about 90 ms. The
  // watchdog is right to fence a node whose network thread is silent that long against a
  // 250 ms --timeout (its controller could fail over); that is not what this case is
  // about. With a 112 ms limit the case failed 1 to 3 runs in 10 there (CI's plain stage
  // once); with 262 ms, 27 of 28. The tree's own link to a (node_timeout, also its connect
  // timeout) is not what is judged here and is generous: under ASan beside another test a
  // connect to a took over 1 s (CI).
  // Under ASan (CI's second stage, beside pkit_node_hostile_test) the guardian fenced the
  // node ("no sign of life for 263 ms") in 2 of about 40 runs: --timeout 700ms there
  // (limit 450 ms). The plain build keeps 262 ms, which pins the old defect; ASan's burst
  // is slower still, so its queueing delay stays above 450 ms as a rule, not by proof.
#if defined(__SANITIZE_ADDRESS__)
  const std::string timeout = "700ms";
#else
  const std::string timeout = "450ms";
#endif
  pkit_node_process a({"--allow", allow, "--name", "a", "--heartbeat", "100ms", "--timeout", timeout,
                       "--max-children", "1000"});
  auto port = a.wait_listening();
  BOOST_REQUIRE_MESSAGE(port.has_value(), "node a did not listen: " << a.stderr_text());
  const std::string file = dir.file("tree.toml");
  write_file(file, "intensity = 100000\nstart_concurrency = " + std::to_string(programs) +
                       "\n[pkit]\nname = \"burst\"\ncontrol_socket = \"" + dir.file("ctl.sock") +
                       "\"\nheartbeat = \"100ms\"\nnode_timeout = \"10s\"\n[nodes.a]\naddress = \"127.0.0.1:" +
                       std::to_string(*port) + "\"\n[[group]]\nname = \"g\"\nnode = \"a\"\nstart_concurrency = " +
                       std::to_string(programs) + "\n[[group.program]]\nname = \"w\"\ninstances = " +
                       std::to_string(programs) + "\ncommand = [\"" + sleep_path + "\", \"1000\"]\n");
  pkit_process run({"run", file, "--log-format", "json"});
  // Every program ready once, none ended meanwhile: a restart's second `ready` must not
  // make up for a program lost to a node_down (the tree's intensity would allow it).
  std::set<std::string> ready;
  int ended = 0;
  std::string first_end;
  while (ready.size() < static_cast<std::size_t>(programs)) {
    auto e = run.wait_event(
        [](const nlohmann::json& e) {
          const auto kind = e.value("event", "");
          return kind == "ready" || kind == "exited";
        },
        60s);
    if (!e) break;
    if (e->value("event", "") == "ready")
      ready.insert(e->value("program", ""));
    else if (ended++ == 0)
      first_end = e->dump();
  }
  BOOST_TEST(ready.size() == static_cast<std::size_t>(programs),
             ready.size() << " of " << programs << " ready:\n" << a.stderr_text());
  BOOST_TEST(ended == 0, ended << " programs ended while the node was busy; the first: " << first_end);
  BOOST_TEST(!a.wait_stderr("watchdog", 0ms).has_value(), "a busy node was fenced:\n" << a.stderr_text());
  BOOST_TEST(!a.wait_exit(0ms).has_value(), "node a ended:\n" << a.stderr_text());
  // The stop, read as it goes (more lines than a pipe holds): every program stopped once,
  // and where it stood if the stop did not end.
  BOOST_REQUIRE(::kill(run.pid(), SIGTERM) == 0);
  std::set<std::string> stopped;
  std::string last;
  while (stopped.size() < static_cast<std::size_t>(programs)) {
    auto e = run.wait_event([](const nlohmann::json& e) { return e.value("event", "") == "stopped" && e.value("group", "") == "g"; }, 60s);
    if (!e) break;
    last = e->dump();
    BOOST_TEST(stopped.insert(e->value("program", "")).second, "stopped twice: " << last);
  }
  BOOST_TEST(stopped.size() == static_cast<std::size_t>(programs),
             stopped.size() << " of " << programs << " stopped; the last: " << last << "\nnode a:\n" << a.stderr_text());
  const int code = run.wait_exit(60s).value_or(-1);
  BOOST_TEST(code == 0, "exit " << code << ":\n" << run.stderr_text());
}

namespace {

/// Runs `cmd` through the shell, its output discarded; true on exit code 0.
bool shell(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

/// A network namespace with one end of a veth pair in it: 10.231.N.2/30 inside, 10.231.N.1
/// on the root side (an unlikely subnet; N from this test's pid, and the names too, so that
/// concurrent runs do not meet). Removed by the destructor, whatever the test did; `made`
/// is false (and nothing left behind) where namespaces cannot be made.
struct veth_netns {
  std::string ns = "pkit-part-" + std::to_string(::getpid());
  std::string outer = "pkp" + std::to_string(::getpid()) + "o";
  std::string inner = "pkp" + std::to_string(::getpid()) + "i";
  std::string subnet = "10.231." + std::to_string(::getpid() % 250) + ".";
  std::string inner_address = subnet + "2";
  bool made = false;
  std::string why;

  veth_netns() {
    if (!shell("ip netns add " + ns)) {
      why = "cannot create a network namespace (ip netns add " + ns + ")";
      return;
    }
    const std::vector<std::string> steps{
        "ip link add " + outer + " type veth peer name " + inner,
        "ip link set " + inner + " netns " + ns,
        "ip addr add " + subnet + "1/30 dev " + outer,
        "ip link set " + outer + " up",
        "ip netns exec " + ns + " ip addr add " + inner_address + "/30 dev " + inner,
        "ip netns exec " + ns + " ip link set " + inner + " up",
        "ip netns exec " + ns + " ip link set lo up"};
    for (const auto& s : steps)
      if (!shell(s)) {
        why = "cannot set the veth pair up: " + s;
        return;
      }
    made = true;
  }
  ~veth_netns() {
    shell("ip link del " + outer);  // takes its peer with it
    shell("ip netns del " + ns);
  }
  veth_netns(const veth_netns&) = delete;
  veth_netns& operator=(const veth_netns&) = delete;

  /// Cuts (false) or restores (true) the link, from the root side.
  bool link(bool up) { return shell("ip link set " + outer + (up ? " up" : " down")); }
};

/// make-certs.sh's trusted pair: node "a" (both nodes use it: pkit checks no names) and
/// controller "main".
void make_certs(const std::string& dir) {
  const std::string cmd = "bash '" PKIT_MAKE_CERTS "' --node a --controller main '" + dir + "' >/dev/null";
  BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, cmd);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_partitioned_node_is_node_down_and_stops_its_child_on_its_own) {
  veth_netns net;
  if (!net.made) {
    BOOST_TEST_MESSAGE("skipped: " << net.why);
    return;
  }
  pkit_test_common::temp_dir dir;
  const std::string certs = dir.file("certs");
  make_certs(certs);
  const std::vector<std::string> node_tls{"--tls-cert", certs + "/node-a.pem", "--tls-key", certs + "/node-a.key",
                                          "--tls-ca", certs + "/controller-ca.pem"};
  auto a_args = node_tls;
  a_args.insert(a_args.end(), {"--listen", net.inner_address + ":0"});
  node a(dir, "a", a_args, {"ip", "netns", "exec", net.ns});
  node b(dir, "b", node_tls);
  const std::string file = dir.file("tree.toml");
  write_file(file, tree_text(dir.file("ctl.sock"), net.inner_address + ":" + std::to_string(a.port),
                             "127.0.0.1:" + std::to_string(b.port),
                             "tls = { cert = \"" + certs + "/controller-main.pem\", key = \"" + certs +
                                 "/controller-main.key\", ca = \"" + certs + "/node-ca.pem\" }\n"));
  pkit_process run({"run", file, "--log-format", "json"});
  const pid_t first = first_run_on_a(run, a);

  // The link cut: no FIN, no RST; each side only notices the other's silence.
  auto t = lose_a(run, b, [&] { BOOST_REQUIRE(net.link(false)); });
  // The partition rule: a stops the lost controller's child after its own link timeout,
  // while still cut off.
  BOOST_TEST(wait_pid_gone(first, detection_bound), "a's child outlived a's own link timeout");
  const auto first_gone = clock_type::now();
  BOOST_TEST_MESSAGE("cut -> a's child gone (on a's own): " << ms(first_gone - t.silent) << " ms; far ran twice for "
                                                            << ms(first_gone - t.ready) << " ms (negative: never)");
  BOOST_TEST((first_gone - t.silent <= detection_bound));

  // Restored: nothing runs twice; a serves on, b's run is the one.
  BOOST_REQUIRE(net.link(true));
  BOOST_TEST(gone(first));
  BOOST_TEST(!gone(t.second), "far on b ended");
  BOOST_TEST(!gone(a.proc->pid()), "node a did not survive the partition");

  BOOST_REQUIRE(::kill(run.pid(), SIGTERM) == 0);
  BOOST_TEST(run.wait_exit().value_or(-1) == 0, run.stderr_text());
  BOOST_TEST(wait_pid_gone(t.second), "far outlived pkit run on b");
}
