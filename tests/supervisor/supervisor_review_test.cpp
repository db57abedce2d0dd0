// Regression tests for the defects of issue 9's adversarial review (D2–D6 and hostile
// specs): each failed on the code before its fix. Children run tests/helper/pkit_test_child.

#define BOOST_TEST_MODULE pkit supervisor review
#include "supervisor_test_support.hpp"

#include "launcher.hpp"  // actors/src: pkit's launcher thread (D6)

#include <pkit/process.hpp>

#include "mute_placement.hpp"

#include <fstream>
#include <future>
#include <limits>

#include <fcntl.h>
#include <sys/stat.h>

using namespace sup_test;
using namespace std::chrono_literals;
using pa::restart_strategy;
using pa::restart_type;

namespace {

// The per-child facts a forged message must not change.
struct snapshot {
  std::string id;
  child_state state;
  std::int32_t pid;
  std::uint64_t incarnation;
  std::uint32_t restarts;
  bool operator==(const snapshot&) const = default;
};

std::vector<snapshot> snapshot_of(const std::vector<pa::child_info>& cs) {
  std::vector<snapshot> out;
  for (const auto& c : cs) out.push_back({c.id, c.state, c.pid, c.incarnation, c.automatic_restarts});
  return out;
}

std::string text_of(const std::vector<snapshot>& s) {
  std::string out;
  for (const auto& c : s)
    out += c.id + ":" + to_string(c.state) + " pid " + std::to_string(c.pid) + " #" + std::to_string(c.incarnation) +
           " restarts " + std::to_string(c.restarts) + "; ";
  return out;
}

// A worker that reports ready on fd 3 at once — unless `flag` exists: then it exits with
// `code` before it is ready (a failed start, with a process).
pa::child_spec flaky_worker(const std::string& id, const std::string& flag, int code) {
  pa::child_spec c;
  c.id = id;
  c.process.argv = {"/bin/sh", "-c",
                    "if [ -e \"$1\" ]; then exit " + std::to_string(code) + "; fi; exec \"$0\" notify 3 0 \"$2\"",
                    child_path(), flag, make_marker(id)};
  c.process.notify_fd = 3;
  c.shutdown_ms = 2000;
  return c;
}

void touch(const std::string& path) { std::ofstream(path).put('x'); }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(supervisor_review, sup_fixture)

// =====================================================================================
// D2: the supervisor's internal protocol cannot be forged
// =====================================================================================

// Before the fix child_started / child_ready / child_exited / restart were part of the
// public interface and accepted from anyone: the forged exits below restarted `b` and
// then took the supervisor down (restart_limit), the forged start wedged `a` at
// incarnation UINT64_MAX, and restart tokens (1, 2, ...) were guessable.
BOOST_AUTO_TEST_CASE(forged_child_reports_and_restart_tokens_are_ignored) {
  auto sup = start_sup(sup_spec("forged", restart_strategy::one_for_one,
                                {worker("a", {"pause"}), worker("b", {"pause"})}, 1, 60000));
  const auto before = snapshot_of(which(sup));
  auto raw = caf::actor_cast<caf::actor>(sup);
  const auto max = std::numeric_limits<std::uint64_t>::max();
  // Sent by `self`, so they are in the mailbox before the which_children request below.
  self->send(raw, pa::child_started_atom_v, std::string("a"), max, std::int32_t{1});
  self->send(raw, pa::child_ready_atom_v, std::string("a"), max, std::int32_t{1});
  for (std::uint64_t inc = 1; inc <= 3; ++inc)
    self->send(raw, pa::child_exited_atom_v, std::string("b"), before[1].incarnation + inc, exit_status::exited(1));
  for (std::uint64_t token = 0; token < 64; ++token) self->send(raw, pa::restart_atom_v, token);
  caf::anon_send(raw, pa::child_exited_atom_v, std::string("a"), max, exit_status::exited(1));
  const auto after = snapshot_of(which(sup));
  BOOST_TEST((after == before), "before: " << text_of(before) << " after: " << text_of(after));
  BOOST_TEST(alive(sup));
  drain();
  BOOST_TEST(events_since(0, ev(event_kind::exited)).empty(), history_text());
  BOOST_TEST(events_since(0, ev(event_kind::restarting)).empty(), history_text());
}

// A parent accepts "ready" for a nested supervisor only from the supervisor it spawned
// for that child: a forged one made `n` running while its own child was still starting.
BOOST_AUTO_TEST_CASE(a_forged_child_ready_does_not_complete_a_nested_supervisors_start) {
  auto inner = sup_spec("inner", restart_strategy::one_for_one, {notify_worker("slow", 1500)});
  auto sup = spawn_sup(sup_spec("outer", restart_strategy::one_for_one, {supervisor_child("n", inner)}),
                       {{caf::actor_cast<caf::actor>(events_actor), pa::all_events, true}});
  require(ev(event_kind::started, "slow"), "the inner child started");
  auto raw = caf::actor_cast<caf::actor>(sup);
  self->send(raw, pa::child_ready_atom_v, std::string("n"), std::uint64_t{1}, std::int32_t{0});
  BOOST_TEST(child(sup, "n").state == child_state::starting);
  BOOST_TEST_REQUIRE(await_boot(), "the outer supervisor did not complete its start");
  BOOST_TEST(child(sup, "n").state == child_state::running);
  BOOST_TEST(child(sup, "n").incarnation == 1u);
}

// =====================================================================================
// D3: a group restart whose start fails never leaves the group half stopped
// =====================================================================================

// one_for_all [a, b, c]: a dies, the group restarts, and b dies before it is ready — its
// min_uptime failure makes it FATAL. Before the fix the group's start plan was abandoned
// at b and c stayed stopped for ever (no restart, no give-up).
BOOST_AUTO_TEST_CASE(a_sibling_turning_fatal_in_a_group_restart_leaves_the_rest_of_the_group_running) {
  temp_dir dir;
  const std::string flag = dir.file("fail");
  auto spec = sup_spec("fatal-group", restart_strategy::one_for_all,
                       {worker("a", {"pause"}), flaky_worker("b", flag, 1), worker("c", {"pause"})}, 5, 60000);
  spec.flags.min_uptime_ms = 300;
  spec.flags.max_failed_starts = 1;
  auto sup = start_sup(spec);
  const pid_t c_pid = child(sup, "c").pid;
  touch(flag);
  // The condition is elapsed time itself: a's death must not be a failed start.
  std::this_thread::sleep_for(400ms);
  ::kill(child(sup, "a").pid, SIGKILL);
  require(ev(event_kind::fatal, "b"), "b turned FATAL");
  require(ev(event_kind::ready, "c", 2), "c ready again after the group restart");
  const auto c = child(sup, "c");
  BOOST_TEST((c.state == child_state::running && c.pid != c_pid && c.pid > 0));
  BOOST_TEST((child(sup, "a").state == child_state::running));
  BOOST_TEST((child(sup, "b").state == child_state::fatal));
  BOOST_TEST(alive(sup));
}

// one_for_all [a, b (transient), c]: in the group restart after a's death, b exits 0
// before it is ready. A failed start is no normal exit: b must be restarted (here it
// fails again, so the supervisor gives up). Before the fix b counted as a transient
// child's success, was left stopped, and so was c: a silent half-stopped group.
BOOST_AUTO_TEST_CASE(a_transient_child_exiting_0_before_ready_in_a_group_restart_is_a_failed_start) {
  temp_dir dir;
  const std::string flag = dir.file("fail");
  auto b = flaky_worker("b", flag, 0);
  b.restart = restart_type::transient;
  auto sup = start_sup(sup_spec("transient-group", restart_strategy::one_for_all,
                                {worker("a", {"pause"}), b, worker("c", {"pause"})}, 1, 60000));
  touch(flag);
  ::kill(child(sup, "a").pid, SIGKILL);
  auto reason = await_down(sup);
  BOOST_TEST_REQUIRE(reason.has_value(), "the supervisor neither restarted b nor gave up; events:" << history_text());
  BOOST_TEST(is_error(*reason, pa::error::restart_limit), render(*reason));
  // Its exit tells the failed start, not the run before it (review 15 #4: the group
  // restart's stop, kind stopped, with the status of the exit 0).
  const auto failed = require(
      [](const pa::supervisor_event& e) {
        return e.kind == event_kind::exited && e.child == "b" && e.has_status && !e.status.is_killed() &&
               e.status.code() == 0;
      },
      "b's failed start told");
  BOOST_TEST((failed.end.kind == pa::end_kind::start_failed), failed.reason << "; " << history_text());
  BOOST_TEST(failed.reason.find("ready") != std::string::npos, failed.reason);
}

namespace {

// A worker ready on fd 3 only once it has read a line from the FIFO `gate` (then as
// notify_worker with no delay): each of its runs waits for a line of its own.
pa::child_spec gated_worker(const std::string& id, const std::string& gate) {
  pa::child_spec c;
  c.id = id;
  c.process.argv = {"/bin/sh", "-c", "read line < \"$1\" && exec \"$0\" notify 3 0 \"$2\"",
                    child_path(), gate, make_marker(id)};
  c.process.notify_fd = 3;
  c.shutdown_ms = 2000;
  return c;
}

}  // namespace

// one_for_all [a, b, c], started in order. a is ready, b waits for its readiness, and a
// dies: the group restart marks a, b and c, and its stop plan waits behind the initial
// start, which then starts c. Before the fix that start took c out of the restart (it
// cleared c's mark), the restart's stop then stopped c and its start skipped it: c, a
// permanent child, stayed stopped for good — no restart, no event. OTP: the start
// completes (c is started), then the restart terminates the group and starts it again.
BOOST_AUTO_TEST_CASE(a_group_restart_decided_during_a_start_sequence_starts_again_the_members_it_stopped) {
  temp_dir dir;
  const std::string gate = dir.file("b.gate");
  BOOST_TEST_REQUIRE(::mkfifo(gate.c_str(), 0600) == 0);
  // Held open for reading and writing: b's open of it never waits, and a line written is
  // there for b's next read, whenever b comes to it.
  struct fd_guard {
    int fd;
    ~fd_guard() {
      if (fd >= 0) ::close(fd);
    }
  } held{::open(gate.c_str(), O_RDWR | O_CLOEXEC)};
  BOOST_TEST_REQUIRE(held.fd >= 0);
  const auto release_b = [&held] { BOOST_TEST_REQUIRE(::write(held.fd, "\n", 1) == 1); };
  auto sup = spawn_sup(sup_spec("late-group", restart_strategy::one_for_all,
                                {worker("a", {"pause"}), gated_worker("b", gate), worker("c", {"pause"})}, 5, 60000));
  const auto a1 = require(ev(event_kind::ready, "a"), "a ready");
  const auto b1 = require(ev(event_kind::started, "b"), "b started (waiting for its gate)");
  BOOST_TEST_REQUIRE(::kill(a1.pid, SIGKILL) == 0);
  require(ev(event_kind::restarting, "a"), "a's death decided a group restart");
  BOOST_TEST_REQUIRE((child(sup, "c").state == child_state::stopped), "c was started before b was ready");
  release_b();  // the initial start goes on: b is ready, then c is started
  BOOST_TEST_REQUIRE(await_boot(), "the initial start did not complete");
  // The group restart: c and b stopped, then a, b and c started in order.
  const auto b2 = require(
      [&](const pa::supervisor_event& e) { return e.kind == event_kind::started && e.child == "b" && e.pid != b1.pid; },
      "b started by the group restart");
  release_b();
  require([&](const pa::supervisor_event& e) { return e.kind == event_kind::ready && e.child == "b" && e.pid == b2.pid; },
          "b ready again");
  // b's ready completes its step, and the restart's plan starts c in the same turn.
  BOOST_TEST_REQUIRE((child(sup, "c").state != child_state::stopped),
                     "the group restart left c stopped; events:" << history_text());
  const auto c2 = require(ev(event_kind::ready, "c", 2), "c ready again after the group restart");
  const auto c = child(sup, "c");
  BOOST_TEST((c.state == child_state::running && c.pid == c2.pid));
  BOOST_TEST(c.automatic_restarts == 0u, "c's own restart was counted");
  std::vector<std::string> c_trace;
  for (const auto& e : history)
    if (e.child == "c") c_trace.push_back(to_string(e.kind));
  BOOST_TEST((c_trace == std::vector<std::string>{"started", "ready", "stopped", "started", "ready"}), history_text());
  BOOST_TEST(events_since(0, ev(event_kind::restarting)).size() == 1u, "one restart: a's" << history_text());
  BOOST_TEST((child(sup, "a").state == child_state::running));
  BOOST_TEST((child(sup, "b").state == child_state::running));
  BOOST_TEST(alive(sup));
}

// =====================================================================================
// Hostile specs: invalid_spec, never UB, a hang or a stack overflow
// =====================================================================================

BOOST_AUTO_TEST_CASE(hostile_spec_values_are_refused_as_invalid_spec) {
  const auto huge = std::numeric_limits<std::int64_t>::max();
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  const auto inf = std::numeric_limits<double>::infinity();
  auto base = [] { return sup_spec("hostile", restart_strategy::one_for_one, {worker("w", {"pause"})}); };
  auto expect_bad = [&](const pa::supervisor_spec& s, const std::string& field) {
    const auto err = pa::check_supervisor_spec(s);
    BOOST_TEST(is_error(err, pa::error::invalid_spec), field << ": " << render(err));
    BOOST_TEST(render(err).find(field) != std::string::npos, field << ": " << render(err));
  };
  using mutate = std::function<void(pa::supervisor_spec&)>;
  const std::vector<std::pair<std::string, mutate>> cases{
      {"flags.strategy", [](auto& s) { s.flags.strategy = static_cast<restart_strategy>(200); }},
      {"flags.shutdown", [](auto& s) { s.flags.shutdown = static_cast<pa::auto_shutdown>(200); }},
      {"flags.report", [](auto& s) { s.flags.report = static_cast<pa::supervisor_report>(200); }},
      {"children[0] ('w').restart", [](auto& s) { s.children[0].restart = static_cast<restart_type>(200); }},
      {"flags.period_ms", [huge](auto& s) { s.flags.period_ms = huge; }},
      {"flags.min_uptime_ms", [huge](auto& s) { s.flags.min_uptime_ms = huge; }},
      {"flags.backoff.max_ms", [huge](auto& s) { s.flags.backoff.initial_ms = 1; s.flags.backoff.max_ms = huge; }},
      {"flags.backoff.reset_after_ms", [huge](auto& s) { s.flags.backoff.initial_ms = 1; s.flags.backoff.reset_after_ms = huge; }},
      {"flags.backoff.multiplier", [nan](auto& s) { s.flags.backoff.initial_ms = 1; s.flags.backoff.multiplier = nan; }},
      {"flags.backoff.multiplier", [inf](auto& s) { s.flags.backoff.initial_ms = 1; s.flags.backoff.multiplier = inf; }},
      {"children[0] ('w').shutdown_ms", [huge](auto& s) { s.children[0].shutdown_ms = huge; }},
      {"children[0] ('w').process.stop_timeout_ms", [huge](auto& s) { s.children[0].process.stop_timeout_ms = huge; }},
      {"children[0] ('w').process.ready_timeout_ms", [huge](auto& s) { s.children[0].process.ready_timeout_ms = huge; }},
      {"children[0] ('w').process.stdin_path", [](auto& s) { s.children[0].process.stdin_path = "capture"; }},
      {"children[0] ('w').process.stdin_path", [](auto& s) { s.children[0].process.stdin_path = std::string("in\0x", 4); }},
      {"children[0] ('w').process.stdout_path", [](auto& s) { s.children[0].process.stdout_path = std::string("/tmp/a\0b", 8); }},
      {"children[0] ('w').process.stderr_path", [](auto& s) { s.children[0].process.stderr_path = std::string("\0", 1); }},
      {"process.cwd", [](auto& s) { s.children[0].process.cwd = std::string("/\0tmp", 5); }},
      {"process.user", [](auto& s) { s.children[0].process.user = std::string("root\0x", 6); }},
      {"process.group", [](auto& s) { s.children[0].process.group = std::string("root\0x", 6); }},
      {"process.name", [](auto& s) { s.children[0].process.name = std::string("w\0x", 3); }},
      {"process.cwd", [](auto& s) { auto& p = s.children[0].process; p.argv.clear(); p.target = "t"; p.cwd = "/tmp"; }},
      {"process.env", [](auto& s) { auto& p = s.children[0].process; p.argv.clear(); p.target = "t"; p.env = {"A=1"}; }},
  };
  for (const auto& [field, change] : cases) {
    auto s = base();
    change(s);
    expect_bad(s, field);
  }
  // The supervisor itself refuses such a spec: it exits with invalid_spec, starting nothing.
  auto s = base();
  s.flags.strategy = static_cast<restart_strategy>(200);
  auto sup = spawn_sup(s);
  auto reason = await_down(sup);
  BOOST_TEST_REQUIRE(reason.has_value());
  BOOST_TEST(is_error(*reason, pa::error::invalid_spec), render(*reason));
}

namespace {
pa::supervisor_spec nested(int depth) {
  auto s = sup_spec("leaf", restart_strategy::one_for_one, {worker("w", {"pause"})});
  for (int i = 0; i < depth; ++i) {
    pa::supervisor_spec outer;
    outer.name = "n";
    outer.children.push_back(supervisor_child("n", std::move(s)));
    s = std::move(outer);
  }
  return s;
}
}  // namespace

// Before the fix the check recursed once per level: 10,000 levels overflowed its stack.
BOOST_AUTO_TEST_CASE(a_spec_nested_10000_deep_is_refused_without_overflowing_the_stack) {
  BOOST_TEST(!pa::check_supervisor_spec(nested(10)));
  const auto err = pa::check_supervisor_spec(nested(10000));
  BOOST_TEST(is_error(err, pa::error::invalid_spec), render(err));
  BOOST_TEST(render(err).find("nested more than 64 deep") != std::string::npos, render(err).substr(0, 200));
}

// OTP answers {error, simple_one_for_one}; before the fix the child was restarted / deleted.
BOOST_AUTO_TEST_CASE(restart_child_and_delete_child_are_refused_on_simple_one_for_one) {
  auto sup = start_sup(sup_spec("simple", restart_strategy::simple_one_for_one, {worker("t", {"pause"})}));
  auto started = ask<pa::child_info>(sup, pa::start_child_atom_v, std::vector<std::string>{});
  BOOST_TEST_REQUIRE(started.ok(), started.describe());
  const std::string id = started.value->id;
  const auto restarted = ask<pa::child_info>(sup, pa::restart_child_atom_v, id);
  BOOST_TEST(restarted.is(pa::error::wrong_strategy), restarted.describe());
  const auto deleted = ask<caf::ok_atom>(sup, pa::delete_child_atom_v, id);
  BOOST_TEST(deleted.is(pa::error::wrong_strategy), deleted.describe());
  const auto c = child(sup, id);
  BOOST_TEST((c.state == child_state::running && c.pid == started.value->pid && c.manual_restarts == 0u));
}

// =====================================================================================
// D5: nothing of a child's start blocks a CAF worker
// =====================================================================================

// stdout_path is opened by the parent (libpkit's prepare_io) on the CAF worker that
// starts the child. A FIFO without a reader made that open() block — the worker, and the
// supervisor's start, for ever. Now the open does not wait: the start fails (ENXIO).
BOOST_AUTO_TEST_CASE(a_fifo_without_reader_as_stdout_fails_the_start_instead_of_blocking_a_worker) {
  temp_dir dir;
  const std::string fifo = dir.file("out.fifo");
  BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto w = worker("w", {"pause"});
  w.process.stdout_path = fifo;
  auto sup = spawn_sup(sup_spec("fifo", restart_strategy::one_for_one, {w}));
  auto reason = await_down(sup, 5s);
  if (!reason) {
    // The worker is blocked in open(): a reader releases it, so that the test can end.
    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    await_down(sup, 2s);
    ::close(reader);
    BOOST_FAIL("the supervisor's start hung on a FIFO without a reader");
  }
  BOOST_TEST(is_error(*reason, pa::error::start_failed), render(*reason));
  BOOST_TEST(render(*reason).find("open") != std::string::npos, render(*reason));
}

// =====================================================================================
// D6: a launch report that cannot be sent is not lost
// =====================================================================================

// Before the fix a report that threw (no memory for the report message) was dropped with
// the process: the process actor stayed `starting` for ever. A job's report is now made
// until it is sent (launcher::report_until_made), the process still held by the job.
BOOST_AUTO_TEST_CASE(a_launch_report_that_fails_to_send_is_retried_with_the_process) {
  pkit::command cmd{{child_path(), "pause", make_marker("launched")}};
  auto parcel = std::make_shared<pa::detail::process_parcel>(std::make_unique<pkit::process>(std::move(cmd)));
  std::promise<std::pair<pid_t, bool>> reported;
  int calls = 0;
  pa::detail::launcher::instance(pa::detail::launcher_lane::fork_server).post([&, parcel] {
    std::error_code ec;
    const pid_t pid = parcel->proc->start(ec);
    pa::detail::launcher::report_until_made([&] {
      std::shared_ptr<pa::detail::process_parcel> p = parcel;  // what a report message holds
      if (++calls == 1) throw std::bad_alloc();
      const bool has_process = p && p->proc && p->proc->pid() == pid;
      reported.set_value({pid, has_process});
    });
  });
  auto f = reported.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready), "the launch report was lost");
  const auto [pid, has_process] = f.get();
  BOOST_TEST(pid > 0);
  BOOST_TEST(has_process, "the report came without its process");
  BOOST_TEST(calls == 2);
}

