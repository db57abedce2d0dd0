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
#include <caf/message_handler.hpp>
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

  /// `timing`: its heartbeats must come well within the node's --timeout.
  explicit peer(std::uint16_t port, pkit::net::link_timing timing = {1s, 5s}) {
    cfg.load<caf::io::middleman>();
    pkit::net::init(cfg);
    BOOST_TEST_REQUIRE(!pkit::net::apply_link(cfg, timing).has_value());
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

namespace {

using tap_atom = caf::atom_constant<caf::atom("tap")>;

/// A controller's relay that also tells `sink` who asked it whether it still exists — the
/// node's tap for this child, whose address reaches the controller that way (CAF puts the
/// sender of every message that crosses a link in the registry) — and, as relay_impl,
/// holds that request unanswered.
caf::behavior tap_revealing_relay(caf::event_based_actor* self, caf::actor sink) {
  auto reports = pkit_test_common::relay_impl(self, sink);
  auto held = std::make_shared<std::vector<caf::response_promise>>();
  return caf::message_handler{[self, sink, held](pkit::actors::status_atom) {
           self->send(sink, tap_atom::value, caf::actor_cast<caf::actor>(self->current_sender()));
           held->push_back(self->make_response_promise());
           return held->back();
         }}
      .or_else(reports);
}

}  // namespace

// A peer learns the node's tap for its child (the tap asks the peer's relay whether it
// still exists) and sends it a child_exited for the child's running run, posing as the
// process actor it was handed (a routed message naming it as the sender). The tap took
// reports from that actor, which is exposed: it passed the forgery on to the controller
// as the child's exit — a supervisor would start a second instance of a program still
// running — and unregistered the child's process group from the guardian (review 20d,
// D2). The child must still die with its node.
/// A real `pkit node` (relay checks every second) and a peer with one child, `sleep 60`,
/// spawned through a tap_revealing_relay: the child's process actor, pid, run and tap.
struct tapped_child {
  pkit_test_common::temp_dir dir;
  std::unique_ptr<pkit_node_process> node;
  std::unique_ptr<peer> p;
  std::unique_ptr<caf::scoped_actor> self;
  process_actor proc;
  std::int32_t pid = 0;
  std::uint64_t run = 0;
  caf::actor tap;

  tapped_child() {
    const std::string allow = dir.file("allow.toml");
    std::ofstream(allow) << "programs = [\"/usr/bin/sleep\"]\n" << (::geteuid() == 0 ? "default_user = \"nobody\"\n" : "");
    node = std::make_unique<pkit_node_process>(
        std::vector<std::string>{"--allow", allow, "--name", "forged", "--heartbeat", "200ms", "--timeout", "1s"});
    auto port = node->wait_listening();
    BOOST_TEST_REQUIRE(port.has_value(), node->stderr_text());
    p = std::make_unique<peer>(*port, pkit::net::link_timing{200ms, 5s});  // the node drops it silent for 1 s
    self = std::make_unique<caf::scoped_actor>(*p->sys);
    auto& me = *self;
    p->relays.push_back(p->sys->spawn(tap_revealing_relay, caf::actor_cast<caf::actor>(me)));
    pkit::actors::process_spec spec;
    spec.name = "mine";
    spec.argv = {"/usr/bin/sleep", "60"};
    spec.stop_timeout_ms = 1000;
    me->request(p->node, within, pkit::net::node_spawn_atom_v, std::string{"mine"}, std::move(spec), p->relays.back())
        .receive([&](process_actor& x, std::int32_t) { proc = std::move(x); },
                 [&](caf::error& e) { BOOST_TEST_REQUIRE(false, p->sys->render(e)); });
    me->receive_while([&] { return pid == 0 || !tap; })(
        [&](pkit::actors::child_started_atom, std::string&, std::uint64_t inc, std::int32_t x) {
          pid = x;
          run = inc;
        },
        [&](tap_atom, caf::actor& t) { tap = std::move(t); },
        caf::after(within) >> [&] { BOOST_TEST_REQUIRE(false, "no child_started or no relay check from the node"); });
    BOOST_TEST_REQUIRE(pid > 1);
  }
};

BOOST_AUTO_TEST_CASE(a_child_exited_forged_as_its_process_actor_reaches_no_one_and_unwatches_nothing) {
  tapped_child t;
  auto& self = *t.self;
  auto& node = *t.node;
  const auto& proc = t.proc;
  const auto& tap = t.tap;
  const auto pid = t.pid;

  caf::send_as(caf::actor_cast<caf::actor>(proc), tap, pkit::actors::child_exited_atom_v, std::string{"mine"}, t.run,
               pkit::exit_status::exited(0));
  // Three more relay checks: the tap handled the forgery before it sent the third (the
  // forgery was in its mailbox, on loopback, within the two periods before the timer
  // message that sends it).
  int checks = 0;
  bool forged_exit_reached_the_relay = false;
  self->receive_while([&] { return checks < 3; })(
      [&](tap_atom, caf::actor&) { ++checks; },
      [&](pkit::actors::child_exited_atom, std::string&, std::uint64_t, pkit::exit_status) {
        forged_exit_reached_the_relay = true;
      },
      [&](pkit::actors::child_ready_atom, std::string&, std::uint64_t, std::int32_t) {},
      caf::after(within) >> [&] { BOOST_TEST_REQUIRE(false, "the node's tap stopped checking its relay"); });
  BOOST_TEST(!forged_exit_reached_the_relay, "the tap passed a forged child_exited on to the controller");
  BOOST_TEST(::kill(pid, 0) == 0);

  BOOST_REQUIRE(::kill(node.pid(), SIGKILL) == 0);
  BOOST_TEST(wait_pid_gone(pid, 5s), "the child outlived its node");
}

// A peer that learnt the tap sends it the tap's own timer message (the atom it was, 50
// times: each one started another endless chain of checks, a request to the controller
// per chain and period) and sends the front, the tap and the process actor a message no
// one handles (CAF's default printed it, the peer's bytes unescaped, on the node's
// stdout). Neither does anything: the checks go on at one per period, and the node's
// stdout holds its "listening" line only.
BOOST_AUTO_TEST_CASE(a_peers_timer_messages_and_unhandled_messages_change_nothing) {
  tapped_child t;
  auto& self = *t.self;
  const auto relaycheck = caf::atom("relaycheck");
  for (int i = 0; i < 50; ++i) self->send(t.tap, relaycheck);
  const std::string hostile = "\x1b]0;owned\x07\x1b[2J";
  for (const auto& to : {caf::actor_cast<caf::actor>(t.p->node), t.tap, caf::actor_cast<caf::actor>(t.proc)})
    self->send(to, hostile);
  // 2.5 periods: about 3 checks; 50 more chains would have asked at once.
  int checks = 0;
  const auto window_end = std::chrono::steady_clock::now() + 2500ms;
  for (auto now = std::chrono::steady_clock::now(); now < window_end; now = std::chrono::steady_clock::now())
    self->receive([&](tap_atom, caf::actor&) { ++checks; },
                  [](pkit::actors::child_ready_atom, std::string&, std::uint64_t, std::int32_t) {},
                  [](caf::error&) {},  // the node's answers to what it does not handle
                  caf::after(std::chrono::duration_cast<std::chrono::milliseconds>(window_end - now)) >> [] {});
  BOOST_TEST(checks <= 5, checks << " relay checks in 2.5 s, one per second expected");
  BOOST_TEST(::kill(t.pid, 0) == 0, t.node->stderr_text());
  BOOST_REQUIRE(::kill(t.node->pid(), SIGTERM) == 0);
  BOOST_TEST(t.node->wait_exit().value_or(-1) == 0, t.node->stderr_text());
  BOOST_TEST(t.node->stdout_text().find("unexpected") == std::string::npos, t.node->stdout_text());
  BOOST_TEST(t.node->stdout_text().find('\x1b') == std::string::npos);
}
