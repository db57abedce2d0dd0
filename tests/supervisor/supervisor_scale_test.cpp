// FAULTS.md U1's scale case (OTP's simple_one_for_one_scale_many_temporary_children), in
// a program of its own: it runs 11,000 processes, so CTest runs it alone (RUN_SERIAL) —
// beside a test that plays with process limits it would starve, or be starved.

#define BOOST_TEST_MODULE pkit supervisor scale
#include "supervisor_test_support.hpp"

#include <sys/resource.h>

using namespace sup_test;
using namespace std::chrono_literals;
using pa::restart_strategy;
using pa::restart_type;

BOOST_FIXTURE_TEST_SUITE(supervisor_scale, sup_fixture)

// =====================================================================================
// Scale (FAULTS.md U1; OTP's simple_one_for_one_scale_many_temporary_children)
// =====================================================================================

BOOST_AUTO_TEST_CASE(terminating_10000_children_one_by_one_costs_less_than_25_times_terminating_1000) {
  // A ratio within one run, not a timed test. Linear cost gives ~10x. FAULTS.md (after
  // OTP) asks for < 50x, but a supervisor that searched its children linearly measured
  // 33x here (its O(N^2) part hidden behind constant costs at this size), so the bound is
  // 25x: still 2.5 times the linear ratio, so load on the machine does not trip it.
  rlimit lim{};
  BOOST_TEST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < 10500) {
    BOOST_TEST_MESSAGE("skipped: RLIMIT_NOFILE hard limit " << lim.rlim_max << " < 10500 (one pidfd per child)");
    return;
  }
  const rlimit raised{lim.rlim_max, lim.rlim_max};
  BOOST_TEST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &raised) == 0);

  auto tmpl = worker("t", {"pause"}, PKIT_SCALE_CHILD);  // see CMakeLists.txt
  tmpl.restart = restart_type::temporary;
  tmpl.shutdown_ms = 0;
  request_timeout = 60s;  // slow machines, sanitizer builds: a bound, not a measure
  auto s = start_sup(sup_spec("scale", restart_strategy::simple_one_for_one, {tmpl}, 3));
  // Tens of thousands of events nobody reads: not to the fixture's collector.
  BOOST_TEST_REQUIRE(ask<caf::ok_atom>(s, pa::unsubscribe_atom_v, caf::actor_cast<caf::actor>(events_actor)).ok());

  auto start_n = [&](int n) {
    std::vector<std::string> ids;
    ids.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      auto r = ask<pa::child_info>(s, pa::start_child_atom_v, std::vector<std::string>{});
      BOOST_TEST_REQUIRE(r.ok(), "child " << i << ": " << r.describe());
      ids.push_back(r.value->id);
    }
    return ids;
  };
  // The cost is this process's CPU time (the supervisor, CAF, the reaper all run here),
  // not wall time: on a shared machine a burst of other load during the longer run made
  // the wall-clock ratio 36x with nothing quadratic in the supervisor (CI, 2026-11-30).
  auto cpu_seconds = [] {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return secs(u.ru_utime) + secs(u.ru_stime);
  };
  double wall = 0;
  auto terminate_all = [&](const std::vector<std::string>& ids) {
    const auto t0 = clock_type::now();
    const double c0 = cpu_seconds();
    for (const auto& id : ids) {
      auto r = ask<caf::ok_atom>(s, pa::terminate_child_atom_v, id);
      BOOST_TEST_REQUIRE(r.ok(), id << ": " << r.describe());
    }
    wall = std::chrono::duration<double>(clock_type::now() - t0).count();
    return cpu_seconds() - c0;
  };
  const double t1 = terminate_all(start_n(1000));
  const double wall1 = wall;
  BOOST_TEST_REQUIRE(count(s).specs == 0u);
  const double t2 = terminate_all(start_n(10000));
  BOOST_TEST_REQUIRE(count(s).specs == 0u);
  BOOST_TEST_MESSAGE("terminate 1,000: " << t1 << " s CPU (" << wall1 << " s wall); 10,000: " << t2 << " s CPU ("
                                         << wall << " s wall): " << t2 / t1 << "x CPU, " << wall / wall1 << "x wall");
  BOOST_TEST(t2 < 25 * t1, "terminating 10,000 took " << t2 / t1 << "x terminating 1,000");
  ::setrlimit(RLIMIT_NOFILE, &lim);
}

BOOST_AUTO_TEST_SUITE_END()