// Two lookups posted at once to a lane with one idle thread: each must get a thread.
// Before the fix a new thread was made only when no thread was idle — and a thread counts
// as idle until it wakes, so both posts saw the one idle thread, which then took both in
// turn: a hung lookup held up the next (review of 513ae73 #1).
BOOST_AUTO_TEST_CASE(jobs_posted_together_each_get_a_thread_of_the_lane) {
  auto& lane = pa::detail::launcher::instance(pa::detail::launcher_lane::name_service);
  std::promise<void> warmed;
  lane.post([&] { warmed.set_value(); });  // the lane's first thread, idle once this is done
  BOOST_TEST_REQUIRE((warmed.get_future().wait_for(event_timeout) == std::future_status::ready));
  std::promise<void> release_first;
  auto second_ran = std::make_shared<std::promise<void>>();  // the job may outlive a failed case
  auto hold = release_first.get_future().share();
  lane.post([hold] { hold.wait(); });                       // a lookup that hangs
  lane.post([second_ran] { second_ran->set_value(); });     // and the next one
  const bool ran = second_ran->get_future().wait_for(event_timeout) == std::future_status::ready;
  release_first.set_value();
  BOOST_TEST(ran, "the second job waited behind the first");
}

// =====================================================================================
// D4: a registered name does not keep a supervisor alive
// =====================================================================================

