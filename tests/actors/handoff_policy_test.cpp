// The hand-off scheduler policy (actors/src/handoff_sharing.hpp) driven by threads of our
// own instead of CAF's workers: no actor system, so the suite also runs under
// ThreadSanitizer (CAF's own library is not instrumented; the policy is header-only).
// Jobs come from outside threads and from jobs themselves (fan-out through the hand-off
// slot and the shared queue); every job must run exactly once, with no wake-up lost.

#define BOOST_TEST_MODULE pkit actors hand-off policy
#include <boost/test/unit_test.hpp>

#include "handoff_sharing.hpp"

#include <caf/resumable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <memory>
#include <thread>
#include <vector>

namespace {

using pkit::actors::detail::handoff_sharing;

struct coordinator {
  handoff_sharing::coordinator_data data_{nullptr};
  handoff_sharing::coordinator_data& data() { return data_; }
};

struct worker {
  coordinator* parent_;
  handoff_sharing::worker_data data_{nullptr};
  handoff_sharing policy;

  explicit worker(coordinator* c) : parent_(c) {}
  handoff_sharing::worker_data& data() { return data_; }
  coordinator* parent() { return parent_; }
};

// A job: runs once (counted), then makes `fan_out` new jobs runnable from inside its run
// — as an actor's handler does — each `depth - 1` deep.
class job : public caf::resumable {
public:
  job(std::size_t id, int depth, bool stop = false) : id(id), depth(depth), stop(stop) {}
  subtype_t subtype() const override { return resumable::function_object; }
  resume_result resume(caf::execution_unit*, size_t) override { return resumable::done; }
  void intrusive_ptr_add_ref_impl() override {}
  void intrusive_ptr_release_impl() override {}

  const std::size_t id;
  const int depth;
  const bool stop;
};

struct run_log {
  explicit run_log(std::size_t capacity) : runs(capacity) {
    for (auto& r : runs) r.store(0);
  }
  std::vector<std::atomic<int>> runs;  // by job id
  std::atomic<std::size_t> next_id{0};
  std::vector<std::unique_ptr<job>> owned;  // filled before the threads start
};

// The worker loop of caf::scheduler::worker::run, minus CAF.
void work(worker& w, run_log& log, int fan_out) {
  for (;;) {
    caf::resumable* r = w.policy.dequeue(&w);
    auto* j = static_cast<job*>(r);
    if (j->stop) return;
    w.policy.before_resume(&w, r);
    log.runs[j->id].fetch_add(1);
    if (j->depth > 0)
      for (int k = 0; k < fan_out; ++k) {
        const std::size_t id = log.next_id.fetch_add(1);
        w.policy.internal_enqueue(&w, log.owned[id].get());
      }
    w.policy.after_resume(&w, r);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_job_runs_exactly_once_with_outside_and_inside_producers) {
  constexpr int workers = 4, producers = 3, roots_per_producer = 200, depth = 3, fan_out = 2;
  // Each root makes fan_out children, each of those fan_out more, depth levels deep.
  constexpr std::size_t per_root = 1 + 2 + 4 + 8;  // fan_out 2, depth 3
  constexpr std::size_t total = std::size_t{producers} * roots_per_producer * per_root;
  run_log log(total);
  // Every job is made before the threads start. Ids are handed out in order: roots first,
  // then each job that runs takes the next fan_out ids for the jobs it makes. Which job
  // takes which id depends on timing, but the number taken does not, so depths can be
  // fixed by id range: roots depth 3, the next 2·roots ids depth 2, then 1, then 0 (the
  // jobs of depth > 0 take exactly the ids of the ranges after the roots).
  constexpr std::size_t roots = std::size_t{producers} * roots_per_producer;
  std::size_t id = 0;
  for (int level = depth, count = 1; level >= 0; --level, count *= fan_out)
    for (std::size_t n = 0; n < roots * static_cast<std::size_t>(count); ++n, ++id)
      log.owned.push_back(std::make_unique<job>(id, level));
  BOOST_REQUIRE_EQUAL(id, total);
  log.next_id = roots;

  coordinator c;
  std::vector<std::unique_ptr<worker>> ws;
  for (int i = 0; i < workers; ++i) ws.push_back(std::make_unique<worker>(&c));
  std::vector<std::thread> threads;
  for (auto& w : ws) threads.emplace_back([&, wp = w.get()] { work(*wp, log, fan_out); });

  // Outside producers (the reaper thread, a scoped_actor): central enqueues.
  handoff_sharing outside;
  std::vector<std::future<void>> ps;
  for (int p = 0; p < producers; ++p)
    ps.push_back(std::async(std::launch::async, [&, p] {
      for (int i = 0; i < roots_per_producer; ++i)
        outside.central_enqueue(&c, log.owned[static_cast<std::size_t>(p * roots_per_producer + i)].get());
    }));
  for (auto& p : ps) p.get();

  // Every job has run once: bounded wait (a lost wake-up shows as jobs that never run).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto all_ran = [&] {
    for (auto& r : log.runs)
      if (r.load() == 0) return false;
    return true;
  };
  while (!all_ran() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  // (Failing here leaves the worker threads running: the test ends in std::terminate, a
  // failure all the same, rather than in a join that never returns.)
  BOOST_REQUIRE_MESSAGE(all_ran(), "jobs left unrun: a lost wake-up or a job lost in a slot");

  std::vector<std::unique_ptr<job>> stops;
  for (int i = 0; i < workers; ++i) {
    stops.push_back(std::make_unique<job>(0, 0, true));
    outside.central_enqueue(&c, stops.back().get());
  }
  for (auto& t : threads) t.join();

  std::size_t never = 0, twice = 0;
  for (auto& r : log.runs) {
    never += r.load() == 0;
    twice += r.load() > 1;
  }
  BOOST_TEST(never == 0u);
  BOOST_TEST(twice == 0u);
  BOOST_TEST(log.next_id.load() == total);
  // Nothing left behind in a slot or the queue.
  std::size_t left = 0;
  for (auto& w : ws) w->policy.foreach_resumable(w.get(), [&](caf::resumable*) { ++left; });
  outside.foreach_central_resumable(&c, [&](caf::resumable*) { ++left; });
  BOOST_TEST(left == 0u);
}
