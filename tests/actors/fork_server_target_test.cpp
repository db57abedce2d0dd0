// Process actors running fork-server targets (process_spec::target + args).
//
// The fork server must be forked while this program is single-threaded: before any
// actor system (CAF's scheduler threads) and before pkit's reaper thread exist. The
// global fixture below starts it first thing; each case then builds its own actor system.

#define BOOST_TEST_MODULE pkit actors fork_server targets
#include "actor_test_support.hpp"

#include <pkit/fork_server.hpp>

#include "launcher.hpp"

#include <optional>

#include <sys/syscall.h>

using namespace pkit_actor_test;
using namespace std::chrono_literals;
using pkit::exit_status;
using pa::process_state;

namespace {

using args_t = std::vector<std::string>;

volatile std::sig_atomic_t trap_code = 0;
extern "C" void exit_with_trap_code(int) { ::_exit(trap_code); }

pkit::fork_server::registry make_registry() {
  pkit::fork_server::registry r;
  // trap-term CODE: exits with CODE on SIGTERM; writes its readiness newline to fd 3
  // once the handler is in place; then waits.
  r.add("trap-term", [](const args_t& args) -> int {
    trap_code = std::stoi(args.at(0));
    struct sigaction sa{};
    sa.sa_handler = exit_with_trap_code;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
    while (::write(3, "\n", 1) < 0 && errno == EINTR) {
    }
    for (;;) ::pause();
  });
  r.add("exit-with", [](const args_t& args) { return std::stoi(args.at(0)); });
  r.add("pause", [](const args_t&) -> int {
    for (;;) ::pause();
  });
  return r;
}

std::optional<pkit::fork_server> server_instance;

struct fork_server_fixture {
  fork_server_fixture() { server_instance.emplace(pkit::fork_server::start(make_registry())); }
  ~fork_server_fixture() { server_instance.reset(); }
};

const pkit::fork_server* server() { return &*server_instance; }

pa::process_spec target_spec(std::string target, args_t args) {
  pa::process_spec spec;
  spec.target = std::move(target);
  spec.args = std::move(args);
  return spec;
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(fork_server_fixture);

BOOST_FIXTURE_TEST_SUITE(fork_server_targets, actor_fixture)

BOOST_AUTO_TEST_CASE(a_fork_server_target_runs_with_its_args_and_join_relays_its_exit_code) {
  auto spec = target_spec("trap-term", {"42"});
  spec.notify_fd = 3;
  auto a = spawn(spec, server());
  auto r = start(a);
  BOOST_TEST_REQUIRE(r.ok(), "start failed: " << r.describe());
  const pid_t pid = *r.value;
  const auto st = read_proc_stat(pid);
  BOOST_TEST_REQUIRE(st.has_value(), "no /proc/" << pid);
  BOOST_TEST(st->ppid == server()->pid(), "not forked by the fork server");
  BOOST_TEST(st->pgrp == pid);
  BOOST_TEST(status(a).name == "trap-term");

  BOOST_TEST_REQUIRE(signal(a, SIGTERM).ok());
  auto j = join(a);
  BOOST_TEST_REQUIRE(j.ok(), "join failed: " << j.describe());
  BOOST_TEST(*j.value == exit_status::exited(42));
  BOOST_TEST(!proc_exists(pid));
}

// A target forked with its signals in place is ready (notify_fd = -1), even if it
// returns right after: start replies with its pid, join with its code. Repeated, as an
// exit racing the readiness report is what could go wrong.
BOOST_AUTO_TEST_CASE(a_fork_server_target_that_returns_at_once_reports_its_code_to_join) {
  auto a = spawn(target_spec("exit-with", {"17"}), server());
  int failed = 0;
  std::string first_error;
  for (int i = 0; i < 20; ++i) {
    auto r = start(a);
    if (!r.ok() && failed++ == 0) first_error = r.rendered;
    auto j = join(a);
    BOOST_TEST_REQUIRE(j.ok(), "join failed: " << j.describe());
    BOOST_TEST(*j.value == exit_status::exited(17));
  }
  BOOST_TEST(failed == 0, failed << " of 20 starts failed, first: " << first_error);
  BOOST_TEST(status(a).incarnation == 20u);
}

BOOST_AUTO_TEST_CASE(stop_of_a_fork_server_target_ends_it_with_sigterm) {
  auto spec = target_spec("pause", {});
  spec.stop_timeout_ms = 30000;
  auto a = spawn(spec, server());
  auto r = start(a);
  BOOST_TEST_REQUIRE(r.ok(), "start failed: " << r.describe());
  auto s = stop(a);
  BOOST_TEST_REQUIRE(s.ok(), "stop failed: " << s.describe());
  BOOST_TEST(*s.value == exit_status::killed(SIGTERM));
  BOOST_TEST(!proc_exists(*r.value));
}

BOOST_AUTO_TEST_CASE(a_fork_server_target_can_be_started_again_with_a_new_incarnation) {
  auto spec = target_spec("trap-term", {"8"});
  spec.notify_fd = 3;
  auto a = spawn(spec, server());
  auto r1 = start(a);
  BOOST_TEST_REQUIRE(r1.ok(), r1.describe());
  BOOST_TEST_REQUIRE(signal(a, SIGTERM).ok());
  BOOST_TEST_REQUIRE(join(a).ok());
  auto r2 = start(a);
  BOOST_TEST_REQUIRE(r2.ok(), r2.describe());
  BOOST_TEST(*r2.value != *r1.value);
  const auto info = status(a);
  BOOST_TEST(info.incarnation == 2u);
  BOOST_TEST(info.state == process_state::running);
  BOOST_TEST_REQUIRE(signal(a, SIGTERM).ok());
  auto j = join(a);
  BOOST_TEST_REQUIRE(j.ok(), j.describe());
  BOOST_TEST(*j.value == exit_status::exited(8));
}

BOOST_AUTO_TEST_CASE(an_unknown_fork_server_target_fails_with_invalid_spec) {
  auto a = spawn(target_spec("no-such-target", {}), server());
  auto r = start(a);
  BOOST_TEST(r.is(pa::error::invalid_spec), "expected invalid_spec, got " << r.describe());
  BOOST_TEST(r.rendered.find("no-such-target") != std::string::npos, r.rendered);
}

BOOST_AUTO_TEST_CASE(killing_the_actor_stops_its_fork_server_child) {
  auto spec = target_spec("pause", {});
  spec.stop_timeout_ms = 30000;
  auto a = spawn(spec, server());
  auto r = start(a);
  BOOST_TEST_REQUIRE(r.ok(), r.describe());
  self->send_exit(a, caf::exit_reason::kill);
  self->wait_for(a);
  BOOST_TEST(gone_within(*r.value), "fork-server child " << *r.value << " outlived its actor");
}

// =====================================================================================
// A fork-server start does not hold a CAF worker (issue 9 item 14)
// =====================================================================================

namespace {

/// Stops the fork server (SIGSTOP) until destroyed: its requests then wait for it.
struct server_paused {
  server_paused() {
    ::kill(server()->pid(), SIGSTOP);
    BOOST_TEST_REQUIRE(eventually([] {
      const auto st = read_proc_stat(server()->pid());
      return st && st->state == 'T';
    }));
  }
  ~server_paused() { resume(); }
  void resume() { ::kill(server()->pid(), SIGCONT); }
  server_paused(const server_paused&) = delete;
  server_paused& operator=(const server_paused&) = delete;
};

/// Whether the launcher's fork-server thread is asleep waiting for the server's reply: it
/// has begun a start job (a job not yet begun would be skipped by a stop, which then
/// answers not_started). The client waits in poll() (its request has a deadline) or
/// recvmsg(). /proc/self/task/TID/syscall reads "NR args…", or "running".
bool the_launcher_waits_for_the_server() {
  std::vector<std::string> waits = {std::to_string(SYS_recvmsg) + " ", std::to_string(SYS_ppoll) + " "};
#if defined(SYS_poll)
  waits.push_back(std::to_string(SYS_poll) + " ");
#endif
  const std::string name = pa::detail::launcher::thread_name(pa::detail::launcher_lane::fork_server);
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string thread;
    if (!std::getline(comm, thread) || thread != name) continue;
    std::ifstream in(task.path() / "syscall");
    std::string line;
    if (!std::getline(in, line)) continue;
    for (const auto& w : waits)
      if (line.rfind(w, 0) == 0) return true;
  }
  return false;
}

/// The fork server's live children (its zombies excluded: it reaps them).
std::vector<pid_t> server_children() {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    const auto st = read_proc_stat(pid);
    if (st && st->ppid == server()->pid() && is_running(pid)) out.push_back(pid);
  }
  return out;
}

/// An actor system with one scheduler thread: an actor that blocks its worker blocks
/// every other actor.
struct one_worker_config : caf::actor_system_config {
  one_worker_config() {
    pa::init(*this);
    set("scheduler.max-threads", 1);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_target_start_in_flight_to_a_stopped_fork_server_holds_no_worker) {
  one_worker_config cfg;
  caf::actor_system sys{cfg};
  BOOST_TEST_REQUIRE(sys.scheduler().num_workers() == 1u);
  caf::scoped_actor me{sys};
  auto starting = pa::spawn_process(sys, target_spec("pause", {}), server());
  auto other = pa::spawn_process(sys, target_spec("pause", {}), server());
  // Killed however the case ends: a failed check below must not leave them (and the
  // system's destructor waiting for them) running.
  actor_stopper stop_starting{starting, caf::exit_reason::kill};
  actor_stopper stop_other{other, caf::exit_reason::kill};
  std::optional<std::int32_t> pid;
  {
    server_paused paused;
    auto pending = me->request(starting, 60s, pa::start_atom_v);
    // Both actors answer while the start waits for the server (whose request timeout is
    // 10 s): a start on the only worker would hold it, and both requests time out.
    bool answered_self = false, answered_other = false;
    me->request(starting, 3s, pa::status_atom_v)
        .receive([&](const pa::process_info& i) { answered_self = i.state == process_state::starting; },
                 [&](caf::error&) {});
    me->request(other, 3s, pa::status_atom_v)
        .receive([&](const pa::process_info&) { answered_other = true; }, [&](caf::error&) {});
    paused.resume();
    BOOST_TEST(answered_self, "the starting actor did not answer status during its start");
    BOOST_TEST(answered_other, "another actor did not answer status during a start");
    pending.receive([&](std::int32_t p) { pid = p; },
                    [&](caf::error& e) { BOOST_TEST_FAIL("start failed: " << sys.render(e)); });
  }
  BOOST_TEST_REQUIRE(pid.has_value());
  BOOST_TEST(is_running(*pid));
  me->request(starting, event_timeout, pa::kill_atom_v).receive([](exit_status) {}, [](caf::error&) {});
  BOOST_TEST(gone_within(*pid));
  me->send_exit(starting, caf::exit_reason::kill);
  me->send_exit(other, caf::exit_reason::kill);
  me->wait_for(starting, other);
}

BOOST_AUTO_TEST_CASE(a_stop_made_during_a_target_start_is_applied_once_the_child_exists) {
  auto spec = target_spec("pause", {});
  spec.stop_timeout_ms = 30000;
  auto a = spawn(spec, server());
  caf::scoped_actor stopper{system};
  std::optional<exit_status> stopped;
  std::optional<std::int32_t> pid;
  {
    // Paused before the start is asked for: otherwise the server may make the child
    // before it stops, and the start is over before the stop comes (seen under ctest -j2).
    server_paused paused;
    auto pending_start = self->request(a, event_timeout, pa::start_atom_v);
    // status is answered in order after start: the start has been taken on.
    BOOST_TEST_REQUIRE(status(a).state == process_state::starting);
    // And the launcher has begun it: a stop before that skips the job (not_started).
    BOOST_TEST_REQUIRE(eventually(the_launcher_waits_for_the_server), "the start never reached the server");
    auto pending_stop = stopper->request(a, event_timeout, pa::stop_atom_v);
    BOOST_TEST(status(a).state == process_state::stopping);
    paused.resume();
    pending_start.receive([&](std::int32_t p) { pid = p; }, [&](caf::error&) {});
    pending_stop.receive([&](exit_status s) { stopped = s; },
                         [&](caf::error& e) { BOOST_TEST_FAIL("stop failed: " << render(e)); });
  }
  BOOST_TEST_REQUIRE(stopped.has_value());
  BOOST_TEST(*stopped == exit_status::killed(SIGTERM));
  if (pid) BOOST_TEST(!is_running(*pid));
  BOOST_TEST(status(a).state == process_state::idle);
}

// The other side: a stop that comes before the launcher has begun the start. The job is
// skipped — nothing is spawned — the stop answers not_started and the start fails as
// stopped before it was spawned. The fork-server lane has one thread: a first start, in
// flight to the paused server, holds it, so the second start's job waits in its queue.
BOOST_AUTO_TEST_CASE(a_stop_before_the_launcher_takes_the_start_spawns_nothing) {
  static_assert(pa::detail::launcher::fork_server_threads == 1, "the second start must queue behind the first");
  BOOST_TEST_REQUIRE(server_children().empty());
  auto spec = target_spec("pause", {});
  spec.stop_timeout_ms = 30000;
  auto first = spawn(spec, server());
  auto second = spawn(spec, server());
  caf::scoped_actor starter{system};
  caf::scoped_actor stopper{system};
  reply<std::int32_t> first_start, second_start;
  reply<exit_status> second_stop;
  {
    server_paused paused;
    auto pending_first = self->request(first, event_timeout, pa::start_atom_v);
    BOOST_TEST_REQUIRE(eventually(the_launcher_waits_for_the_server), "the first start never reached the server");
    auto pending_second = starter->request(second, event_timeout, pa::start_atom_v);
    BOOST_TEST_REQUIRE(status(second).state == process_state::starting);
    auto pending_stop = stopper->request(second, event_timeout, pa::stop_atom_v);
    BOOST_TEST(status(second).state == process_state::stopping);
    paused.resume();
    first_start = await<std::int32_t>(std::move(pending_first));
    second_start = await<std::int32_t>(std::move(pending_second));
    second_stop = await<exit_status>(std::move(pending_stop));
  }
  BOOST_TEST_REQUIRE(first_start.ok(), "first start failed: " << first_start.describe());
  BOOST_TEST(second_start.is(pa::error::start_failed), "second start: " << second_start.describe());
  BOOST_TEST(second_start.rendered.find("stopped before it was spawned") != std::string::npos,
             second_start.rendered);
  BOOST_TEST(second_stop.is(pa::error::not_started), "second stop: " << second_stop.describe());
  const auto info = status(second);
  BOOST_TEST(info.state == process_state::idle);
  BOOST_TEST(info.pid == 0);
  // Both jobs have reported (both starts are answered): the first one's child is the
  // server's only one.
  BOOST_TEST(server_children() == std::vector<pid_t>{*first_start.value});
}

BOOST_AUTO_TEST_CASE(an_actor_that_dies_during_its_target_start_leaves_no_child) {
  BOOST_TEST_REQUIRE(server_children().empty());
  auto spec = target_spec("pause", {});
  spec.stop_timeout_ms = 30000;
  auto a = spawn(spec, server());
  {
    server_paused paused;
    self->send(a, pa::start_atom_v);
    BOOST_TEST_REQUIRE(status(a).state == process_state::starting);
    // The request is with the server: the child is made once it resumes.
    BOOST_TEST_REQUIRE(eventually(the_launcher_waits_for_the_server), "the start never reached the server");
    self->send_exit(a, caf::exit_reason::kill);
    self->wait_for(a);
  }
  BOOST_TEST(eventually([] { return server_children().empty(); }),
             "a child started for a dead actor lives on");
}

BOOST_AUTO_TEST_SUITE_END()