// The registered variant of supervisor_test's
// releasing_a_live_tree_lets_the_actor_system_end_and_stops_every_process. Before the fix
// CAF's registry held the supervisor strongly: ~actor_system waited for it for ever.
BOOST_AUTO_TEST_CASE(releasing_a_registered_live_tree_lets_the_actor_system_end_and_stops_every_process) {
  auto w = worker("w", {"pause"});
  const std::string w_marker = marker_of(w);
  auto done = std::async(std::launch::async, [&] {
    caf::actor_system_config cfg;
    pa::init(cfg);
    caf::actor_system system{cfg};
    caf::scoped_actor self{system};
    auto spec = sup_spec("released", restart_strategy::one_for_one, {w});
    spec.flags.registered_name = "relsup";
    auto sup = pa::spawn_supervisor(system, spec, nullptr, pa::process_observer{caf::actor_cast<caf::actor>(self), "x"});
    bool booted = false;
    self->receive([&](pa::child_ready_atom, std::string&, std::uint64_t, std::int32_t) { booted = true; },
                  caf::after(event_timeout) >> [] {});
    const bool found = pa::whereis_supervisor(system, "relsup").address() == sup.address();
    return booted && found;
  });  // the handle is released, then the actor system is destroyed
  if (done.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    std::fprintf(stderr, "actor_system destruction hangs with a released registered supervisor\n");
    for (pid_t p : pids_with_marker(marker_prefix(), true)) ::kill(p, SIGKILL);
    std::_Exit(1);  // the hung thread cannot be joined; fail the whole program
  }
  BOOST_TEST(done.get(), "the tree did not start, or whereis_supervisor did not find it");
  BOOST_TEST(eventually([&] { return pids_with_marker(w_marker).empty(); }), "a process of the released tree survived");
}

