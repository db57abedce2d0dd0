// pkit::process_pool and pkit's reaper thread: pool calls made inside callbacks (which
// run on that thread) fail with would_deadlock instead of waiting for it, and
// execute(pkit::wait), which waits for the task's readiness.

#define BOOST_TEST_MODULE libpkit process_pool callbacks
#include "pool_test_support.hpp"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>

using namespace pkit_test;
using namespace pool_test;
using namespace std::chrono_literals;
using task_state = pkit::process_pool::task_state;

// ---------------------------------------------------------------------------
// Blocking pool calls on the reaper thread
// ---------------------------------------------------------------------------

namespace {

/// Calls `f` inside the on_exit callback of a short-lived process — on pkit's reaper
/// thread — and returns the code of the `std::system_error` it threw (empty if none). A
/// call that blocks there wedges the reaper for good: the suite then stops at once,
/// since nothing after it could run.
std::error_code code_on_reaper_thread(std::function<void()> f) {
  auto result = std::make_shared<std::promise<std::error_code>>();
  auto reported = result->get_future();
  pkit::process_options o;
  o.on_exit = [f = std::move(f), result](pkit::process&) {
    try {
      f();
      result->set_value({});
    } catch (const std::system_error& e) {
      result->set_value(e.code());
    }
  };
  auto trigger = std::make_unique<pkit::process>(pkit::callable_target{[] { return 0; }}, o);
  trigger->start();
  if (reported.wait_for(event_timeout) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: a pool call blocked pkit's reaper thread\n");
    std::_Exit(EXIT_FAILURE);
  }
  BOOST_TEST(trigger->join() == 0);
  return reported.get();
}

}  // namespace

BOOST_AUTO_TEST_CASE(joining_an_unfinished_task_on_the_reaper_thread_fails_with_would_deadlock) {
  auto gate = make_pipe();
  pkit::process_pool pool{1, gated(gate)};
  auto running = pool.submit(gated_task(1));
  auto queued = pool.submit(gated_task(2));
  BOOST_TEST(code_on_reaper_thread([&] { running.join(); }) == pkit::errc::would_deadlock);
  BOOST_TEST(code_on_reaper_thread([&] { (void)running.join(10ms); }) == pkit::errc::would_deadlock);
  BOOST_TEST(code_on_reaper_thread([&] { queued.join(); }) == pkit::errc::would_deadlock);
  open_gate(gate, 2);
  BOOST_TEST(running.join() == 1);
  BOOST_TEST(queued.join() == 2);
  // Finished: now joining on the reaper thread has nothing to wait for.
  int code = -1;
  BOOST_TEST(!code_on_reaper_thread([&] { code = queued.join(); }));
  BOOST_TEST(code == 2);
}

BOOST_AUTO_TEST_CASE(a_task_can_join_itself_in_the_pools_on_exit) {
  auto gate = make_pipe();
  std::promise<int> joined;
  std::mutex m;  // the gate orders these, but only through a child: invisible to TSan
  std::optional<pkit::process_pool::task> self;  // set before the task can end
  auto o = gated(gate);
  o.on_exit = [&](pkit::process&) {
    try {
      std::lock_guard<std::mutex> lock(m);
      joined.set_value(self->join());
    } catch (...) {
      joined.set_exception(std::current_exception());
    }
  };
  pkit::process_pool pool{1, o};
  {
    auto t = pool.execute(gated_task(6));
    std::lock_guard<std::mutex> lock(m);
    self = std::move(t);
  }
  open_gate(gate, 1);
  auto f = joined.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(f.get() == 6);
}

