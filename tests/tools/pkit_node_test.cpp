// `pkit node` end to end: the real binary as a separate process, a controller in this
// process (an actor system with pkit::net::init connected over plain BASP on 127.0.0.1).
// Every wait is on an event — the node's printed line, a stderr line, a reply, a pidfd —
// bounded by a deadline; never a sleep.

#define BOOST_TEST_MODULE pkit_node
#include <boost/test/unit_test.hpp>

#include <test_relay.hpp>

#include "pkit_node_process.hpp"
#include "temp_dir.hpp"
#include "test_child_path.hpp"

#include <pkit/actors/messages.hpp>
#include <pkit/net/link_timing.hpp>
#include <pkit/net/node_agent.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>

#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using pkit::actors::process_actor;
using pkit::actors::process_spec;
using pkit::net::node_actor;
using pkit_test_tools::pkit_node_process;
using pkit_test_tools::wait_pid_gone;

constexpr auto deadline = 20s;
const std::string sleep_path = "/usr/bin/sleep";

/// tests/helper/pkit_test_child, spelled as its resolved path (validate() wants that).
std::string test_child() { return std::filesystem::canonical(pkit_test_common::child_path()).string(); }

/// A scratch directory with an allow-list that lets controllers run /usr/bin/sleep (as
/// nobody when the tests run as root: a root node needs a user for remote children).
struct allow_file {
  pkit_test_common::temp_dir dir;
  std::string path = dir.file("allow.toml");

  explicit allow_file(const std::string& text = "") {
    std::ofstream out(path);
    if (!text.empty()) {
      out << text;
      return;
    }
    out << "programs = [\"" << sleep_path << "\", \"" << test_child() << "\"]\n";
    if (::geteuid() == 0) out << "default_user = \"nobody\"\n";
  }
};

using pkit_test_common::relay_impl;

/// The test process as a controller: its own actor system, connected to a node's port.
struct controller {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  node_actor node;
  std::vector<caf::actor> relays;

  /// Without `heartbeats`, the controller falls silent when idle.
  explicit controller(std::uint16_t port, bool heartbeats = true) {
    cfg.load<caf::io::middleman>();
    pkit::net::init(cfg);
    if (heartbeats) {
      auto bad = pkit::net::apply_link(cfg, pkit::net::link_timing{1s, 5s});
      BOOST_TEST_REQUIRE(!bad.has_value());
    } else {
      cfg.set("middleman.app-identifiers", std::vector<std::string>{pkit::net::app_identifier});
    }
    sys = std::make_unique<caf::actor_system>(cfg);
    auto r = sys->middleman().remote_actor<node_actor>("127.0.0.1", port);
    BOOST_TEST_REQUIRE(static_cast<bool>(r), (r ? "" : sys->render(r.error())));
    node = *r;
  }

  /// Ends the relays (they would keep the actor system from shutting down).
  ~controller() {
    for (const auto& r : relays) caf::anon_send_exit(r, caf::exit_reason::kill);
  }

  /// A relay forwarding reports to `sink`, ended with this controller.
  caf::actor make_relay(caf::scoped_actor& sink) {
    relays.push_back(sys->spawn(relay_impl, caf::actor_cast<caf::actor>(sink)));
    return relays.back();
  }