BOOST_AUTO_TEST_SUITE_END()

// Review 11 #12: a supervisor gave a remote start a fixed 30 s, whatever the placement's
// own bounds: a stand-in that never answered held the start (and the restart plan) for
// 30 s. The limit now derives from placement::start_bound (plus a margin for the
// stand-in's own error to come first).

BOOST_FIXTURE_TEST_SUITE(supervisor_remote_bound, sup_fixture)

BOOST_AUTO_TEST_CASE(a_remote_start_is_given_up_after_the_placements_bound_not_a_fixed_30_s) {
  sup_test_placement::mute_placement place{std::chrono::milliseconds(300)};
  pa::supervisor_options o;
  o.place = &place;
  o.subscribers = {{caf::actor_cast<caf::actor>(events_actor)}};
  auto s = pa::spawn_supervisor(system, sup_spec("bounded", restart_strategy::one_for_one, {}, 5), o);
  supervisors.push_back(s);
  watcher->monitor(s);
  pa::child_spec far;
  far.id = "far";
  far.nodes = {"x"};
  far.process.argv = {"/bin/sleep", "1000"};
  const auto t0 = std::chrono::steady_clock::now();
  auto r = ask<pa::child_info>(s, pa::start_child_atom_v, far);  // request_timeout: 10 s
  const auto took = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(!r.ok(), "a start nobody answers cannot succeed");
  BOOST_TEST(!(r.error == caf::sec::request_timeout), "still waiting after 10 s: " << r.rendered);
  BOOST_TEST(took >= 300ms, "not before the stand-in's own bound");
  BOOST_TEST_MESSAGE("given up after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                       << " ms: " << r.rendered);
}

BOOST_AUTO_TEST_SUITE_END()
