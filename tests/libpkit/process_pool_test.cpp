// Behaviour of pkit::process_pool: bounded parallelism, one process per task.
//
// Most tasks block reading one byte from fd 3, a "gate" pipe the test controls: each
// byte the test writes lets exactly one task finish, so the test decides when slots
// free up, without sleeping.

#define BOOST_TEST_MODULE libpkit process_pool
#include "pool_test_support.hpp"

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <sched.h>

using namespace pkit_test;
using namespace pool_test;
using namespace std::chrono_literals;
using task_state = pkit::process_pool::task_state;

namespace {

void block_forever() {
  for (;;) ::pause();
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_pool_runs_no_more_tasks_at_once_than_it_has_slots) {
  auto gate = make_pipe();
  pkit::process_pool pool{2, gated(gate)};
  BOOST_TEST(pool.slots() == 2u);
  BOOST_TEST(pool.busy() == 0u);

  auto t1 = pool.execute(gated_task(11));
  auto t2 = pool.execute(gated_task(12));
  BOOST_TEST(pool.busy() == 2u);

  std::error_code ec;
  auto t3 = pool.try_execute(gated_task(13), ec);
  BOOST_TEST(!t3.has_value());
  BOOST_TEST(ec == pkit::errc::pool_full);
  BOOST_TEST(pool.busy() == 2u);

  open_gate(gate, 2);
  BOOST_TEST(t1.join() == 11);
  BOOST_TEST(t2.join() == 12);
}

BOOST_AUTO_TEST_CASE(execute_blocks_while_all_slots_are_busy_and_resumes_when_a_task_exits) {
  auto gate = make_pipe();
  pkit::process_pool pool{2, gated(gate)};
  auto t1 = pool.execute(gated_task(1));
  auto t2 = pool.execute(gated_task(2));

  auto third = std::async(std::launch::async, [&] { return pool.execute(gated_task(3)); });
  // Not a synchronisation: a window in which a non-blocking execute would be caught.
  BOOST_TEST((third.wait_for(100ms) == std::future_status::timeout));
  BOOST_TEST(pool.busy() == 2u);

  open_gate(gate, 1);  // exactly one of t1, t2 can finish; nobody joins it
  BOOST_TEST_REQUIRE((third.wait_for(event_timeout) == std::future_status::ready));
  auto t3 = third.get();
  BOOST_TEST(pool.busy() == 2u);
  const int finished = (t1.state() == task_state::finished) + (t2.state() == task_state::finished);
  BOOST_TEST(finished == 1);
  BOOST_TEST(t3.state() == task_state::running);

  open_gate(gate, 2);
  BOOST_TEST(t1.join() == 1);
  BOOST_TEST(t2.join() == 2);
  BOOST_TEST(t3.join() == 3);
}

BOOST_AUTO_TEST_CASE(try_execute_succeeds_while_a_slot_is_free) {
  auto gate = make_pipe();
  pkit::process_pool pool{1, gated(gate)};
  std::error_code ec = make_error_code(pkit::errc::pool_full);
  auto t = pool.try_execute(gated_task(5), ec);
  BOOST_TEST_REQUIRE(t.has_value());
  BOOST_TEST(!ec);
  BOOST_TEST(pool.busy() == 1u);
  open_gate(gate, 1);
  BOOST_TEST(t->join() == 5);
}

BOOST_AUTO_TEST_CASE(tasks_have_distinct_ids_and_report_state_pid_and_exit_code) {
  auto gate = make_pipe();
  pkit::process_pool pool{3, gated(gate)};
  std::vector<pkit::process_pool::task> tasks;
  for (int i = 0; i < 3; ++i) tasks.push_back(pool.execute(gated_task(20 + i)));

  std::set<std::uint64_t> ids;
  std::set<pid_t> pids;
  for (const auto& t : tasks) {
    ids.insert(t.id());
    BOOST_TEST(t.state() == task_state::running);
    BOOST_TEST_REQUIRE(t.pid().has_value());
    BOOST_TEST(is_unreaped_child(*t.pid()));
    pids.insert(*t.pid());
    BOOST_TEST(!t.exitcode().has_value());
    BOOST_TEST(!t.status().has_value());
    BOOST_TEST(!t.join(10ms).has_value());
  }
  BOOST_TEST(ids.size() == 3u);
  BOOST_TEST(pids.size() == 3u);

  open_gate(gate, 3);
  for (int i = 0; i < 3; ++i) {
    const auto& t = tasks[static_cast<std::size_t>(i)];
    BOOST_TEST(t.join(event_timeout) == std::optional<int>{20 + i});
    BOOST_TEST(t.state() == task_state::finished);
    BOOST_TEST(t.exitcode() == std::optional<int>{20 + i});
    BOOST_TEST(t.status() == std::optional<pkit::exit_status>{pkit::exit_status::exited(20 + i)});
    BOOST_TEST(!t.pid().has_value());
  }
  for (pid_t pid : pids) BOOST_TEST(!proc_exists(pid));
}

BOOST_AUTO_TEST_CASE(a_task_handle_can_be_copied_and_joined_from_several_threads) {
  auto gate = make_pipe();
  pkit::process_pool pool{1, gated(gate)};
  const auto t = pool.execute(gated_task(9));
  const auto copy = t;
  BOOST_TEST(copy.id() == t.id());
  auto other = std::async(std::launch::async, [copy] { return copy.join(); });
  open_gate(gate, 1);
  BOOST_TEST(t.join() == 9);
  BOOST_TEST_REQUIRE((other.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(other.get() == 9);
}

BOOST_AUTO_TEST_CASE(close_waits_for_every_task_to_finish) {
  pkit::process_pool pool{2};
  std::vector<pkit::process_pool::task> tasks;
  for (int i = 0; i < 2; ++i) {
    // The tasks end on their own; close() must not return before they have.
    tasks.push_back(pool.execute(pkit::callable_target{[i] {
      std::this_thread::sleep_for(200ms);
      return 30 + i;
    }}));
  }
  pool.close();
  for (int i = 0; i < 2; ++i) {
    const auto& t = tasks[static_cast<std::size_t>(i)];
    BOOST_TEST(t.state() == task_state::finished);
    BOOST_TEST(t.exitcode() == std::optional<int>{30 + i});
  }
  BOOST_TEST(pool.busy() == 0u);
}

BOOST_AUTO_TEST_CASE(terminate_stops_every_running_task) {
  pkit::process_pool pool{3};
  std::vector<pkit::process_pool::task> tasks;
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    tasks.push_back(pool.execute(block_forever));
    pids.push_back(tasks.back().pid().value_or(0));
  }
  pool.terminate();
  for (const auto& t : tasks) {
    BOOST_TEST(t.state() == task_state::finished);
    BOOST_TEST(t.exitcode() == std::optional<int>{-SIGTERM});
  }
  for (pid_t pid : pids) {
    BOOST_TEST(!is_unreaped_child(pid));
    BOOST_TEST(!proc_exists(pid));
  }
  BOOST_TEST(pool.busy() == 0u);
  BOOST_TEST(zombie_children().empty());
}

BOOST_AUTO_TEST_CASE(terminate_uses_the_options_stop_policy) {
  pkit::process_options o;
  o.stop = pkit::stop_policy{SIGUSR1, event_timeout, false};
  pkit::process_pool pool{1, o};
  auto t = pool.execute(block_forever);
  pool.terminate();
  BOOST_TEST(t.exitcode() == std::optional<int>{-SIGUSR1});
}

BOOST_AUTO_TEST_CASE(execute_after_close_fails_with_pool_closed) {
  pkit::process_pool pool{1};
  pool.close();
  BOOST_CHECK_EXCEPTION(pool.execute(pkit::callable_target{[] {}}), std::system_error,
                        has_code(pkit::errc::pool_closed));
  std::error_code ec;
  BOOST_TEST(!pool.try_execute(pkit::callable_target{[] {}}, ec).has_value());
  BOOST_TEST(ec == pkit::errc::pool_closed);
  BOOST_TEST(children_of_self().empty());
}

BOOST_AUTO_TEST_CASE(execute_after_terminate_fails_with_pool_closed) {
  pkit::process_pool pool{1};
  pool.terminate();
  BOOST_CHECK_EXCEPTION(pool.execute(pkit::callable_target{[] {}}), std::system_error,
                        has_code(pkit::errc::pool_closed));
  std::error_code ec;
  BOOST_TEST(!pool.try_execute(pkit::callable_target{[] {}}, ec).has_value());
  BOOST_TEST(ec == pkit::errc::pool_closed);
}

BOOST_AUTO_TEST_CASE(a_failed_start_gives_its_slot_back) {
  pkit::process_pool pool{1};
  BOOST_CHECK_EXCEPTION(pool.execute(pkit::command{"/nonexistent-pkit-dir/no-such-program"}),
                        pkit::spawn_error, [](const pkit::spawn_error& e) {
                          return e.code() == std::errc::no_such_file_or_directory &&
                                 e.failure().stage == "exec";
                        });
  BOOST_TEST(pool.busy() == 0u);
  std::error_code ec;
  auto t = pool.try_execute(pkit::callable_target{[] { return 4; }}, ec);
  BOOST_TEST_REQUIRE(t.has_value());
  BOOST_TEST(!ec);
  BOOST_TEST(t->join() == 4);
  BOOST_TEST(zombie_children().empty());
}

BOOST_AUTO_TEST_CASE(a_pool_runs_programs_too) {
  pkit::process_pool pool{2};
  auto a = pool.execute(child_command({"exit", "5"}));
  auto b = pool.execute(child_command({"kill-self", "TERM"}));
  BOOST_TEST(a.join() == 5);
  BOOST_TEST(b.join() == -SIGTERM);
  BOOST_TEST(b.status() == std::optional<pkit::exit_status>{pkit::exit_status::killed(SIGTERM)});
}

BOOST_AUTO_TEST_CASE(slots_reports_the_configured_number_and_zero_means_the_cpu_count) {
  pkit::process_pool four{4};
  BOOST_TEST(four.slots() == 4u);
  pkit::process_pool automatic{0};
  BOOST_TEST(automatic.slots() >= 1u);
  // "The number of CPUs": the online ones, or those this process may run on.
  cpu_set_t set;
  CPU_ZERO(&set);
  ::sched_getaffinity(0, sizeof set, &set);
  const auto online = static_cast<std::size_t>(::sysconf(_SC_NPROCESSORS_ONLN));
  const auto usable = static_cast<std::size_t>(CPU_COUNT(&set));
  BOOST_TEST((automatic.slots() == online || automatic.slots() == usable),
             "slots " << automatic.slots() << ", online " << online << ", usable " << usable);
}

BOOST_AUTO_TEST_CASE(the_options_on_exit_runs_after_the_pool_released_the_slot) {
  std::promise<std::size_t> busy_in_callback;
  std::atomic<int> calls{0};
  pkit::process_pool* pool_ptr = nullptr;
  pkit::process_options o;
  o.on_exit = [&](pkit::process& p) {
    if (calls.fetch_add(1) == 0) {
      busy_in_callback.set_value(pool_ptr->busy());
      (void)p;
    }
  };
  pkit::process_pool pool{1, o};
  pool_ptr = &pool;
  auto t = pool.execute(pkit::callable_target{[] { return 0; }});
  auto f = busy_in_callback.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(f.get() == 0u);
  BOOST_TEST(t.join() == 0);
  BOOST_TEST(calls.load() == 1);
}

BOOST_AUTO_TEST_CASE(a_slot_is_released_without_anyone_joining_the_task) {
  auto gate = make_pipe();
  pkit::process_pool pool{1, gated(gate)};
  auto t = pool.execute(gated_task(0));
  const pid_t pid = t.pid().value_or(0);
  open_gate(gate, 1);
  wait_until_exited(pid);
  // No join: the next execute must get the slot once the reaper has seen the exit.
  auto next = std::async(std::launch::async, [&] { return pool.execute(gated_task(1)); });
  BOOST_TEST_REQUIRE((next.wait_for(event_timeout) == std::future_status::ready));
  auto t2 = next.get();
  open_gate(gate, 1);
  BOOST_TEST(t2.join() == 1);
  BOOST_TEST(t.join() == 0);
}

BOOST_AUTO_TEST_CASE(destroying_a_pool_terminates_its_running_tasks) {
  std::vector<pid_t> pids;
  {
    pkit::process_pool pool{2};
    for (int i = 0; i < 2; ++i) pids.push_back(pool.execute(block_forever).pid().value_or(0));
    for (pid_t pid : pids) BOOST_TEST_REQUIRE(is_unreaped_child(pid));
  }
  for (pid_t pid : pids) {
    BOOST_TEST(!is_unreaped_child(pid));
    BOOST_TEST(!proc_exists(pid));
  }
}

BOOST_AUTO_TEST_CASE(submit_queues_a_task_in_state_ready_until_a_slot_frees) {
  auto gate = make_pipe();
  pkit::process_pool pool{1, gated(gate)};
  auto t1 = pool.submit(gated_task(21));
  auto t2 = pool.submit(gated_task(22));  // returns at once: the only slot is busy
  BOOST_TEST(t1.state() == task_state::running);
  BOOST_TEST(t2.state() == task_state::ready);
  BOOST_TEST(!t2.pid().has_value());
  BOOST_TEST(pool.queued() == 1u);
  BOOST_TEST(pool.busy() == 1u);

  open_gate(gate, 1);  // one task can finish: t1, the only one running
  BOOST_TEST(t1.join() == 21);
  // t1's slot went straight to t2, on the reaper thread, before t1 read as finished.
  BOOST_TEST(pool.queued() == 0u);
  BOOST_TEST(pool.busy() == 1u);
  BOOST_TEST(t2.state() == task_state::running);
  open_gate(gate, 1);
  BOOST_TEST(t2.join() == 22);
}

BOOST_AUTO_TEST_CASE(queued_tasks_start_in_submission_order) {
  auto order = make_pipe();
  pkit::process_options o;
  o.pass_fds.emplace_back(4, order.write.get());
  pkit::process_pool pool{1, o};
  std::vector<pkit::process_pool::task> tasks;
  for (char c : std::string("abcde"))
    tasks.push_back(pool.submit(pkit::callable_target{[c] { return ::write(4, &c, 1) == 1 ? 0 : 1; }}));
  for (auto& t : tasks) BOOST_TEST(t.join() == 0);
  order.write.reset();
  BOOST_TEST(read_all(order.read.get()) == "abcde");
}

BOOST_AUTO_TEST_CASE(a_queued_task_whose_start_fails_reports_it_and_frees_the_slot) {
  auto gate = make_pipe();
  pkit::process_pool pool{1, gated(gate)};
  auto t1 = pool.submit(gated_task(1));
  auto bad = pool.submit(pkit::command{"/nonexistent/pkit-no-such-program"});
  auto t3 = pool.submit(gated_task(3));
  BOOST_TEST(bad.state() == task_state::ready);
  open_gate(gate, 2);
  BOOST_TEST(t1.join() == 1);
  BOOST_CHECK_THROW(bad.join(), pkit::spawn_error);
  BOOST_TEST_REQUIRE(bad.failure().has_value());
  BOOST_TEST(bad.failure()->stage == "exec");
  BOOST_TEST((bad.failure()->error == std::errc::no_such_file_or_directory));
  BOOST_TEST(t3.join() == 3);  // the failed start handed the slot on
}

BOOST_AUTO_TEST_CASE(terminate_drops_queued_tasks_with_pool_closed) {
  auto gate = make_pipe();
  pkit::process_pool pool{1, gated(gate)};
  auto running = pool.submit(gated_task(1));
  auto waiting = pool.submit(gated_task(2));
  pool.terminate();
  BOOST_TEST(running.status().has_value());
  BOOST_TEST(running.status()->is_killed());
  BOOST_TEST(waiting.state() == task_state::finished);
  BOOST_TEST_REQUIRE(waiting.failure().has_value());
  BOOST_TEST((waiting.failure()->error == pkit::errc::pool_closed));
  BOOST_CHECK_THROW(pool.submit(gated_task(3)), std::system_error);
}

BOOST_AUTO_TEST_CASE(close_waits_for_queued_tasks_too) {
  pkit::process_pool pool{1};
  std::vector<pkit::process_pool::task> tasks;
  for (int i = 0; i < 4; ++i) tasks.push_back(pool.submit(pkit::callable_target{[i] { return 30 + i; }}));
  pool.close();
  for (int i = 0; i < 4; ++i) {
    BOOST_TEST(tasks[static_cast<std::size_t>(i)].state() == task_state::finished);
    BOOST_TEST(tasks[static_cast<std::size_t>(i)].exitcode() == std::optional<int>(30 + i));
  }
}

// ---------------------------------------------------------------------------
// Observed concurrency
// ---------------------------------------------------------------------------

namespace {

constexpr int event_fd = 4;

/// A task that records its own start ("s<letter>") and end ("e<letter>") on the event
/// pipe (fd 4), with one gate byte (fd 3) in between. Only async-signal-safe calls: it
/// runs in a fork of this multithreaded test.
pkit::callable_target recorded_task(int i) {
  return [i] {
    const char letter = static_cast<char>('a' + i);
    const char start[3] = {'s', letter, '\n'};
    if (::write(event_fd, start, sizeof start) != sizeof start) return 1;
    char c;
    while (::read(gate_fd, &c, 1) < 0 && errno == EINTR) {
    }
    const char end[3] = {'e', letter, '\n'};
    return ::write(event_fd, end, sizeof end) == sizeof end ? 0 : 2;
  };
}

}  // namespace

BOOST_AUTO_TEST_CASE(exactly_slots_tasks_run_at_once_as_the_children_see_it) {
  // Nine tasks queued on three slots. A task cannot end without a gate byte, so before
  // the first byte every task that has started still runs; after each byte, one task
  // ends, and once it is joined its slot has been handed on (join returns only after
  // that): the live children are then exactly the tasks that should run.
  constexpr int slots = 3;
  constexpr int total = 9;
  auto gate = make_pipe();
  auto events = make_pipe();
  auto o = gated(gate);
  o.pass_fds.emplace_back(event_fd, events.write.get());
  pkit::process_pool pool{slots, o};
  std::vector<pkit::process_pool::task> tasks;
  for (int i = 0; i < total; ++i) tasks.push_back(pool.submit(recorded_task(i)));

  std::set<int> running;  // as the children reported it
  auto next_event = [&](char kind) {
    const std::string line = read_line(events.read.get());
    BOOST_TEST_REQUIRE(line.size() == 2u, line);
    BOOST_TEST_REQUIRE(line[0] == kind, "expected '" << kind << "', got " << line);
    const int i = line[1] - 'a';
    BOOST_TEST_REQUIRE((i >= 0 && i < total), line);
    return i;
  };
  for (int k = 0; k < slots; ++k) BOOST_TEST_REQUIRE(running.insert(next_event('s')).second);
  BOOST_TEST(running.size() == std::size_t{slots});  // `slots` tasks did run at once
  BOOST_TEST(live_children() == std::size_t{slots});  // and no more

  int started = slots;
  for (int ended = 0; ended < total; ++ended) {
    open_gate(gate, 1);
    const int i = next_event('e');
    BOOST_TEST_REQUIRE(running.erase(i) == 1u);
    BOOST_TEST(tasks[static_cast<std::size_t>(i)].join() == 0);
    if (started < total) {
      BOOST_TEST_REQUIRE(running.insert(next_event('s')).second);
      ++started;
    }
    const auto expected = static_cast<std::size_t>(std::min(slots, total - ended - 1));
    BOOST_TEST(running.size() == expected);
    BOOST_TEST(live_children() == expected);
  }
  events.write.reset();
  BOOST_TEST(read_all(events.read.get()).empty());  // no task ran twice or late
}

// ---------------------------------------------------------------------------
// Queued tasks whose start fails
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fifty_thousand_queued_tasks_that_fail_to_start_are_each_reported) {
  // An empty argv fails start() at validation, before any fork, so all 50,000 fail in a
  // row when `first` exits and its slot is handed down the queue on the reaper thread.
  // Handing it on once per failure by recursion overflowed that thread's stack.
  constexpr std::size_t failing = 50000;
  auto gate = make_pipe();
  pkit::process_pool pool{1, gated(gate)};
  auto first = pool.submit(gated_task(7));
  std::vector<pkit::process_pool::task> bad;
  bad.reserve(failing);
  for (std::size_t i = 0; i < failing; ++i) bad.push_back(pool.submit(pkit::command{}));
  auto last = pool.submit(gated_task(8));
  BOOST_TEST(pool.queued() == failing + 1);

  open_gate(gate, 2);
  BOOST_TEST(first.join() == 7);
  BOOST_TEST(last.join(event_timeout) == std::optional<int>{8});
  std::size_t reported = 0;
  for (const auto& t : bad) {
    const auto f = t.failure();
    if (t.state() == task_state::finished && f && f->error == pkit::errc::invalid_argument) ++reported;
  }
  BOOST_TEST(reported == failing);
  BOOST_CHECK_EXCEPTION(bad.back().join(), pkit::spawn_error, [](const pkit::spawn_error& e) {
    return e.code() == pkit::errc::invalid_argument;
  });
  pool.close();
  BOOST_TEST(pool.busy() == 0u);
  BOOST_TEST(zombie_children().empty());
}

// A forked copy of the program that destroys its copy of a pool with a task running spun
// for ever (its stop() failed with not_owner, `busy` never dropped): in a copy the pool's
// blocking calls fail with not_owner and the destructor does nothing — the original's
// task is untouched.
BOOST_AUTO_TEST_CASE(a_forked_copy_that_destroys_its_pool_leaves_the_originals_task_alone) {
  auto pool = std::make_unique<pkit::process_pool>(1);
  auto task = pool->execute([] {
    for (;;) ::pause();
  });
  const std::string verdict = verdict_of_forked_copy([&] {
    char terminated = 't';
    try {
      pool->terminate();
    } catch (const std::system_error& e) {
      if (e.code() == pkit::errc::not_owner) terminated = 'T';
    }
    pool.reset();  // must return at once and signal nothing
    return std::string(1, terminated) + "D";
  });
  BOOST_TEST(verdict == "TD");
  BOOST_TEST(pool->busy() == 1u, "the original's task still runs");
  pool->terminate();
  BOOST_TEST(task.join() == -SIGTERM);
}