  /// The spawn's reply: the process actor (started: its pid in `pid`), or the refusal.
  caf::expected<process_actor> spawn(caf::scoped_actor& self, const std::string& id, process_spec spec,
                                     caf::actor relay, std::int32_t* pid = nullptr) {
    caf::expected<process_actor> out{caf::sec::request_timeout};
    self->request(node, deadline, pkit::net::node_spawn_atom_v, id, std::move(spec), std::move(relay))
        .receive(
            [&](process_actor& p, std::int32_t started) {
              if (pid != nullptr) *pid = started;
              out = std::move(p);
            },
            [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// Spawns `id` running `sleep 60` (the spec's default stop timeout) and starts it,
  /// requiring success: its process actor, its pid in `pid`.
  process_actor spawn_sleep(caf::scoped_actor& self, const std::string& id, caf::actor relay, std::int32_t& pid) {
    process_spec spec;
    spec.name = id;
    spec.argv = {sleep_path, "60"};
    auto proc = spawn(self, id, std::move(spec), std::move(relay), &pid);
    BOOST_TEST_REQUIRE(static_cast<bool>(proc), (proc ? "" : sys->render(proc.error())));
    return *proc;
  }

  /// Spawns `id` running `argv` (default: sleep 60) and starts it; its pid (0 on failure).
  std::int32_t run_sleep(caf::scoped_actor& self, const std::string& id, caf::actor relay,
                         std::vector<std::string> argv = {sleep_path, "60"}, std::int64_t stop_timeout_ms = 5000) {
    process_spec spec;
    spec.name = id;
    spec.argv = std::move(argv);
    spec.stop_timeout_ms = stop_timeout_ms;
    std::int32_t pid = 0;
    auto proc = spawn(self, id, std::move(spec), std::move(relay), &pid);
    BOOST_TEST_REQUIRE(static_cast<bool>(proc), (proc ? "" : sys->render(proc.error())));
    return pid;
  }
};

bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

/// The node's exit code, -1 when it did not exit within the deadline.
int exit_of(pkit_node_process& node) { return node.wait_exit().value_or(-1); }

}  // namespace

BOOST_AUTO_TEST_CASE(it_prints_its_port_runs_an_allowed_program_and_stops_it_on_sigterm) {
  allow_file allow;
  pkit_node_process node({"--allow", allow.path, "--name", "test-node"});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  BOOST_TEST(*port > 0);
  BOOST_TEST(node.stdout_text() == "listening on 127.0.0.1:" + std::to_string(*port) + "\n");
  controller c{*port};
  caf::scoped_actor self{*c.sys};
  self->request(c.node, deadline, pkit::net::node_hello_atom_v, pkit::net::node_protocol_version)
      .receive([&](pkit::net::node_info& info) { BOOST_TEST(info.name == "test-node"); },
               [&](caf::error& e) { BOOST_TEST_ERROR(c.sys->render(e)); });
  auto relay = c.make_relay(self);
  // The child records the SIGTERM it gets (and lives on until the stop timeout's SIGKILL):
  // the node stopped it per its spec, not by killing it. Written as the node's user for
  // remote children: the directory and file let anyone append.
  std::filesystem::permissions(allow.dir.path(), std::filesystem::perms(0711));
  const std::string record = allow.dir.file("term.log");
  std::ofstream{record}.flush();
  std::filesystem::permissions(record, std::filesystem::perms(0666));
  const auto pid = c.run_sleep(self, "recorder", relay, {test_child(), "record-term", record}, 1000);
  BOOST_TEST_REQUIRE(alive(pid), node.stderr_text());
  // Never the node's own stdin (a pipe here, an operator's terminal elsewhere).
  const auto fd0 = [](pid_t p) { return std::filesystem::read_symlink("/proc/" + std::to_string(p) + "/fd/0").string(); };
  BOOST_TEST(fd0(node.pid()).starts_with("pipe:"), fd0(node.pid()));
  BOOST_TEST(fd0(pid) == "/dev/null");
  BOOST_TEST_REQUIRE(node.wait_stdout("ready").has_value());  // its handler is set up
  ::kill(node.pid(), SIGTERM);
  BOOST_TEST(wait_pid_gone(pid));
  BOOST_TEST(exit_of(node) == 0, node.stderr_text());
  std::ifstream in(record);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(text == "TERM " + std::to_string(pid) + "\n");
}

BOOST_AUTO_TEST_CASE(a_program_outside_the_allow_list_is_refused_naming_it) {
  allow_file allow;
  pkit_node_process node({"--allow", allow.path});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  controller c{*port};
  caf::scoped_actor self{*c.sys};
  auto relay = c.make_relay(self);
  process_spec spec;
  spec.name = "cat";
  spec.argv = {"/usr/bin/cat"};
  auto proc = c.spawn(self, "cat", spec, relay);
  BOOST_TEST_REQUIRE(!proc);
  auto refusal = pkit::net::net_error_of(proc.error());
  BOOST_TEST_REQUIRE(refusal.has_value(), c.sys->render(proc.error()));
  BOOST_TEST(refusal->subject == "argv[0]");
  BOOST_TEST(refusal->code == pkit::net::errc::spec_program_not_allowed);
  // The node's operator is told too, with the program.
  auto line = node.wait_stderr("refused");
  BOOST_TEST_REQUIRE(line.has_value(), node.stderr_text());
  BOOST_TEST(line->find("/usr/bin/cat") != std::string::npos, *line);
  // The node serves on.
  BOOST_TEST(alive(c.run_sleep(self, "after", relay)));
}

BOOST_AUTO_TEST_CASE(a_sigkilled_node_leaves_no_child_behind) {
  allow_file allow;
  pkit_node_process node({"--allow", allow.path});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  controller c{*port};
  caf::scoped_actor self{*c.sys};
  auto relay = c.make_relay(self);
  const auto pid = c.run_sleep(self, "sleeper", relay);
  BOOST_TEST_REQUIRE(alive(pid));
  ::kill(node.pid(), SIGKILL);
  BOOST_TEST(exit_of(node) == 128 + SIGKILL);
  BOOST_TEST(wait_pid_gone(pid));
}

BOOST_AUTO_TEST_CASE(a_sigkilled_node_leaves_no_grandchild_behind) {
  // The child forks a grandchild into its process group and exits: no parent-death signal
  // reaches the grandchild when the node dies; the guardian does, through the group.
  allow_file allow;
  pkit_node_process node({"--allow", allow.path});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  controller c{*port};
  caf::scoped_actor self{*c.sys};
  auto relay = c.make_relay(self);
  BOOST_TEST_REQUIRE(c.run_sleep(self, "holder", relay, {test_child(), "spew-hold", "0"}) > 0);
  // The child's stderr is the node's: "holder PID".
  auto line = node.wait_stderr("holder ");
  BOOST_TEST_REQUIRE(line.has_value(), node.stderr_text());
  const auto grandchild = static_cast<pid_t>(std::stol(line->substr(line->rfind(' ') + 1)));
  BOOST_TEST_REQUIRE(alive(grandchild));
  ::kill(node.pid(), SIGKILL);
  BOOST_TEST(exit_of(node) == 128 + SIGKILL);
  const bool gone = wait_pid_gone(grandchild);
  BOOST_TEST(gone);
  if (!gone) ::kill(grandchild, SIGKILL);  // leave nothing behind on this machine
}

// A peer reaches the front by design, and CAF lets it send an exit signal: one it may
// trap is ignored (the front serves on); `kill` ends the front, and the node stops —
// failing, its children stopped — rather than listen serving no one (review 20b #1:
// before, the node never exited, and a supervisor of it never restarted it). The agent
// answers through the front: the hello's reply comes from the front itself, so no peer
// learns the agent's address (before, the front delegated: the agent answered on the
// wire, and a peer's kill of it stopped every controller's children).
BOOST_AUTO_TEST_CASE(a_peers_exit_signal_is_ignored_and_a_kill_of_the_front_stops_the_node_failing) {
  allow_file allow;
  pkit_node_process node({"--allow", allow.path, "--name", "fenced"});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  controller c{*port};
  caf::scoped_actor self{*c.sys};
  caf::actor_addr answered_by;
  self->request(c.node, deadline, pkit::net::node_hello_atom_v, pkit::net::node_protocol_version)
      .receive([&](pkit::net::node_info&) { answered_by = caf::actor_cast<caf::actor_addr>(self->current_sender()); },
               [&](caf::error& e) { BOOST_TEST_ERROR(c.sys->render(e)); });
  BOOST_TEST((answered_by == c.node.address()), "the hello was answered by another actor than the front");
  auto relay = c.make_relay(self);
  const auto pid = c.run_sleep(self, "sleeper", relay);
  BOOST_TEST_REQUIRE(alive(pid), node.stderr_text());
  caf::anon_send_exit(c.node, caf::exit_reason::user_shutdown);
  BOOST_TEST(node.wait_stderr("ignored an exit signal sent anonymously").has_value(), node.stderr_text());
  self->send_exit(c.node, caf::exit_reason::user_shutdown);
  BOOST_TEST(node.wait_stderr("ignored an exit signal from a peer").has_value(), node.stderr_text());
  // An error message nobody asked for ends an actor by CAF's default.
  caf::anon_send(caf::actor_cast<caf::actor>(c.node), caf::make_error(caf::sec::runtime_error));
  BOOST_TEST(node.wait_stderr("ignored an error message nobody asked for").has_value(), node.stderr_text());
  // Posing as the front itself (a routed message naming the node's own actor).
  const auto front = caf::actor_cast<caf::actor>(c.node);
  caf::send_as(front, front, caf::exit_msg{c.node.address(), caf::exit_reason::user_shutdown});
  BOOST_TEST(node.wait_stderr("ignored an exit signal from a peer").has_value(), node.stderr_text());
  bool serves = false;
  self->request(c.node, deadline, pkit::net::node_list_atom_v)
      .receive([&](std::vector<pkit::net::node_child_info>& list) { serves = list.size() == 1u; },
               [&](caf::error& e) { BOOST_TEST_MESSAGE(c.sys->render(e)); });
  BOOST_TEST(serves, "the front did not serve on after a peer's exit signal");
  caf::anon_send_exit(c.node, caf::exit_reason::kill);
  BOOST_TEST(exit_of(node) == 1, node.stderr_text());
  BOOST_TEST(node.stderr_text().find("its front ended") != std::string::npos, node.stderr_text());
  BOOST_TEST(wait_pid_gone(pid));
}

// CAF erases an actor from its registry when it ends, and resolves the sender of a routed
// message that claims the node's own actor through that registry as the message arrives:
// a peer posing as an actor of the node that was exposed and had ended by then (here a
// child's process actor, its controller's relay gone) sends anonymously, never as the
// node. The front ignores an exit signal so sent and serves on. (One that ends while the
// forgery waits in a mailbox is another matter: README, "Security".)
BOOST_AUTO_TEST_CASE(posing_as_an_ended_actor_of_the_node_is_sending_anonymously) {
  allow_file allow;
  pkit_node_process node({"--allow", allow.path, "--name", "fenced"});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  controller c{*port};
  caf::scoped_actor self{*c.sys};
  auto relay = c.make_relay(self);
  std::int32_t pid = 0;
  const auto proc = c.spawn_sleep(self, "gone", relay, pid);
  self->monitor(proc);
  caf::anon_send_exit(relay, caf::exit_reason::kill);  // the node stops the child; its process actor ends
  bool ended = false;
  self->receive_while([&] { return !ended; })(
      [&](caf::down_msg& dm) { ended = dm.source == proc.address(); },
      [](pkit::actors::child_exited_atom, std::string&, std::uint64_t, pkit::exit_status) {},
      caf::after(deadline) >> [&] { BOOST_TEST_REQUIRE(false, "the child's process actor did not end"); });
  BOOST_TEST(wait_pid_gone(pid));
  const auto front = caf::actor_cast<caf::actor>(c.node);
  // The down_msg above can beat the node's registry: CAF 0.17.6 runs the monitor's
  // attachable (prepended, so first) before the registry's erase as an actor ends, so a
  // forgery sent at once may still resolve to the ending actor and be ignored as a peer's
  // signal rather than as an anonymous one. Either is ignored; the case is about the
  // latter, so it sends again until the registry has let go (each round consumes the
  // node's one line about it).
  bool anonymous = false;
  for (int round = 0; round < 5 && !anonymous; ++round) {
    caf::send_as(caf::actor_cast<caf::actor>(proc), front,
                 caf::exit_msg{proc.address(), caf::exit_reason::user_shutdown});
    auto line = node.wait_stderr("ignored an exit signal");
    BOOST_TEST_REQUIRE(line.has_value(), node.stderr_text());
    anonymous = line->find("sent anonymously") != std::string::npos;
  }
  BOOST_TEST(anonymous, node.stderr_text());
  bool serves = false;
  self->request(c.node, deadline, pkit::net::node_list_atom_v)
      .receive([&](std::vector<pkit::net::node_child_info>&) { serves = true; },
               [&](caf::error& e) { BOOST_TEST_MESSAGE(c.sys->render(e)); });
  BOOST_TEST(serves, "the front obeyed an exit signal posing as an ended actor of its node");
}

// The process actor a node hands out acts for the controller that asked for the child
// only: an anonymous stop — what another peer sends to an address it guessed (actor ids
// are small and sequential) — does nothing; the controller's own status then still finds
// the child running. Before, the guard forwarded any request to the child (review 20b #4).
BOOST_AUTO_TEST_CASE(a_childs_process_actor_takes_no_order_from_anyone_but_its_controller) {
  allow_file allow;
  pkit_node_process node({"--allow", allow.path});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  controller c{*port};
  caf::scoped_actor self{*c.sys};
  auto relay = c.make_relay(self);
  std::int32_t pid = 0;
  const auto proc = c.spawn_sleep(self, "guarded", relay, pid);
  caf::anon_send(proc, pkit::actors::stop_atom_v);
  caf::anon_send(proc, pkit::actors::signal_atom_v, std::int32_t{SIGKILL});
  // Posing as an actor of the node (its front): CAF 0.17.6 resolves such a routed sender
  // through the node's registry, so it arrives as the front itself (review 20c #1).
  caf::send_as(caf::actor_cast<caf::actor>(c.node), proc, pkit::actors::stop_atom_v);
  // An exit signal ends a process actor, and the node then stops its child: anonymous,
  // or posing as the front, it is ignored.
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
  caf::send_as(caf::actor_cast<caf::actor>(c.node), caf::actor_cast<caf::actor>(proc),
               caf::exit_msg{c.node.address(), caf::exit_reason::user_shutdown});
  // The same link carries all in order: the anonymous ones were handled before this.
  std::optional<pkit::actors::process_info> info;
  self->request(proc, deadline, pkit::actors::status_atom_v)
      .receive([&](pkit::actors::process_info& i) { info = i; }, [&](caf::error& e) { BOOST_TEST_ERROR(c.sys->render(e)); });
  BOOST_TEST_REQUIRE(info.has_value());
  BOOST_TEST((info->state == pkit::actors::process_state::running), "an anonymous stop reached the child");
  BOOST_TEST(info->pid == pid);
  BOOST_TEST(alive(pid));
  std::optional<pkit::exit_status> stopped;
  self->request(proc, deadline, pkit::actors::stop_atom_v)
      .receive([&](pkit::exit_status st) { stopped = st; }, [&](caf::error& e) { BOOST_TEST_ERROR(c.sys->render(e)); });
  BOOST_TEST(stopped.has_value(), "its controller's own stop was refused");
  BOOST_TEST(wait_pid_gone(pid));
  ::kill(node.pid(), SIGTERM);
  BOOST_TEST(exit_of(node) == 0, node.stderr_text());
}

BOOST_AUTO_TEST_CASE(a_controller_that_shuts_down_has_its_children_stopped) {
  // A controller that ends (its relays end, its actor system goes away) leaves no child
  // running on the node.
  allow_file allow;
  pkit_node_process node({"--allow", allow.path});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  std::int32_t pid = 0;
  {
    controller c{*port};
    caf::scoped_actor self{*c.sys};
    auto relay = c.make_relay(self);
    pid = c.run_sleep(self, "sleeper", relay);
    BOOST_TEST_REQUIRE(alive(pid));
    caf::anon_send_exit(relay, caf::exit_reason::user_shutdown);
    c.relays.clear();
  }
  auto line = node.wait_stderr("'sleeper'");
  BOOST_TEST(line.has_value(), node.stderr_text());
  BOOST_TEST(wait_pid_gone(pid));
  ::kill(node.pid(), SIGTERM);
  BOOST_TEST(exit_of(node) == 0);
}

BOOST_AUTO_TEST_CASE(a_stopping_node_refuses_spawns_and_starts_through_its_process_actors) {
  // Review 11 #14: while `pkit node` stops its children (SIGTERM), a controller restarting
  // one through the process actor it holds is refused, as is a new spawn; the node ends
  // with no child left and exit code 0.
  allow_file allow;
  pkit_node_process node({"--allow", allow.path, "--name", "test-node"});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  controller c{*port};
  caf::scoped_actor self{*c.sys};
  process_spec quick_spec;
  quick_spec.name = "quick";
  quick_spec.argv = {sleep_path, "60"};  // ends on its stop signal at once
  std::int32_t quick_pid = 0;
  auto quick = c.spawn(self, "quick", quick_spec, c.make_relay(self), &quick_pid);
  BOOST_TEST_REQUIRE(static_cast<bool>(quick), (quick ? "" : c.sys->render(quick.error())));
  // Ignores SIGTERM: holds the node's stop for its whole stop timeout.
  const auto slow_pid = c.run_sleep(self, "slow", c.make_relay(self), {test_child(), "ignore-term"}, 5000);
  BOOST_TEST_REQUIRE(node.wait_stdout("ready").has_value());
  ::kill(node.pid(), SIGTERM);
  BOOST_TEST_REQUIRE(node.wait_stderr("test-node: stopping").has_value(), node.stderr_text());
  // The quick run's end, as a supervisor sees it before it restarts the child.
  bool exited = false;
  bool timed_out = false;
  while (!exited && !timed_out)
    self->receive(
        [&](pkit::actors::child_exited_atom, std::string& id, std::uint64_t, pkit::exit_status&) {
          exited = id == "quick";
        },
        caf::after(deadline) >> [&] { timed_out = true; });
  BOOST_TEST_REQUIRE(exited, "the quick child's end was not reported");
  std::int32_t restarted = 0;
  self->request(*quick, deadline, pkit::actors::start_atom_v)
      .receive([&](std::int32_t pid) { restarted = pid; },
               [&](caf::error& e) {
                 auto ne = pkit::net::net_error_of(e);
                 BOOST_TEST_REQUIRE(ne.has_value(), c.sys->render(e));
                 BOOST_TEST((ne->code == pkit::net::errc::node_shutting_down), ne->message());
               });
  BOOST_TEST(restarted == 0, "restarted during the node's stop as pid " << restarted);
  auto late = c.spawn(self, "late", quick_spec, c.make_relay(self));
  BOOST_TEST_REQUIRE(!late, "a spawn went through during the node's stop");
  auto late_error = pkit::net::net_error_of(late.error());
  BOOST_TEST_REQUIRE(late_error.has_value(), c.sys->render(late.error()));
  BOOST_TEST((late_error->code == pkit::net::errc::node_shutting_down), late_error->message());
  BOOST_TEST(alive(slow_pid), "the node's stop was over before the refusals: they proved nothing");
  BOOST_TEST(exit_of(node) == 0, node.stderr_text());
  BOOST_TEST(wait_pid_gone(quick_pid));
  BOOST_TEST(wait_pid_gone(slow_pid));
  if (restarted > 0) BOOST_TEST(wait_pid_gone(restarted));
}

BOOST_AUTO_TEST_CASE(a_silent_controller_is_dropped_and_its_children_stopped) {
  // This controller sends no heartbeats: once idle, the node hears nothing from it for its
  // --timeout and drops the link, as for a controller whose machine is gone.
  allow_file allow;
  pkit_node_process node({"--allow", allow.path, "--heartbeat", "100ms", "--timeout", "1s"});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  controller c{*port, false};
  caf::scoped_actor self{*c.sys};
  auto relay = c.make_relay(self);
  const auto pid = c.run_sleep(self, "sleeper", relay);
  BOOST_TEST_REQUIRE(alive(pid));
  auto line = node.wait_stderr("controller lost for 'sleeper'");
  BOOST_TEST(line.has_value(), node.stderr_text());
  BOOST_TEST(wait_pid_gone(pid));
  ::kill(node.pid(), SIGTERM);
  BOOST_TEST(exit_of(node) == 0, node.stderr_text());
}

BOOST_AUTO_TEST_CASE(a_listener_beyond_loopback_without_tls_is_refused) {
  allow_file allow;
  pkit_node_process node({"--allow", allow.path, "--listen", "0.0.0.0:0"});
  BOOST_TEST(exit_of(node) == 4);
  const auto err = node.stderr_text();
  BOOST_TEST(err.find("0.0.0.0") != std::string::npos, err);
  BOOST_TEST(err.find("TLS") != std::string::npos, err);
  BOOST_TEST(node.stdout_text().empty());
}

BOOST_AUTO_TEST_CASE(a_node_without_an_allow_list_is_refused) {
  pkit_node_process node({});
  BOOST_TEST(exit_of(node) == 2);
  const auto err = node.stderr_text();
  BOOST_TEST(err.find("--allow") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(a_bad_allow_list_is_refused_naming_file_line_and_key) {
  allow_file allow{"programs = [\"/usr/bin/sleep\"]\n\n[limits]\nmax_arg = 3\n"};
  pkit_node_process node({"--allow", allow.path});
  BOOST_TEST(exit_of(node) == 6);
  const auto err = node.stderr_text();
  BOOST_TEST(err.find(allow.path + ":4:1: limits.max_arg: unknown key 'max_arg'; did you mean 'max_args'?") !=
                 std::string::npos,
             err);
  BOOST_TEST(node.stdout_text().empty());
}

BOOST_AUTO_TEST_CASE(an_allow_list_entry_the_list_check_refuses_is_placed_at_its_line) {
  // /usr/bin/bash runs whatever its arguments say: allow_list::check() refuses it, and the
  // file's error points at the entry.
  allow_file allow{"# a comment\nprograms = [\"/usr/bin/sleep\", \"/usr/bin/bash\"]\n"};
  pkit_node_process node({"--allow", allow.path});
  BOOST_TEST(exit_of(node) == 6);
  const auto err = node.stderr_text();
  BOOST_TEST(err.find(allow.path + ":2:31: programs[1]: ") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(the_cap_on_children_refuses_one_more) {
  allow_file allow;
  pkit_node_process node({"--allow", allow.path, "--max-children", "1"});
  auto port = node.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), node.stderr_text());
  controller c{*port};
  caf::scoped_actor self{*c.sys};
  auto relay = c.make_relay(self);
  BOOST_TEST_REQUIRE(alive(c.run_sleep(self, "one", relay)));
  process_spec spec;
  spec.name = "two";
  spec.argv = {sleep_path, "60"};
  auto refused = c.spawn(self, "two", spec, relay);
  BOOST_TEST_REQUIRE(!refused);
  auto why = pkit::net::net_error_of(refused.error());
  BOOST_TEST_REQUIRE(why.has_value(), c.sys->render(refused.error()));
  BOOST_TEST(why->code == pkit::net::errc::node_child_limit);
}

BOOST_AUTO_TEST_CASE(a_port_in_use_is_refused_with_its_own_code) {
  allow_file allow;
  pkit_node_process first({"--allow", allow.path});
  auto port = first.wait_listening();
  BOOST_TEST_REQUIRE(port.has_value(), first.stderr_text());
  pkit_node_process second({"--allow", allow.path, "--listen", "127.0.0.1:" + std::to_string(*port)});
  BOOST_TEST(exit_of(second) == 7, second.stderr_text());
  BOOST_TEST(second.stdout_text().empty());
}

BOOST_AUTO_TEST_CASE(an_ipv6_loopback_listener_prints_its_bracketed_address) {
  allow_file allow;
  pkit_node_process node({"--allow", allow.path, "--listen", "[::1]:0"});
  auto port = node.wait_listening();
  if (!port) {
    // A machine without IPv6 on loopback: cannot listen, said as such.
    BOOST_TEST(exit_of(node) == 7, node.stderr_text());
    return;
  }
  BOOST_TEST(node.stdout_text() == "listening on [::1]:" + std::to_string(*port) + "\n");
}

BOOST_AUTO_TEST_CASE(a_malformed_listen_address_is_a_usage_error) {
  allow_file allow;
  for (const char* bad : {"127.0.0.1", ":7000", "::1:7000", "127.0.0.1:70000", "127.0.0.1:x"}) {
    pkit_node_process node({"--allow", allow.path, "--listen", bad});
    BOOST_TEST(exit_of(node) == 2, bad);
    BOOST_TEST(node.stderr_text().find("--listen") != std::string::npos, node.stderr_text());
  }
}