BOOST_AUTO_TEST_CASE(a_tasks_on_exit_may_destroy_the_pool_and_still_use_its_process) {
  // The pool holds the only reference to the task (the handle is dropped), so destroying
  // the pool from the task's own on_exit must not take the process with it while the
  // callback still uses it (ASan saw a use after free).
  // The pool and the promise are shared with the callback: the test may end (and its
  // locals go) while the callback is still inside set_value on the reaper thread.
  auto pool = std::make_shared<std::unique_ptr<pkit::process_pool>>();
  auto seen = std::make_shared<std::promise<std::optional<pkit::exit_status>>>();
  pkit::process_options o;
  o.on_exit = [pool, seen](pkit::process& p) {
    pool->reset();  // nothing runs any more: nothing to wait for, also here
    seen->set_value(p.status());
  };
  *pool = std::make_unique<pkit::process_pool>(1, o);
  (void)(*pool)->submit(pkit::callable_target{[] { return 3; }});
  auto f = seen->get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(f.get() == std::optional<pkit::exit_status>{pkit::exit_status::exited(3)});
  BOOST_TEST(!*pool);
}

BOOST_AUTO_TEST_CASE(execute_on_a_full_pool_on_the_reaper_thread_fails_with_would_deadlock) {
  auto gate = make_pipe();
  pkit::process_pool pool{2, gated(gate)};
  auto a = pool.execute(gated_task(1));
  // A free slot: execute has nothing to wait for, also on the reaper thread.
  std::optional<pkit::process_pool::task> b;
  BOOST_TEST(!code_on_reaper_thread([&] { b = pool.execute(gated_task(2)); }));
  BOOST_TEST_REQUIRE(b.has_value());
  BOOST_TEST(b->state() == task_state::running);
  // Full: it would wait for an exit only the reaper thread can report.
  BOOST_TEST(code_on_reaper_thread([&] { pool.execute(gated_task(3)); }) == pkit::errc::would_deadlock);
  BOOST_TEST(pool.busy() == 2u);
  BOOST_TEST(pool.queued() == 0u);
  BOOST_TEST(live_children() == 2u);
  open_gate(gate, 2);
  BOOST_TEST(a.join() == 1);
  BOOST_TEST(b->join() == 2);
}

BOOST_AUTO_TEST_CASE(close_and_terminate_on_the_reaper_thread_fail_with_would_deadlock_while_tasks_run) {
  auto gate = make_pipe();
  pkit::process_pool pool{1, gated(gate)};
  auto t = pool.execute(gated_task(4));
  BOOST_TEST(code_on_reaper_thread([&] { pool.close(); }) == pkit::errc::would_deadlock);
  BOOST_TEST(code_on_reaper_thread([&] { pool.terminate(); }) == pkit::errc::would_deadlock);
  // They changed nothing: the pool still takes tasks, and t still runs.
  auto queued = pool.submit(gated_task(5));
  BOOST_TEST(t.state() == task_state::running);
  open_gate(gate, 2);
  BOOST_TEST(t.join() == 4);
  BOOST_TEST(queued.join() == 5);
  // Idle, a pool can be closed there: there is nothing to wait for.
  BOOST_TEST(!code_on_reaper_thread([&] { pool.close(); }));
  BOOST_CHECK_EXCEPTION(pool.submit(gated_task(6)), std::system_error, has_code(pkit::errc::pool_closed));
}

BOOST_AUTO_TEST_CASE(a_pool_destroyed_on_the_reaper_thread_kills_its_tasks_without_waiting) {
  auto gate = make_pipe();
  auto pool = std::make_unique<pkit::process_pool>(1, gated(gate));
  auto running = pool->submit(gated_task(1));
  auto queued = pool->submit(gated_task(2));
  const pid_t pid = running.pid().value_or(0);
  BOOST_TEST_REQUIRE(pid > 0);
  BOOST_TEST(!code_on_reaper_thread([&] { pool.reset(); }));
  BOOST_TEST(running.join(event_timeout) == std::optional<int>{-SIGKILL});
  BOOST_TEST(!proc_exists(pid));
  BOOST_TEST(queued.state() == task_state::finished);
  BOOST_TEST_REQUIRE(queued.failure().has_value());
  BOOST_TEST((queued.failure()->error == pkit::errc::pool_closed));
  BOOST_TEST(zombie_children().empty());
}

