// pkit's CAF scheduler (actors/src/handoff_sharing.hpp): that init leaves the scheduler alone
// and use_pkit_scheduler selects pkit's, and
// the policy's rules — a chain of single messages stays on one worker, fan-out spreads
// over the workers, a long resume gives up its hand-off, a run of hand-offs does not
// starve the shared queue. Each waits on events (atomics the actors set, with deadlines),
// never on sleeps; a broken rule shows as a bounded wait that runs out.
//
// Every actor is spawned with caf::lazy_init: its first message makes it runnable, like
// every later one, so each send goes through the policy. (Spawned eagerly, an actor is
// queued for its initialisation at once, and a message that arrives before that has run
// makes nothing runnable: under load, a test of the hand-off then tested nothing — or,
// for a long resume, waited for an actor that was never handed off.)

#define BOOST_TEST_MODULE pkit actors scheduler
#include <boost/test/unit_test.hpp>

#include <pkit/actors/liveness_probe.hpp>
#include <pkit/actors/messages.hpp>
#include <pkit/actors/scheduler.hpp>

#include "handoff_sharing.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/defaults.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/policy/work_sharing.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace pa = pkit::actors;
using pkit::actors::detail::handoff_sharing;

constexpr auto deadline = 10s;  // only reached when a rule is broken

/// Spins until `pred` holds or `limit` passes (the waits here are inside actors or on
/// atomics the actors set: no message announces them to the test thread).
template <class Pred>
bool wait_until(Pred pred, std::chrono::steady_clock::duration limit = deadline) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) return pred();
    std::this_thread::yield();
  }
  return true;
}

