// A run orphaned by its controller's loss and a respawn of the same id (net_node_agent_test,
// review 11 #4): the node never runs the two at once — the spawn is answered once the old
// run's process group is gone.

#include "node_fixture.hpp"
#include "tracer.hpp"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

using namespace node_test;

namespace {

/// A child that ignores its stop signal (sleep's default for SIGWINCH is to ignore it):
/// each stop takes its whole stop timeout, then SIGKILL.
/// Long enough for the test's steps on a loaded machine: the old run must still be there
/// when the respawn is sent.
process_spec stubborn_spec(std::int64_t stop_timeout_ms = 2000) {
  auto spec = sleep_spec("web");
  spec.stop_signal = SIGWINCH;
  spec.stop_timeout_ms = stop_timeout_ms;
  return spec;
}

/// Whether `list` still shows the run `pid` of `id` as running: false once the agent has
/// acted on its relay's loss (the run stopping, or forgotten).
bool listed_running(two_nodes& t, caf::scoped_actor& self, const std::string& id, std::int32_t pid) {
  for (const auto& c : t.list(self))
    if (c.id == id && c.pid == pid && c.state == pkit::actors::process_state::running)
      return true;
  return false;
}

/// Asks until the agent has acted on the loss of run `pid`'s relay (or an exit sent to its
/// process actor), at most `deadline`: the loss travels apart from the next request.
bool acted_on_loss(two_nodes& t, caf::scoped_actor& self, const std::string& id, std::int32_t pid) {
  for (const auto until = std::chrono::steady_clock::now() + deadline; std::chrono::steady_clock::now() < until;)
    if (!listed_running(t, self, id, pid)) return true;
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_respawn_of_an_orphaned_id_waits_until_the_old_run_is_gone) {
  two_nodes t;
  caf::scoped_actor self{*t.controller.sys};
  auto relay = t.make_relay(self);
  auto first = t.spawn(self, "web", stubborn_spec(), relay);
  BOOST_TEST_REQUIRE(static_cast<bool>(first), why(*t.controller.sys, first));
  const std::int32_t old_pid = t.first_pid(*first);
  BOOST_TEST_REQUIRE(old_pid > 0);
  // The controller's relay goes (as when the link is lost: its proxy on the node dies).
  caf::anon_send_exit(relay, caf::exit_reason::kill);
  // The relay's down travels apart from the next spawn: asked until the agent has acted on
  // it, so that the respawn comes while the old run is in its stop timeout (bounded).
  BOOST_TEST_REQUIRE(acted_on_loss(t, self, "web", old_pid), "the agent did not act on the relay's loss");
  BOOST_TEST_REQUIRE(pkit_test_proc::proc_exists(old_pid), "the old run ended before the respawn");
  // Nothing starts the old run again meanwhile, through the process actor it was given.
  self->request(*first, deadline, pkit::actors::start_atom_v)
      .receive([&](std::int32_t pid) { BOOST_TEST_ERROR("the retired child started again as " << pid); },
               [&](caf::error& e) {
                 auto ne = pkit::net::net_error_of(e);
                 BOOST_TEST_REQUIRE(ne.has_value(), t.controller.sys->render(e));
                 BOOST_TEST((ne->code == errc::node_child_retired), ne->message());
               });
  // The controller restarts it at once, through a new relay.
  auto second = t.spawn(self, "web", stubborn_spec(), t.make_relay(self));
  BOOST_TEST_REQUIRE(static_cast<bool>(second), why(*t.controller.sys, second));
  const std::int32_t new_pid = t.first_pid(*second);
  BOOST_TEST(new_pid > 0);
  BOOST_TEST(new_pid != old_pid);
  // Answered only once the old run was collected (its group empty): /proc has no trace of it.
  BOOST_TEST(!pkit_test_proc::proc_exists(old_pid), "two runs of 'web' at once on the node");
  BOOST_TEST(pkit_test_proc::is_running(new_pid));
  auto children = t.list(self);
  BOOST_TEST_REQUIRE(children.size() == 1u);
  BOOST_TEST(children[0].pid == new_pid);
}

BOOST_AUTO_TEST_CASE(another_id_does_not_wait_for_an_orphaned_run) {
  // Only the same id waits: a different child goes ahead while the old run stops.
  two_nodes t;
  caf::scoped_actor self{*t.controller.sys};
  auto relay = t.make_relay(self);
  auto first = t.spawn(self, "web", stubborn_spec(3000), relay);
  BOOST_TEST_REQUIRE(static_cast<bool>(first), why(*t.controller.sys, first));
  const std::int32_t old_pid = t.first_pid(*first);
  BOOST_TEST_REQUIRE(old_pid > 0);
  caf::anon_send_exit(relay, caf::exit_reason::kill);
  BOOST_TEST_REQUIRE(acted_on_loss(t, self, "web", old_pid), "the agent did not act on the relay's loss");
  auto other = t.spawn(self, "db", sleep_spec("db"), t.make_relay(self));
  BOOST_TEST_REQUIRE(static_cast<bool>(other), why(*t.controller.sys, other));
  // The old run ignores its stop signal for 3 s: still there when "db" started.
  BOOST_TEST(pkit_test_proc::proc_exists(old_pid));
  BOOST_TEST(wait_gone(old_pid));
  BOOST_TEST(reaped(old_pid));
}

// Spawns waiting for an orphaned run of their id take the node's child slots: beyond
// max_children they are refused at once, while the old run still stops. Before, they were
// held without a bound (each with its spec, up to 128 KiB) — a peer could repeat the
// orphaning and flood spawns of that id (review 20b #5).
BOOST_AUTO_TEST_CASE(spawns_waiting_for_an_orphaned_run_count_toward_the_child_limit) {
  two_nodes t{3};
  caf::scoped_actor self{*t.controller.sys};
  auto relay = t.make_relay(self);
  auto first = t.spawn(self, "web", stubborn_spec(3000), relay);
  BOOST_TEST_REQUIRE(static_cast<bool>(first), why(*t.controller.sys, first));
  const std::int32_t old_pid = t.first_pid(*first);
  caf::anon_send_exit(relay, caf::exit_reason::kill);
  BOOST_TEST_REQUIRE(acted_on_loss(t, self, "web", old_pid), "the agent did not act on the relay's loss");
  // The old run holds a slot; two spawns may wait beside it, the third is one too many.
  auto waiting = t.make_relay(self);
  for (int i = 0; i < 2; ++i) self->send(t.remote, pkit::net::node_spawn_atom_v, std::string("web"), stubborn_spec(), waiting);
  auto over = t.spawn(self, "web", stubborn_spec(), waiting);
  BOOST_TEST_REQUIRE(!over, "a spawn beyond the limit was let in");
  auto ne = pkit::net::net_error_of(over.error());
  BOOST_TEST_REQUIRE(ne.has_value(), t.controller.sys->render(over.error()));
  BOOST_TEST((ne->code == errc::node_child_limit), ne->message());
  BOOST_TEST(pkit_test_proc::proc_exists(old_pid), "the refusal waited for the old run's end");
  BOOST_TEST(wait_gone(old_pid));
}

BOOST_AUTO_TEST_CASE(an_exit_sent_to_the_process_actor_is_an_orphan_awaited_too) {
  // A controller's relay that ends sends an exit to the process actor it was given: the
  // run is stopped as an orphan, and a respawn of its id waits for its end as well.
  two_nodes t;
  caf::scoped_actor self{*t.controller.sys};
  auto first = t.spawn(self, "web", stubborn_spec(), t.make_relay(self));
  BOOST_TEST_REQUIRE(static_cast<bool>(first), why(*t.controller.sys, first));
  const std::int32_t old_pid = t.first_pid(*first);
  BOOST_TEST_REQUIRE(old_pid > 0);
  self->monitor(*first);
  self->send_exit(*first, caf::exit_reason::user_shutdown);  // as the controller's relay does
  BOOST_TEST_REQUIRE(wait_down(self).has_value(), "the process actor handed out did not end");
  BOOST_TEST_REQUIRE(acted_on_loss(t, self, "web", old_pid), "the agent did not act on the exit");
  BOOST_TEST_REQUIRE(pkit_test_proc::proc_exists(old_pid), "the old run ended before the respawn");
  auto second = t.spawn(self, "web", stubborn_spec(), t.make_relay(self));
  BOOST_TEST_REQUIRE(static_cast<bool>(second), why(*t.controller.sys, second));
  BOOST_TEST(!pkit_test_proc::proc_exists(old_pid), "two runs of 'web' at once on the node");
  BOOST_TEST(pkit_test_proc::is_running(t.first_pid(*second)));
}

// A respawn waits for the old run at most that run's stop bound (its stop timeout + a
// margin): a run whose exit never comes — here a child held, once SIGKILLed, by a tracer
// that never waits (a hung crash reporter, a stopped `strace -p`) — is not waited for
// forever, nor is a second instance started beside it: the respawn is refused as
// node_previous_run_stuck, and the agent goes on serving.
BOOST_AUTO_TEST_CASE(a_respawn_is_refused_when_the_orphaned_run_outlives_its_stop) {
  two_nodes t;
  caf::scoped_actor self{*t.controller.sys};
  auto relay = t.make_relay(self);
  auto first = t.spawn(self, "web", stubborn_spec(100), relay);
  BOOST_TEST_REQUIRE(static_cast<bool>(first), why(*t.controller.sys, first));
  const std::int32_t old_pid = t.first_pid(*first);
  BOOST_TEST_REQUIRE(old_pid > 0);
  pkit_test_common::tracer holder(old_pid);  // the last made, the first ended
  PKIT_TEST_REQUIRE_TRACED(holder);
  const auto lost = std::chrono::steady_clock::now();
  caf::anon_send_exit(relay, caf::exit_reason::kill);
  BOOST_TEST_REQUIRE(acted_on_loss(t, self, "web", old_pid), "the agent did not act on the relay's loss");
  // Its stop ends in SIGKILL after 100 ms; the tracer keeps the zombie from the node.
  auto second = t.spawn(self, "web", stubborn_spec(100), t.make_relay(self));
  const auto took = std::chrono::steady_clock::now() - lost;
  BOOST_TEST_REQUIRE(!second, "a second run of 'web' started while the first could not be collected");
  const auto refusal = pkit::net::net_error_of(second.error());
  BOOST_TEST_REQUIRE(refusal.has_value(), t.controller.sys->render(second.error()));
  BOOST_TEST((refusal->code == errc::node_previous_run_stuck), refusal->message());
  // Not at the stop timeout (100 ms): at the stop's bound, which adds the agent's margin
  // for a loaded machine (5 s, node_agent.cpp) to it.
  BOOST_TEST((took >= 1s), "refused before the old run's stop bound had passed");
  // The agent still serves: another id starts at once.
  auto other = t.spawn(self, "db", sleep_spec("db"), t.make_relay(self));
  BOOST_TEST(static_cast<bool>(other), why(*t.controller.sys, other));
  // The tracer goes: the old run is collected after all, nothing of it is left.
  holder.end();
  BOOST_TEST(reaped(old_pid));
}