// ---------------------------------------------------------------------------
// execute(pkit::wait): returns once the task is ready, like the seed's execute
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(execute_with_wait_returns_only_after_the_task_is_ready) {
  // The shell writes a marker to fd 4, then the readiness newline to fd 3. If execute
  // returns only after the newline, the marker is already in the pipe.
  auto marker = make_pipe();
  pkit::process_options o;
  o.notify_fd = 3;
  o.pass_fds.emplace_back(4, marker.write.get());
  pkit::process_pool pool{1, o};
  auto t = pool.execute(pkit::wait,
                        pkit::command{"/bin/sh", "-c",
                                      "sleep 0.3; printf marker >&4; printf '\\n' >&3; exec \"$0\" pause",
                                      child_path()});
  BOOST_TEST(read_available(marker.read.get()) == "marker");
  BOOST_TEST(t.state() == task_state::running);
  BOOST_TEST(pool.busy() == 1u);
  pool.terminate();
  BOOST_TEST(t.join() == -SIGTERM);
}

BOOST_AUTO_TEST_CASE(execute_with_wait_on_a_task_that_dies_before_ready_throws_and_gives_its_slot_back_once) {
  pkit::process_options o;
  o.notify_fd = 3;
  pkit::process_pool pool{1, o};
  BOOST_CHECK_EXCEPTION(pool.execute(pkit::wait, child_command({"exit", "3"})), pkit::spawn_error,
                        [](const pkit::spawn_error& e) {
                          return e.code() == pkit::errc::died_before_ready;
                        });
  BOOST_TEST(pool.busy() == 0u);
  // The slot came back once: the pool takes exactly one task again.
  std::error_code ec;
  auto t = pool.try_execute(child_command({"notify", "3", "0"}), ec);
  BOOST_TEST_REQUIRE(t.has_value(), ec.message());
  BOOST_TEST(pool.busy() == 1u);
  BOOST_TEST(!pool.try_execute(child_command({"notify", "3", "0"}), ec).has_value());
  BOOST_TEST(ec == pkit::errc::pool_full);
  pool.terminate();
  BOOST_TEST(zombie_children().empty());
}

BOOST_AUTO_TEST_CASE(execute_with_wait_on_a_task_never_ready_fails_with_start_timeout) {
  pkit::process_options o;
  o.notify_fd = 3;
  o.ready_timeout = 100ms;
  pkit::process_pool pool{1, o};
  BOOST_CHECK_EXCEPTION(pool.execute(pkit::wait, child_command({"pause"})), pkit::spawn_error,
                        [](const pkit::spawn_error& e) { return e.code() == pkit::errc::start_timeout; });
  BOOST_TEST(pool.busy() == 0u);
  BOOST_TEST(live_children() == 0u);
  BOOST_TEST(zombie_children().empty());
  // The pool still starts a task after the timeout. Not the helper: a sanitized helper's
  // own start can outlast 100 ms (TSan beside the fault tests); a shell is ready at once.
  auto t = pool.execute(pkit::wait, pkit::command{"/bin/sh", "-c", "echo >&3; exec sleep 60"});
  BOOST_TEST(t.state() == task_state::running);
}

BOOST_AUTO_TEST_CASE(execute_with_wait_on_a_full_pool_on_the_reaper_thread_fails_with_would_deadlock) {
  auto gate = make_pipe();
  pkit::process_pool pool{1, gated(gate)};
  auto t = pool.execute(gated_task(1));
  BOOST_TEST(code_on_reaper_thread([&] { pool.execute(pkit::wait, gated_task(2)); }) ==
             pkit::errc::would_deadlock);
  open_gate(gate, 1);
  BOOST_TEST(t.join() == 1);
}