struct system_with {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  /// init(cfg) and the opt-in to pkit's scheduler, then `threads` workers (0: CAF's
  /// default), then `policy` if not empty.
  explicit system_with(std::size_t threads = 0, const char* policy = nullptr) {
    pa::init(cfg);
    pa::use_pkit_scheduler(cfg);
    if (threads > 0) cfg.set("scheduler.max-threads", threads);
    if (policy != nullptr) cfg.set("scheduler.policy", caf::atom_from_string(policy));
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

template <class Coordinator>
bool scheduler_is(caf::actor_system& sys) {
  return dynamic_cast<Coordinator*>(&sys.scheduler()) != nullptr;
}

}  // namespace

// init registers types; it must not replace the application's scheduler behind its back.
BOOST_AUTO_TEST_CASE(init_alone_leaves_cafs_default_scheduler) {
  using namespace caf::scheduler;
  caf::actor_system_config cfg;
  pa::init(cfg);
  BOOST_TEST(caf::get_or(cfg, "scheduler.policy", caf::defaults::scheduler::policy) ==
             caf::defaults::scheduler::policy);
  caf::actor_system sys{cfg};
  BOOST_TEST(!scheduler_is<coordinator<handoff_sharing>>(sys), "init installed pkit's scheduler");
  BOOST_TEST(scheduler_is<coordinator<caf::policy::work_stealing>>(sys), "not CAF's default (stealing)");
}

BOOST_AUTO_TEST_CASE(use_pkit_scheduler_twice_installs_one_scheduler_factory) {
  caf::actor_system_config cfg;
  pa::init(cfg);
  const auto factories = cfg.module_factories.size();
  pa::use_pkit_scheduler(cfg);
  pa::use_pkit_scheduler(cfg);
  BOOST_TEST(cfg.module_factories.size() == factories + 1);
  caf::actor_system sys{cfg};
  BOOST_TEST(scheduler_is<caf::scheduler::coordinator<handoff_sharing>>(sys));
}

BOOST_AUTO_TEST_CASE(use_pkit_scheduler_selects_pkits_scheduler_and_the_policy_setting_still_chooses) {
  using namespace caf::scheduler;
  {
    system_with s;
    BOOST_TEST(scheduler_is<coordinator<handoff_sharing>>(*s.sys));
  }
  {
    system_with s(0, "sharing");
    BOOST_TEST(scheduler_is<coordinator<caf::policy::work_sharing>>(*s.sys));
  }
  {
    system_with s(0, "stealing");
    BOOST_TEST(scheduler_is<coordinator<caf::policy::work_stealing>>(*s.sys));
  }
  {
    system_with s(0, "testing");
    BOOST_TEST(scheduler_is<test_coordinator>(*s.sys));
  }
}

namespace {

/// Two actors pass a token back and forth `hops` times, each handler busy for `busy`
/// before its one send; returns how many hops ran on another thread than the one before.
std::size_t chain_thread_changes(caf::actor_system& sys, int hops, std::chrono::microseconds busy) {
  struct shared {
    std::mutex m;
    std::vector<std::thread::id> threads;
    std::atomic<bool> done{false};
  };
  auto sh = std::make_shared<shared>();
  auto player = [sh, hops, busy](caf::event_based_actor* self, int) -> caf::behavior {
    return {
        [self, sh, hops, busy](int n, caf::actor other) {
          {
            std::lock_guard<std::mutex> lock(sh->m);
            sh->threads.push_back(std::this_thread::get_id());
          }
          if (n == hops) {
            sh->done = true;
            return;
          }
          const auto t0 = std::chrono::steady_clock::now();
          wait_until([&] { return std::chrono::steady_clock::now() - t0 >= busy; });
          self->send(other, n + 1, caf::actor_cast<caf::actor>(self));
        },
    };
  };
  auto a = sys.spawn<caf::lazy_init>(player, 0);
  auto b = sys.spawn<caf::lazy_init>(player, 0);
  caf::anon_send(a, 1, b);
  BOOST_REQUIRE(wait_until([&] { return sh->done.load(); }));
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
  std::lock_guard<std::mutex> lock(sh->m);
  BOOST_REQUIRE_EQUAL(sh->threads.size(), static_cast<std::size_t>(hops));
  std::size_t moved = 0;
  for (std::size_t i = 1; i < sh->threads.size(); ++i) moved += sh->threads[i] != sh->threads[i - 1];
  return moved;
}

}  // namespace

// Handed off, the next actor of a chain runs on the worker that made it runnable. (CAF's
// work sharing wakes another worker for every hop: about a quarter of the hops change
// threads.)
BOOST_AUTO_TEST_CASE(a_chain_of_single_messages_stays_on_one_worker) {
  system_with s(4);
  constexpr int hops = 2000;
  const std::size_t moved = chain_thread_changes(*s.sys, hops, 0us);
  BOOST_TEST(moved <= hops / 50, moved << " of " << hops << " hops changed threads");
}

// The same with handlers that run longer than max_hold before their one send (as a
// process actor's start does: the spawn, then the reports): the hand-off still holds — a
// long resume gives up its slot only when it makes a second actor runnable.
BOOST_AUTO_TEST_CASE(a_handler_that_ran_long_still_hands_off_its_one_send) {
  system_with s(4);
  constexpr int hops = 100;
  const std::size_t moved = chain_thread_changes(*s.sys, hops, 2 * handoff_sharing::max_hold);
  BOOST_TEST(moved <= 3u, moved << " of " << hops << " hops changed threads");
}

// One handler makes three idle actors runnable; each waits (inside its handler, for this
// test) until all three are running. Only if they run side by side on three workers does
// the wait end: the hand-off takes the first one, the others must go to idle workers.
BOOST_AUTO_TEST_CASE(fan_out_runs_side_by_side) {
  system_with s(4);
  struct shared {
    std::atomic<int> running{0};
    std::atomic<int> met{0};  // how many saw all three running
    std::atomic<int> finished{0};
  };
  auto sh = std::make_shared<shared>();
  auto member = [sh](caf::event_based_actor*, int) -> caf::behavior {
    return {
        [sh](caf::ok_atom) {
          ++sh->running;
          if (wait_until([&] { return sh->running.load() == 3; })) ++sh->met;
          ++sh->finished;
        },
    };
  };
  std::vector<caf::actor> members;
  for (int i = 0; i < 3; ++i) members.push_back(s.sys->spawn<caf::lazy_init>(member, 0));
  auto fan = s.sys->spawn<caf::lazy_init>(
      [members](caf::event_based_actor* self, int) -> caf::behavior {
        return {
            [self, members](caf::ok_atom) {
              for (const auto& m : members) self->send(m, caf::ok_atom_v);
            },
        };
      },
      0);
  caf::anon_send(fan, caf::ok_atom_v);
  BOOST_REQUIRE(wait_until([&] { return sh->finished.load() == 3; }, 3 * deadline));
  BOOST_TEST(sh->met.load() == 3);
  for (const auto& m : members) caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(fan, caf::exit_reason::user_shutdown);
}

// A handler hands off B, then runs long and makes C runnable: B must not wait for the
// end of that handler — it goes to the shared queue, and another worker runs it while
// the handler still runs (the handler waits for B, for this test).
BOOST_AUTO_TEST_CASE(a_long_resume_gives_up_its_hand_off) {
  system_with s(4);
  struct shared {
    std::atomic<bool> b_ran{false};
    std::atomic<int> outcome{0};  // 1: B ran while A's handler still ran; 2: it did not
  };
  auto sh = std::make_shared<shared>();
  auto flag = [sh](caf::event_based_actor*, int) -> caf::behavior {
    return {[sh](caf::ok_atom) { sh->b_ran = true; }};
  };
  auto idle = [](caf::event_based_actor*, int) -> caf::behavior {
    return {[](caf::ok_atom) {}};
  };
  auto b = s.sys->spawn<caf::lazy_init>(flag, 0);
  auto c = s.sys->spawn<caf::lazy_init>(idle, 0);
  auto a = s.sys->spawn<caf::lazy_init>(
      [sh, b, c](caf::event_based_actor* self, int) -> caf::behavior {
        return {
            [self, sh, b, c](caf::ok_atom) {
              self->send(b, caf::ok_atom_v);  // handed off
              const auto t0 = std::chrono::steady_clock::now();
              wait_until([&] { return std::chrono::steady_clock::now() - t0 > 2 * handoff_sharing::max_hold; });
              self->send(c, caf::ok_atom_v);  // long past max_hold: B goes out, C takes the slot
              sh->outcome = wait_until([&] { return sh->b_ran.load(); }) ? 1 : 2;
            },
        };
      },
      0);
  caf::anon_send(a, caf::ok_atom_v);
  BOOST_REQUIRE(wait_until([&] { return sh->outcome.load() != 0; }, 2 * deadline));
  BOOST_TEST(sh->outcome.load() == 1);
  for (const auto& x : {a, b, c}) caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
}

// One worker only: two actors bounce a token through the hand-off slot for as long as the
// test lets them. A job in the shared queue (a message from outside) must still run within
// a bounded number of hops — after max_streak hand-offs in a row, the slot job queues
// behind it.
BOOST_AUTO_TEST_CASE(a_run_of_hand_offs_does_not_starve_the_shared_queue) {
  system_with s(1);
  constexpr long cap = 1'000'000;
  struct shared {
    std::atomic<long> hops{0};
    std::atomic<long> sent_at{-1};  // hops when the outside message was sent
    std::atomic<long> ran_at{-1};   // hops when it ran
  };
  auto sh = std::make_shared<shared>();
  auto player = [sh](caf::event_based_actor* self, int) -> caf::behavior {
    return {
        [self, sh](caf::actor other) {
          const long n = ++sh->hops;
          if (n >= cap || sh->ran_at.load() >= 0) return;  // the bounce ends
          self->send(other, caf::actor_cast<caf::actor>(self));
        },
    };
  };
  auto outsider = s.sys->spawn<caf::lazy_init>(
      [sh](caf::event_based_actor*, int) -> caf::behavior {
        return {[sh](caf::ok_atom) { sh->ran_at = sh->hops.load(); }};
      },
      0);
  auto a = s.sys->spawn<caf::lazy_init>(player, 0);
  auto b = s.sys->spawn<caf::lazy_init>(player, 0);
  caf::anon_send(a, b);
  // Sent once the bounce is under way.
  BOOST_REQUIRE(wait_until([&] { return sh->hops.load() >= 100; }));
  sh->sent_at = sh->hops.load();
  caf::anon_send(outsider, caf::ok_atom_v);
  BOOST_REQUIRE(wait_until([&] { return sh->ran_at.load() >= 0 || sh->hops.load() >= cap; }, 6 * deadline));
  BOOST_REQUIRE_MESSAGE(sh->ran_at.load() >= 0, "the outside message never ran during " << cap << " hops");
  BOOST_TEST(sh->ran_at.load() - sh->sent_at.load() <= 4L * handoff_sharing::max_streak);
  for (const auto& x : {a, b, outsider}) caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
}

// The liveness probe (pkit/actors/liveness_probe.hpp), with handlers that wait for the
// test's word: a look is "alive" when a run began since the last look or nothing waits,
// and "not alive" only when a job waited — at least the probe's own, sent by each look —
// while no run began. Each look's own job is let run (or seen waiting) before the next.
namespace {

struct gated {
  std::atomic<bool> began{false};
  std::atomic<bool> release{false};
};

/// An actor whose one handler says it began, sends `ok` to `next` (when given: a hand-off
/// from inside the run, into this worker's slot), then waits for the release.
caf::actor spawn_gated(caf::actor_system& sys, std::shared_ptr<gated> g, caf::actor next = {}) {
  return sys.spawn<caf::lazy_init>(
      [g, next](caf::event_based_actor* self, int) -> caf::behavior {
        return {[self, g, next](caf::ok_atom) {
          g->began = true;
          if (next) self->send(next, caf::ok_atom_v);
          wait_until([&] { return g->release.load(); });  // the test releases it (or the deadline)
        }};
      },
      0);
}

/// Until the probe's job, sent by the last look, has been taken by a worker.
bool probe_job_taken(pa::liveness_probe& probe) { return wait_until([&] { return probe.now().waiting == 0; }); }

}  // namespace

// Every worker stuck (one worker here): the probe's job waits, nothing begins.
BOOST_AUTO_TEST_CASE(the_liveness_probe_tells_a_busy_scheduler_from_a_stuck_one) {
  system_with s(1);
  pa::liveness_probe probe(*s.sys);
  BOOST_TEST(probe.look(), "an idle system is alive");
  BOOST_REQUIRE(probe_job_taken(probe));
  BOOST_TEST(probe.look(), "its job ran: alive");
  BOOST_REQUIRE(probe_job_taken(probe));
  auto ga = std::make_shared<gated>();
  auto a = spawn_gated(*s.sys, ga);
  caf::anon_send(a, caf::ok_atom_v);
  BOOST_REQUIRE(wait_until([&] { return ga->began.load(); }));
  BOOST_TEST(probe.look(), "a began since the last look");
  // Only the probe's own job waits now, behind the stuck run.
  BOOST_REQUIRE(wait_until([&] { return probe.now().waiting >= 1; }));
  BOOST_TEST(!probe.look(), "a job waits and nothing began: the scheduler is stuck");
  BOOST_TEST(!probe.look(), "still stuck");
  ga->release = true;
  BOOST_REQUIRE(probe_job_taken(probe));
  BOOST_TEST(probe.look(), "the probe's jobs ran: progress");
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

// One run stuck with a job in its worker's slot (no other worker can take that one), and
// another worker free: not a stuck scheduler. The free worker runs the probe's jobs.
BOOST_AUTO_TEST_CASE(the_liveness_probe_does_not_count_one_stuck_run_while_a_worker_is_free) {
  system_with s(2);
  pa::liveness_probe probe(*s.sys);
  auto ga = std::make_shared<gated>(), gb = std::make_shared<gated>();
  gb->release = true;
  auto b = spawn_gated(*s.sys, gb);
  auto a = spawn_gated(*s.sys, ga, b);  // sends to b from inside its run: b takes the slot
  caf::anon_send(a, caf::ok_atom_v);
  BOOST_REQUIRE(wait_until([&] { return ga->began.load(); }));
  for (int i = 0; i < 5; ++i) {
    BOOST_TEST(probe.look(), "look " << i << ": a worker is free and runs the probe's job");
    BOOST_REQUIRE(probe_job_taken(probe));
  }
  BOOST_TEST(!gb->began.load(), "b ran before a's run ended (it waits in a's slot)");
  ga->release = true;
  BOOST_REQUIRE(wait_until([&] { return gb->began.load(); }));
  for (const auto& x : {a, b}) caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
}

// Every worker stuck and nothing else sent: the probe's own job is what waits.
BOOST_AUTO_TEST_CASE(the_liveness_probe_sees_every_worker_stuck_with_nothing_else_waiting) {
  system_with s(2);
  pa::liveness_probe probe(*s.sys);
  auto ga = std::make_shared<gated>(), gb = std::make_shared<gated>();
  auto a = spawn_gated(*s.sys, ga);
  auto b = spawn_gated(*s.sys, gb);
  caf::anon_send(a, caf::ok_atom_v);
  caf::anon_send(b, caf::ok_atom_v);
  BOOST_REQUIRE(wait_until([&] { return ga->began.load() && gb->began.load(); }));
  BOOST_TEST(probe.look(), "a and b began since the last look");
  BOOST_REQUIRE(wait_until([&] { return probe.now().waiting >= 1; }));
  BOOST_TEST(!probe.look(), "the probe's job waits, both workers stuck");
  ga->release = true;
  gb->release = true;
  BOOST_REQUIRE(probe_job_taken(probe));
  BOOST_TEST(probe.look());
  for (const auto& x : {a, b}) caf::anon_send_exit(x, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(the_liveness_probe_needs_pkits_scheduler) {
  system_with s(1, "sharing");
  BOOST_CHECK_THROW(pa::liveness_probe{*s.sys}, std::invalid_argument);
}
