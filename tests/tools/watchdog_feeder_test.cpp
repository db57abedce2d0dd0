// `pkit node`'s watchdog feeder (pkit/tool/watchdog_feeder.hpp) on an actor system of the
// test's, its feeds taken by a recorder instead of the guardian: they keep up while the
// system runs, fall behind by the limit once the network thread (the path of the node's
// heartbeats, review 17b L5) or every worker is held, and catch up once it is released.
// Each sign on its own: with the workers held the network thread still ticks, and the
// other way round.

#define BOOST_TEST_MODULE watchdog_feeder
#include <boost/test/unit_test.hpp>

#include <pkit/actors/messages.hpp>
#include <pkit/actors/scheduler.hpp>
#include <pkit/tool/guardian.hpp>
#include <pkit/tool/watchdog_feeder.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using pkit::tool::guardian;
using pkit::tool::watchdog_feeder;

// Long enough that a loaded machine's delays of the feeder thread do not reach it.
constexpr auto limit = 1000ms;
constexpr std::int64_t limit_ms = 1000;
constexpr auto deadline = 20s;  // only reached when the feeder is wrong

/// The feeds as they come, each as its lag: how long before the look the system was last
/// known alive (what the guardian compares with the limit).
struct recorder {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::int64_t> lags;

  void feed(std::int64_t alive_ms) {
    const std::int64_t lag = guardian::now_ms() - alive_ms;
    {
      std::lock_guard<std::mutex> g(m);
      lags.push_back(lag);
    }
    cv.notify_all();
  }
  /// Waits for a feed after the first `from` whose lag satisfies `pred`; `from` moves past it.
  template <class Pred>
  bool wait_for(std::size_t& from, Pred pred) {
    std::unique_lock<std::mutex> g(m);
    return cv.wait_for(g, deadline, [&] {
      for (; from < lags.size(); ++from)
        if (pred(lags[from])) {
          ++from;
          return true;
        }
      return false;
    });
  }
  std::int64_t largest(std::size_t begin, std::size_t end) {
    std::lock_guard<std::mutex> g(m);
    std::int64_t most = 0;
    for (std::size_t i = begin; i < end && i < lags.size(); ++i) most = std::max(most, lags[i]);
    return most;
  }
  std::size_t size() {
    std::lock_guard<std::mutex> g(m);
    return lags.size();
  }
};

/// Held until released, or the deadline (a failed test must not hang).
struct hold {
  std::atomic<int> began{0};
  std::atomic<bool> release{false};
  void wait() {
    ++began;
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (!release.load() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(1ms);
  }
};

/// A node's actor system as `pkit node` has it (pkit's scheduler, the io middleman), with
/// two workers; a feeder on it feeding `rec`.
struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<recorder> rec = std::make_shared<recorder>();
  std::unique_ptr<watchdog_feeder> feeder;

  fixture() {
    pkit::actors::init(cfg);
    pkit::actors::use_pkit_scheduler(cfg);
    cfg.load<caf::io::middleman>();
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    feeder = std::make_unique<watchdog_feeder>([r = rec](std::int64_t alive) { r->feed(alive); }, *sys, limit);
  }
  ~fixture() { feeder.reset(); }  // before the system: its thread looks at it
};

/// Until the feeds have come for a while, all within the limit: the system runs.
void expect_keeping_up(recorder& rec, std::size_t& from) {
  const std::size_t begin = from;
  BOOST_TEST_REQUIRE(rec.wait_for(from, [](std::int64_t) { return true; }));
  for (int i = 0; i < 8; ++i) BOOST_TEST_REQUIRE(rec.wait_for(from, [](std::int64_t) { return true; }));
  BOOST_TEST(rec.largest(begin, from) < limit_ms, "a running system was fed " << rec.largest(begin, from)
                                                                              << " ms late (limit " << limit_ms << ")");
}

/// With `held` (`holders` of them in h) held: a feed lags by the limit; released, the
/// feeds catch up.
void expect_behind_then_caught_up(recorder& rec, std::size_t& seen, hold& h, int holders, const char* held) {
  BOOST_TEST_REQUIRE(rec.wait_for(seen, [](std::int64_t lag) { return lag >= limit_ms; }),
                     "the feeds kept up with " << held << " held");
  BOOST_TEST(h.began.load() == holders);
  h.release = true;
  BOOST_TEST(rec.wait_for(seen, [](std::int64_t lag) { return lag < limit_ms / 2; }),
             "the feeds did not catch up once " << held << " ran again");
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(watchdog_feeder_suite, fixture)

BOOST_AUTO_TEST_CASE(a_held_network_thread_stops_the_feeds_until_it_runs_again) {
  std::size_t seen = 0;
  expect_keeping_up(*rec, seen);
  auto h = std::make_shared<hold>();
  sys->middleman().backend().post([h] { h->wait(); });
  // The workers run on: only the canary's ticks stop.
  expect_behind_then_caught_up(*rec, seen, *h, 1, "the network thread");
}

BOOST_AUTO_TEST_CASE(every_worker_held_stops_the_feeds_until_one_runs_again) {
  std::size_t seen = 0;
  expect_keeping_up(*rec, seen);
  auto h = std::make_shared<hold>();
  std::vector<caf::actor> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(sys->spawn<caf::lazy_init>(
        [h](caf::event_based_actor*, int) -> caf::behavior {
          return {[h](caf::ok_atom) { h->wait(); }};
        },
        0));
    caf::anon_send(held.back(), caf::ok_atom_v);
  }
  // The network thread ticks on: only the probe sees no progress.
  expect_behind_then_caught_up(*rec, seen, *h, 2, "every worker");
}

BOOST_AUTO_TEST_CASE(an_empty_feed_sink_is_refused) {
  BOOST_CHECK_THROW(watchdog_feeder(watchdog_feeder::feed_sink{}, *sys, limit), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
