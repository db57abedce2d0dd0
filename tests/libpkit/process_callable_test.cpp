// Behaviour of pkit::process with C++ callable targets (the fork start method) and
// with subclasses overriding run(): the seed's Process, in C++.
//
// Children report back through pipes passed with `pass_fds` (a child gets no other
// descriptor) or through `stdio::pipe()` streams; they write with write(2) only.

#define BOOST_TEST_MODULE libpkit process (callable targets)
#include "test_support.hpp"

#include <pkit/process.hpp>
#include <pkit/target.hpp>

#include <atomic>
#include <fstream>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include <sys/prctl.h>

using namespace pkit_test;
using namespace std::chrono_literals;

namespace {

/// The fd number under which children get the report pipe.
constexpr int report_fd = 3;

/// Options that hand the write end of `pipe` to the child as fd 3.
pkit::process_options reporting_to(const pipe_ends& pipe, pkit::process_options o = {}) {
  o.pass_fds.emplace_back(report_fd, pipe.write.get());
  return o;
}

/// A target blocking forever (until a signal ends it).
void block_forever() {
  for (;;) ::pause();
}

/// Reads one byte from fd 3 (the test's gate), then returns `code`.
pkit::callable_target wait_for_gate_then_return(int code) {
  return [code] {
    char c;
    while (::read(report_fd, &c, 1) < 0 && errno == EINTR) {
    }
    return code;
  };
}

/// A target that forks a grandchild (same process group), reports its pid as a line on
/// fd 3, and blocks; both hold fd 3 open, so EOF on the pipe means both are dead.
void spawn_grandchild_and_block() {
  const pid_t g = ::fork();
  if (g == 0) block_forever();
  write_all(report_fd, std::to_string(g) + "\n");
  block_forever();
}

std::atomic<int> parent_sigterm_count{0};
extern "C" void count_sigterm(int) { parent_sigterm_count.fetch_add(1); }

/// Stops a test's child if the test bails out early with a failed REQUIRE.
struct kill_on_exit {
  pkit::process& p;
  ~kill_on_exit() {
    std::error_code ec;
    if (p.is_alive()) p.kill(ec);
  }
};

}  // namespace

// ---------------------------------------------------------------------------
// Running a target
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_callable_target_runs_in_a_forked_child_whose_pid_start_returns) {
  auto pipe = make_pipe();
  auto gate = make_pipe();
  pkit::process_options o = reporting_to(pipe);
  o.pass_fds.emplace_back(4, gate.read.get());
  pkit::process p{[] {
                    write_all(report_fd, std::to_string(::getpid()) + " " +
                                             std::to_string(::getppid()) + "\n");
                    char c;
                    while (::read(4, &c, 1) < 0 && errno == EINTR) {
                    }
                  },
                  o};
  const pid_t pid = p.start();
  pipe.write.reset();

  BOOST_TEST(pid > 0);
  BOOST_TEST(pid != ::getpid());
  const std::string report = read_line(pipe.read.get());
  BOOST_TEST(report == std::to_string(pid) + " " + std::to_string(::getpid()));
  BOOST_TEST(p.pid() == std::optional<pid_t>{pid});  // the child waits for the gate
  BOOST_TEST(is_unreaped_child(pid));

  BOOST_TEST_REQUIRE(write_all(gate.write.get(), "x"));
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(join_returns_zero_when_the_target_returns_void) {
  pkit::process p{[] {}};
  p.start();
  BOOST_TEST(p.join() == 0);
  BOOST_TEST(p.status() == std::optional<pkit::exit_status>{pkit::exit_status::exited(0)});
}

BOOST_AUTO_TEST_CASE(join_returns_the_exit_code_the_target_returns) {
  pkit::process p{[] { return 42; }};
  p.start();
  BOOST_TEST(p.join() == 42);
}

BOOST_AUTO_TEST_CASE(exit_child_ends_the_child_with_the_requested_code_after_unwinding) {
  auto pipe = make_pipe();
  pkit::process p{[] {
                    struct on_unwind {
                      ~on_unwind() { write_all(report_fd, "unwound;"); }
                    } guard;
                    [] { pkit::exit_child(7); }();
                    write_all(report_fd, "not reached;");
                  },
                  reporting_to(pipe)};
  p.start();
  pipe.write.reset();
  BOOST_TEST(read_all(pipe.read.get()) == "unwound;");
  BOOST_TEST(p.join() == 7);
}

BOOST_AUTO_TEST_CASE(a_target_that_throws_exits_with_1_and_reports_what_name_and_pid_on_stderr) {
  pkit::process_options o;
  o.name = "thrower-proc";
  o.err = pkit::stdio::pipe();
  pkit::process p{[]() -> int { throw std::runtime_error("boom-marker-4711"); }, o};
  const pid_t pid = p.start();
  pkit::unique_fd err = p.take_stderr_pipe();
  BOOST_TEST_REQUIRE(static_cast<bool>(err));

  const std::string text = read_all(err.get());
  BOOST_TEST_MESSAGE("child stderr: " << text);
  BOOST_TEST(text.find("boom-marker-4711") != std::string::npos);
  BOOST_TEST(text.find("thrower-proc") != std::string::npos);
  BOOST_TEST(text.find(std::to_string(pid)) != std::string::npos);
  BOOST_TEST(p.join() == 1);
}

BOOST_AUTO_TEST_CASE(the_exception_report_goes_to_a_stderr_given_as_a_descriptor) {
  auto pipe = make_pipe();
  pkit::process_options o;
  o.err = pkit::stdio::fd(pipe.write.get());
  pkit::process p{[] { throw std::logic_error("fd-stderr-marker"); }, o};
  const pid_t pid = p.start();
  pipe.write.reset();

  const std::string text = read_all(pipe.read.get());
  BOOST_TEST(text.find("fd-stderr-marker") != std::string::npos);
  BOOST_TEST(text.find("process") != std::string::npos);  // the default name
  BOOST_TEST(text.find(std::to_string(pid)) != std::string::npos);
  BOOST_TEST(p.join() == 1);
}

BOOST_AUTO_TEST_CASE(a_target_that_throws_a_non_standard_exception_exits_with_1) {
  pkit::process_options o;
  o.err = pkit::stdio::null();
  pkit::process p{[] { throw 42; }, o};
  p.start();
  BOOST_TEST(p.join() == 1);
}

BOOST_AUTO_TEST_CASE(pkit_target_binds_arguments_that_the_child_receives) {
  auto pipe = make_pipe();
  std::string text = "abc 123";
  auto t = pkit::target(
      [](const std::string& s, int n) {
        write_all(report_fd, s + "|" + std::to_string(n));
        return n;
      },
      text, 5);
  text = "changed after binding";  // the target holds its own copy

  pkit::process p{std::move(t), reporting_to(pipe)};
  p.start();
  pipe.write.reset();
  BOOST_TEST(read_all(pipe.read.get()) == "abc 123|5");
  BOOST_TEST(p.join() == 5);
}

BOOST_AUTO_TEST_CASE(pkit_target_with_a_void_function_gives_exit_code_0) {
  auto pipe = make_pipe();
  pkit::process p{pkit::target([](int a, int b) { write_all(report_fd, std::to_string(a + b)); },
                               20, 22),
                  reporting_to(pipe)};
  p.start();
  pipe.write.reset();
  BOOST_TEST(read_all(pipe.read.get()) == "42");
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(a_callable_target_is_empty_by_default_and_runs_in_process_when_called) {
  pkit::callable_target empty;
  BOOST_TEST(!static_cast<bool>(empty));

  int calls = 0;
  pkit::callable_target returns_code{[&calls] {
    ++calls;
    return 3;
  }};
  BOOST_TEST(static_cast<bool>(returns_code));
  BOOST_TEST(returns_code() == 3);
  BOOST_TEST(calls == 1);

  pkit::callable_target returns_void{[&calls] { ++calls; }};
  BOOST_TEST(returns_void() == 0);
  BOOST_TEST(calls == 2);

  BOOST_TEST(pkit::target([](int x) { return x * 2; }, 21)() == 42);
}

BOOST_AUTO_TEST_CASE(throwing_exit_request_ends_the_child_with_its_code) {
  pkit::process p{[] { throw pkit::exit_request{23}; }};
  p.start();
  BOOST_TEST(p.join() == 23);
}

BOOST_AUTO_TEST_CASE(exit_child_outside_a_child_is_just_an_exception) {
  try {
    pkit::exit_child(3);
  } catch (const pkit::exit_request& r) {
    BOOST_TEST(r.code == 3);
    return;
  }
  BOOST_FAIL("exit_child did not throw exit_request");
}

BOOST_AUTO_TEST_CASE(a_process_is_neither_copyable_nor_movable) {
  static_assert(!std::is_copy_constructible_v<pkit::process>);
  static_assert(!std::is_copy_assignable_v<pkit::process>);
  static_assert(!std::is_move_constructible_v<pkit::process>);
  static_assert(!std::is_move_assignable_v<pkit::process>);
  BOOST_TEST(std::has_virtual_destructor_v<pkit::process>);
}

// ---------------------------------------------------------------------------
// Subclassing
// ---------------------------------------------------------------------------

namespace {
class writer_process : public pkit::process {
public:
  writer_process(std::string text, int code, pkit::process_options o)
      : pkit::process(std::move(o)), text_(std::move(text)), code_(code) {}

protected:
  void run() override {
    write_all(report_fd, "run:" + text_);
    if (code_ != 0) pkit::exit_child(code_);
  }

private:
  std::string text_;
  int code_;
};
}  // namespace

BOOST_AUTO_TEST_CASE(a_subclass_overriding_run_runs_it_in_the_child) {
  auto pipe = make_pipe();
  writer_process p{"subclass-member", 9, reporting_to(pipe)};
  const pid_t pid = p.start();
  pipe.write.reset();
  BOOST_TEST(pid != ::getpid());
  BOOST_TEST(read_all(pipe.read.get()) == "run:subclass-member");
  BOOST_TEST(p.join() == 9);
}

BOOST_AUTO_TEST_CASE(a_subclass_whose_run_returns_exits_with_0_and_can_run_again) {
  auto pipe = make_pipe();
  writer_process p{"x", 0, reporting_to(pipe)};
  p.start();
  BOOST_TEST(p.join() == 0);
  p.start();
  BOOST_TEST(p.join() == 0);
  pipe.write.reset();
  BOOST_TEST(read_all(pipe.read.get()) == "run:xrun:x");
}

// ---------------------------------------------------------------------------
// Blocking start: signals sent right after start are honoured
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_sigterm_sent_right_after_start_wait_kills_the_child_despite_a_parent_handler) {
  parent_sigterm_count = 0;
  signal_disposition_guard guard{SIGTERM, count_sigterm};

  pkit::process p{block_forever};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);
  BOOST_TEST_REQUIRE(::kill(pid, SIGTERM) == 0);

  const auto code = p.join(event_timeout);
  BOOST_TEST(code == std::optional<int>{-SIGTERM});
  BOOST_TEST(parent_sigterm_count.load() == 0);
}

BOOST_AUTO_TEST_CASE(a_sigterm_sent_right_after_a_plain_start_is_honoured_too) {
  parent_sigterm_count = 0;
  signal_disposition_guard guard{SIGTERM, count_sigterm};

  pkit::process p{block_forever};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start();
  BOOST_TEST_REQUIRE(::kill(pid, SIGTERM) == 0);

  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-SIGTERM});
  BOOST_TEST(parent_sigterm_count.load() == 0);
}

BOOST_AUTO_TEST_CASE(a_sigterm_sent_right_after_start_is_honoured_when_the_parent_ignores_or_blocks_it) {
  signal_disposition_guard ignore{SIGTERM, SIG_IGN};
  signal_block_guard block{SIGTERM};

  pkit::process p{block_forever};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);
  BOOST_TEST_REQUIRE(::kill(pid, SIGTERM) == 0);
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-SIGTERM});
}

BOOST_AUTO_TEST_CASE(the_target_runs_with_no_blocked_and_no_ignored_signals) {
  signal_disposition_guard ignore_usr1{SIGUSR1, SIG_IGN};
  signal_disposition_guard ignore_pipe{SIGPIPE, SIG_IGN};
  signal_block_guard block{SIGUSR2, SIGTERM};

  auto pipe = make_pipe();
  pkit::process p{[] { write_all(report_fd, read_text_file("/proc/self/status")); },
                  reporting_to(pipe)};
  p.start(pkit::wait);
  pipe.write.reset();
  const std::string status = read_all(pipe.read.get());
  BOOST_TEST(p.join() == 0);

  BOOST_TEST(all_zero_hex(status_field(status, "SigBlk:")), "SigBlk: " << status_field(status, "SigBlk:"));
  BOOST_TEST(all_zero_hex(status_field(status, "SigIgn:")), "SigIgn: " << status_field(status, "SigIgn:"));
}

// ---------------------------------------------------------------------------
// terminate / kill / signal
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(terminate_sends_sigterm_and_join_returns_minus_15) {
  pkit::process p{block_forever};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  p.terminate();
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-15});
  BOOST_TEST(p.status() == std::optional<pkit::exit_status>{pkit::exit_status::killed(SIGTERM)});
}

BOOST_AUTO_TEST_CASE(terminate_with_wait_returns_only_once_the_child_is_reaped) {
  pkit::process p{block_forever};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);
  p.terminate(pkit::wait);

  BOOST_TEST(!p.is_alive());
  BOOST_TEST(!p.pid().has_value());
  BOOST_TEST(p.exitcode() == std::optional<int>{-SIGTERM});
  BOOST_TEST(!is_unreaped_child(pid));
  BOOST_TEST(!is_zombie(pid));
  BOOST_TEST(!proc_exists(pid));
}

BOOST_AUTO_TEST_CASE(terminate_with_wait_and_an_error_code_reports_success) {
  pkit::process p{block_forever};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);
  std::error_code ec = make_error_code(pkit::errc::invalid_argument);
  p.terminate(pkit::wait, ec);
  BOOST_TEST(!ec);
  BOOST_TEST(!p.is_alive());
  BOOST_TEST(!proc_exists(pid));
  BOOST_TEST(p.join() == -SIGTERM);
}

BOOST_AUTO_TEST_CASE(terminate_reaches_the_child_only_not_its_process_group) {
  auto pipe = make_pipe();
  pkit::process p{spawn_grandchild_and_block, reporting_to(pipe)};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  pipe.write.reset();
  const pid_t grandchild = std::stoi(read_line(pipe.read.get()));

  p.terminate(pkit::wait);
  BOOST_TEST(p.exitcode() == std::optional<int>{-SIGTERM});
  BOOST_TEST(is_running(grandchild));

  ::kill(grandchild, SIGKILL);
  BOOST_TEST(eof_within(pipe.read.get()));
  reap_if_ours(grandchild);
}

BOOST_AUTO_TEST_CASE(kill_sends_sigkill_and_join_returns_minus_9) {
  pkit::process p{block_forever};
  p.start(pkit::wait);
  p.kill();
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-SIGKILL});
}

BOOST_AUTO_TEST_CASE(kill_reaches_the_whole_group_the_child_leads) {
  auto pipe = make_pipe();
  pkit::process p{spawn_grandchild_and_block, reporting_to(pipe)};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  pipe.write.reset();
  const pid_t grandchild = std::stoi(read_line(pipe.read.get()));

  p.kill();
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-SIGKILL});
  const bool grandchild_died = eof_within(pipe.read.get());
  BOOST_TEST(grandchild_died);
  if (!grandchild_died) ::kill(grandchild, SIGKILL);
  reap_if_ours(grandchild);
}

BOOST_AUTO_TEST_CASE(signal_delivers_the_given_signal_to_the_child) {
  pkit::process p{block_forever};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  p.signal(SIGUSR1);
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-SIGUSR1});
}

BOOST_AUTO_TEST_CASE(join_returns_minus_the_signal_number_when_the_target_dies_of_a_signal) {
  pkit::process p{[] { ::raise(SIGKILL); }};
  p.start();
  BOOST_TEST(p.join() == -SIGKILL);
}

// ---------------------------------------------------------------------------
// join
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(join_with_a_timeout_returns_nothing_while_the_child_runs_and_the_code_later) {
  auto gate = make_pipe();
  pkit::process_options o;
  o.pass_fds.emplace_back(report_fd, gate.read.get());
  pkit::process p{wait_for_gate_then_return(4), o};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);

  BOOST_TEST(!p.join(50ms).has_value());
  BOOST_TEST(!p.join_status(10ms).has_value());
  BOOST_TEST(p.is_alive());

  BOOST_TEST_REQUIRE(write_all(gate.write.get(), "x"));
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{4});
  BOOST_TEST(p.join_status(event_timeout) ==
             std::optional<pkit::exit_status>{pkit::exit_status::exited(4)});
}

BOOST_AUTO_TEST_CASE(several_threads_joining_at_once_all_get_the_exit_code) {
  auto gate = make_pipe();
  pkit::process_options o;
  o.pass_fds.emplace_back(report_fd, gate.read.get());
  pkit::process p{wait_for_gate_then_return(17), o};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);

  constexpr int joiners = 4;
  std::latch all_started{joiners + 1};
  std::vector<std::future<int>> results;
  for (int i = 0; i < joiners; ++i) {
    results.push_back(std::async(std::launch::async, [&] {
      all_started.arrive_and_wait();
      return p.join();
    }));
  }
  all_started.arrive_and_wait();
  BOOST_TEST_REQUIRE(write_all(gate.write.get(), "x"));

  for (auto& r : results) {
    BOOST_TEST_REQUIRE((r.wait_for(event_timeout) == std::future_status::ready));
    BOOST_TEST(r.get() == 17);
  }
}

BOOST_AUTO_TEST_CASE(join_status_describes_a_signal_death) {
  pkit::process p{block_forever};
  p.start(pkit::wait);
  p.kill();
  const pkit::exit_status s = p.join_status();
  BOOST_TEST(s.is_killed());
  BOOST_TEST(s.signal() == SIGKILL);
  BOOST_TEST(s.exit_code() == -SIGKILL);
  BOOST_TEST(s.to_string() == "killed by signal 9 (SIGKILL)");
}

BOOST_AUTO_TEST_CASE(join_after_the_run_ended_returns_its_code_at_once) {
  pkit::process p{[] { return 12; }};
  p.start();
  BOOST_TEST(p.join() == 12);
  BOOST_TEST(p.join() == 12);
  BOOST_TEST(p.join(0ms) == std::optional<int>{12});
  BOOST_TEST(p.join_status() == pkit::exit_status::exited(12));
}

// ---------------------------------------------------------------------------
// State: is_alive, pid, exitcode, status, runs, name
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(is_alive_is_true_only_while_the_child_runs) {
  auto gate = make_pipe();
  pkit::process_options o;
  o.pass_fds.emplace_back(report_fd, gate.read.get());
  pkit::process p{wait_for_gate_then_return(0), o};
  kill_on_exit cleanup{p};
  BOOST_TEST(!p.is_alive());

  const pid_t pid = p.start(pkit::wait);
  BOOST_TEST(p.is_alive());

  BOOST_TEST_REQUIRE(write_all(gate.write.get(), "x"));
  wait_until_exited(pid);  // terminated, maybe not yet processed by pkit
  BOOST_TEST(!p.is_alive());
  p.join();
  BOOST_TEST(!p.is_alive());
}

BOOST_AUTO_TEST_CASE(pid_is_empty_before_start_and_after_the_exit_is_collected) {
  auto gate = make_pipe();
  pkit::process_options o;
  o.pass_fds.emplace_back(report_fd, gate.read.get());
  pkit::process p{wait_for_gate_then_return(0), o};
  kill_on_exit cleanup{p};
  BOOST_TEST(!p.pid().has_value());
  const pid_t pid = p.start();
  BOOST_TEST(p.pid() == std::optional<pid_t>{pid});
  BOOST_TEST_REQUIRE(write_all(gate.write.get(), "x"));
  p.join();
  BOOST_TEST(!p.pid().has_value());
  BOOST_TEST(!proc_exists(pid));
}

BOOST_AUTO_TEST_CASE(exitcode_and_status_are_empty_until_the_run_ends_and_kept_until_the_next_start) {
  auto gate = make_pipe();
  pkit::process_options o;
  o.pass_fds.emplace_back(report_fd, gate.read.get());
  pkit::process p{wait_for_gate_then_return(3), o};
  kill_on_exit cleanup{p};
  BOOST_TEST(!p.exitcode().has_value());
  BOOST_TEST(!p.status().has_value());

  p.start(pkit::wait);
  BOOST_TEST(!p.exitcode().has_value());
  BOOST_TEST(!p.status().has_value());

  BOOST_TEST_REQUIRE(write_all(gate.write.get(), "x"));
  p.join();
  BOOST_TEST(p.exitcode() == std::optional<int>{3});
  BOOST_TEST(p.status() == std::optional<pkit::exit_status>{pkit::exit_status::exited(3)});
  BOOST_TEST(p.exitcode() == std::optional<int>{3});  // still there

  p.start(pkit::wait);
  BOOST_TEST(!p.exitcode().has_value());
  BOOST_TEST(!p.status().has_value());
  BOOST_TEST_REQUIRE(write_all(gate.write.get(), "x"));
  BOOST_TEST(p.join() == 3);
}

BOOST_AUTO_TEST_CASE(runs_counts_the_started_runs) {
  pkit::process p{[] {}};
  BOOST_TEST(p.runs() == 0u);
  p.start();
  BOOST_TEST(p.runs() == 1u);
  p.join();
  p.start();
  BOOST_TEST(p.runs() == 2u);
  p.join();
  BOOST_TEST(p.runs() == 2u);
}

BOOST_AUTO_TEST_CASE(a_callable_process_is_named_process_unless_options_name_it) {
  pkit::process unnamed{[] {}};
  BOOST_TEST(unnamed.name() == "process");
  pkit::process_options o;
  o.name = "worker-7";
  pkit::process named{[] {}, o};
  BOOST_TEST(named.name() == "worker-7");
}

// ---------------------------------------------------------------------------
// on_exit
// ---------------------------------------------------------------------------

namespace {
struct exit_record {
  std::optional<pid_t> pid;
  std::optional<pkit::exit_status> status;
  bool alive = true;
  std::thread::id thread;
};
}  // namespace

BOOST_AUTO_TEST_CASE(on_exit_is_called_once_per_run_without_anyone_joining) {
  std::mutex m;
  std::vector<exit_record> records;
  std::promise<void> first, second;

  pkit::process_options o;
  o.on_exit = [&](pkit::process& proc) {
    std::lock_guard lock{m};
    records.push_back({proc.pid(), proc.status(), proc.is_alive(), std::this_thread::get_id()});
    if (records.size() == 1) first.set_value();
    if (records.size() == 2) second.set_value();
  };
  pkit::process p{[] { return 6; }, o};

  const pid_t pid1 = p.start();
  BOOST_TEST_REQUIRE((first.get_future().wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(p.join() == 6);
  const pid_t pid2 = p.start();
  BOOST_TEST_REQUIRE((second.get_future().wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(p.join() == 6);

  std::lock_guard lock{m};
  BOOST_TEST_REQUIRE(records.size() == 2u);
  BOOST_TEST(records[0].pid == std::optional<pid_t>{pid1});
  BOOST_TEST(records[1].pid == std::optional<pid_t>{pid2});
  for (const auto& r : records) {
    BOOST_TEST(r.status == std::optional<pkit::exit_status>{pkit::exit_status::exited(6)});
    BOOST_TEST(!r.alive);
    BOOST_TEST((r.thread != std::this_thread::get_id()));
  }
}

BOOST_AUTO_TEST_CASE(on_exit_sees_the_pid_of_a_terminated_run) {
  std::promise<std::optional<pid_t>> seen;
  pkit::process_options o;
  o.on_exit = [&](pkit::process& proc) { seen.set_value(proc.pid()); };
  pkit::process p{block_forever, o};
  const pid_t pid = p.start();
  p.terminate();
  auto f = seen.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(f.get() == std::optional<pid_t>{pid});
  BOOST_TEST(p.join() == -SIGTERM);
}

BOOST_AUTO_TEST_CASE(on_exit_may_start_the_process_again) {
  std::atomic<int> calls{0};
  std::promise<void> second_run_ended;
  pkit::process_options o;
  o.on_exit = [&](pkit::process& proc) {
    if (calls.fetch_add(1) == 0) {
      proc.start();
    } else {
      second_run_ended.set_value();
    }
  };
  pkit::process p{[] { return 2; }, o};
  p.start();
  BOOST_TEST_REQUIRE(
      (second_run_ended.get_future().wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(p.join() == 2);
  BOOST_TEST(calls.load() == 2);
  BOOST_TEST(p.runs() == 2u);
}

BOOST_AUTO_TEST_CASE(join_in_on_exit_of_a_process_whose_exit_is_not_reported_fails_with_would_deadlock) {
  pkit::process other{block_forever};
  kill_on_exit cleanup{other};
  other.start(pkit::wait);

  std::promise<std::error_code> outcome;
  pkit::process_options o;
  o.on_exit = [&](pkit::process&) {
    try {
      other.join();
      outcome.set_value({});
    } catch (const std::system_error& e) {
      outcome.set_value(e.code());
    }
  };
  pkit::process p{[] {}, o};
  p.start();

  auto f = outcome.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready));
  BOOST_TEST(f.get() == pkit::errc::would_deadlock);
  BOOST_TEST(p.join() == 0);
  other.terminate(pkit::wait);
}

// ---------------------------------------------------------------------------
// Reuse and restart
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_process_can_be_started_again_once_its_exit_was_collected) {
  auto pipe = make_pipe();
  pkit::process p{[] { write_all(report_fd, std::to_string(::getpid()) + "\n"); },
                  reporting_to(pipe)};
  const pid_t first = p.start();
  BOOST_TEST(read_line(pipe.read.get()) == std::to_string(first));
  BOOST_TEST(p.join() == 0);
  BOOST_TEST(!p.pid().has_value());

  const pid_t second = p.start();
  BOOST_TEST(second != first);
  BOOST_TEST(read_line(pipe.read.get()) == std::to_string(second));
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(restart_graceful_waits_for_the_child_to_exit_by_itself_then_starts_again) {
  std::mutex m;
  std::vector<exit_record> records;
  pkit::process_options o;
  o.on_exit = [&](pkit::process& proc) {
    std::lock_guard lock{m};
    records.push_back({proc.pid(), proc.status(), false, {}});
  };
  // The child ends on its own shortly; a forced restart would kill it with SIGTERM.
  pkit::process p{[] {
                    std::this_thread::sleep_for(200ms);
                    return 7;
                  },
                  o};
  const pid_t first = p.start(pkit::wait);
  const pid_t second = p.restart(pkit::restart_policy::graceful);
  BOOST_TEST(second != first);
  BOOST_TEST(p.pid() == std::optional<pid_t>{second});
  {
    std::lock_guard lock{m};
    BOOST_TEST_REQUIRE(records.size() == 1u);
    BOOST_TEST(records[0].pid == std::optional<pid_t>{first});
    BOOST_TEST(records[0].status == std::optional<pkit::exit_status>{pkit::exit_status::exited(7)});
  }
  BOOST_TEST(p.join() == 7);
  BOOST_TEST(p.runs() == 2u);
}

BOOST_AUTO_TEST_CASE(restart_forced_stops_the_running_child_first) {
  std::mutex m;
  std::vector<exit_record> records;
  pkit::process_options o;
  o.on_exit = [&](pkit::process& proc) {
    std::lock_guard lock{m};
    records.push_back({proc.pid(), proc.status(), false, {}});
  };
  pkit::process p{block_forever, o};
  kill_on_exit cleanup{p};
  const pid_t first = p.start(pkit::wait);
  const pid_t second = p.restart(pkit::restart_policy::forced);
  BOOST_TEST(second != first);
  BOOST_TEST(p.is_alive());
  BOOST_TEST(!proc_exists(first));
  {
    std::lock_guard lock{m};
    BOOST_TEST_REQUIRE(records.size() == 1u);
    BOOST_TEST(records[0].pid == std::optional<pid_t>{first});
    BOOST_TEST(records[0].status ==
               std::optional<pkit::exit_status>{pkit::exit_status::killed(SIGTERM)});
  }
  p.terminate(pkit::wait);
  BOOST_TEST(p.exitcode() == std::optional<int>{-SIGTERM});
}

BOOST_AUTO_TEST_CASE(restart_starts_a_process_that_is_not_running) {
  pkit::process p{[] { return 8; }};
  const pid_t pid = p.restart(pkit::restart_policy::graceful);
  BOOST_TEST(pid > 0);
  BOOST_TEST(p.join() == 8);
  const pid_t again = p.restart(pkit::restart_policy::forced);
  BOOST_TEST(again != pid);
  BOOST_TEST(p.join() == 8);
}

// ---------------------------------------------------------------------------
// stop(policy)
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stop_kills_a_child_that_ignores_the_stop_signal_once_the_timeout_passed) {
  auto pipe = make_pipe();
  pkit::process p{[] {
                    ::signal(SIGTERM, SIG_IGN);
                    write_all(report_fd, "ready\n");
                    block_forever();
                  },
                  reporting_to(pipe)};
  p.start(pkit::wait);
  pipe.write.reset();
  BOOST_TEST_REQUIRE(read_line(pipe.read.get()) == "ready");

  const pkit::exit_status s = p.stop(pkit::stop_policy{SIGTERM, 200ms, false});
  BOOST_TEST(s == pkit::exit_status::killed(SIGKILL));
  BOOST_TEST(!p.is_alive());
  BOOST_TEST(p.exitcode() == std::optional<int>{-SIGKILL});
}

BOOST_AUTO_TEST_CASE(stop_returns_the_exit_status_of_a_child_that_honours_the_stop_signal) {
  PKIT_SKIP_UNDER_TSAN_FORKED_HANDLERS();
  auto pipe = make_pipe();
  pkit::process p{[] {
                    ::signal(SIGTERM, [](int) { ::_exit(21); });
                    write_all(report_fd, "ready\n");
                    block_forever();
                  },
                  reporting_to(pipe)};
  p.start(pkit::wait);
  pipe.write.reset();
  BOOST_TEST_REQUIRE(read_line(pipe.read.get()) == "ready");

  BOOST_TEST(p.stop(pkit::stop_policy{SIGTERM, event_timeout, false}) ==
             pkit::exit_status::exited(21));
}

BOOST_AUTO_TEST_CASE(stop_with_a_zero_timeout_kills_at_once) {
  auto pipe = make_pipe();
  pkit::process p{[] {
                    ::signal(SIGTERM, [](int) { ::_exit(21); });
                    write_all(report_fd, "ready\n");
                    block_forever();
                  },
                  reporting_to(pipe)};
  p.start(pkit::wait);
  pipe.write.reset();
  BOOST_TEST_REQUIRE(read_line(pipe.read.get()) == "ready");

  BOOST_TEST(p.stop(pkit::stop_policy{SIGTERM, 0ms, false}) == pkit::exit_status::killed(SIGKILL));
}

BOOST_AUTO_TEST_CASE(stop_with_an_infinite_timeout_waits_and_never_escalates) {
  PKIT_SKIP_UNDER_TSAN_FORKED_HANDLERS();
  auto pipe = make_pipe();
  pkit::process p{[] {
                    ::signal(SIGTERM, [](int) { ::_exit(22); });
                    write_all(report_fd, "ready\n");
                    block_forever();
                  },
                  reporting_to(pipe)};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  pipe.write.reset();
  BOOST_TEST_REQUIRE(read_line(pipe.read.get()) == "ready");
  BOOST_TEST(p.stop(pkit::stop_policy{SIGTERM, pkit::stop_policy::infinite, false}) ==
             pkit::exit_status::exited(22));
}

BOOST_AUTO_TEST_CASE(stop_without_arguments_uses_the_options_stop_policy) {
  pkit::process_options o;
  o.stop = pkit::stop_policy{SIGUSR1, event_timeout, false};
  pkit::process p{block_forever, o};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  BOOST_TEST(p.stop() == pkit::exit_status::killed(SIGUSR1));
}

BOOST_AUTO_TEST_CASE(stop_with_kill_group_stops_the_grandchildren_too) {
  auto pipe = make_pipe();
  pkit::process p{spawn_grandchild_and_block, reporting_to(pipe)};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  pipe.write.reset();
  const pid_t grandchild = std::stoi(read_line(pipe.read.get()));
  BOOST_TEST(is_running(grandchild));

  BOOST_TEST(p.stop(pkit::stop_policy{SIGTERM, event_timeout, true}) ==
             pkit::exit_status::killed(SIGTERM));
  const bool grandchild_died = eof_within(pipe.read.get());
  BOOST_TEST(grandchild_died);
  if (!grandchild_died) ::kill(grandchild, SIGKILL);
  reap_if_ours(grandchild);
}

BOOST_AUTO_TEST_CASE(stop_without_kill_group_leaves_the_grandchildren_alone) {
  auto pipe = make_pipe();
  pkit::process p{spawn_grandchild_and_block, reporting_to(pipe)};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  pipe.write.reset();
  const pid_t grandchild = std::stoi(read_line(pipe.read.get()));

  BOOST_TEST(p.stop(pkit::stop_policy{SIGTERM, event_timeout, false}) ==
             pkit::exit_status::killed(SIGTERM));
  BOOST_TEST(is_running(grandchild));
  ::kill(grandchild, SIGKILL);
  BOOST_TEST(eof_within(pipe.read.get()));
  reap_if_ours(grandchild);
}

BOOST_AUTO_TEST_CASE(stop_on_a_finished_process_returns_the_last_status) {
  pkit::process p{[] { return 5; }};
  p.start();
  p.join();
  BOOST_TEST(p.stop() == pkit::exit_status::exited(5));
}

BOOST_AUTO_TEST_CASE(stop_on_a_never_started_process_fails_with_not_started) {
  pkit::process p{[] {}};
  BOOST_CHECK_EXCEPTION(p.stop(), std::system_error, has_code(pkit::errc::not_started));
}

// ---------------------------------------------------------------------------
// Misuse
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(start_while_running_fails_with_already_running) {
  pkit::process p{block_forever};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);

  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == pkit::errc::already_running);
  ec.clear();
  p.start(pkit::wait, ec);
  BOOST_TEST(ec == pkit::errc::already_running);
  BOOST_CHECK_EXCEPTION(p.start(), std::system_error, has_code(pkit::errc::already_running));
  BOOST_CHECK_EXCEPTION(p.start(pkit::wait), std::system_error,
                        has_code(pkit::errc::already_running));

  // The running child is untouched.
  BOOST_TEST(p.is_alive());
  BOOST_TEST(p.pid() == std::optional<pid_t>{pid});
  BOOST_TEST(p.runs() == 1u);
  p.terminate(pkit::wait);
}

BOOST_AUTO_TEST_CASE(join_before_any_start_fails_with_not_started) {
  pkit::process p{[] {}};
  BOOST_CHECK_EXCEPTION(p.join(), std::system_error, has_code(pkit::errc::not_started));
  BOOST_CHECK_EXCEPTION(p.join(10ms), std::system_error, has_code(pkit::errc::not_started));
  BOOST_CHECK_EXCEPTION(p.join_status(), std::system_error, has_code(pkit::errc::not_started));
  BOOST_CHECK_EXCEPTION(p.join_status(10ms), std::system_error,
                        has_code(pkit::errc::not_started));
}

BOOST_AUTO_TEST_CASE(terminate_before_any_start_fails_with_not_started) {
  pkit::process p{[] {}};
  std::error_code ec;
  p.terminate(ec);
  BOOST_TEST(ec == pkit::errc::not_started);
  ec.clear();
  p.terminate(pkit::wait, ec);
  BOOST_TEST(ec == pkit::errc::not_started);
  BOOST_CHECK_EXCEPTION(p.terminate(), std::system_error, has_code(pkit::errc::not_started));
  BOOST_CHECK_EXCEPTION(p.terminate(pkit::wait), std::system_error,
                        has_code(pkit::errc::not_started));
}

BOOST_AUTO_TEST_CASE(kill_and_signal_before_any_start_fail_with_not_started) {
  pkit::process p{[] {}};
  std::error_code ec;
  p.kill(ec);
  BOOST_TEST(ec == pkit::errc::not_started);
  ec.clear();
  p.signal(SIGUSR1, ec);
  BOOST_TEST(ec == pkit::errc::not_started);
  BOOST_CHECK_EXCEPTION(p.kill(), std::system_error, has_code(pkit::errc::not_started));
  BOOST_CHECK_EXCEPTION(p.signal(SIGUSR1), std::system_error, has_code(pkit::errc::not_started));
}

BOOST_AUTO_TEST_CASE(terminate_after_the_run_ended_is_a_no_op) {
  pkit::process p{[] { return 4; }};
  p.start();
  BOOST_TEST(p.join() == 4);

  std::error_code ec = make_error_code(pkit::errc::invalid_argument);
  p.terminate(ec);
  BOOST_TEST(!ec);
  BOOST_CHECK_NO_THROW(p.terminate());
  BOOST_CHECK_NO_THROW(p.terminate(pkit::wait));
  BOOST_TEST(p.exitcode() == std::optional<int>{4});
  BOOST_TEST(p.join() == 4);
}

BOOST_AUTO_TEST_CASE(terminate_after_the_child_exited_but_before_join_is_harmless) {
  pkit::process p{[] { return 4; }};
  const pid_t pid = p.start();
  wait_until_exited(pid);
  std::error_code ec;
  p.terminate(ec);
  BOOST_TEST(!ec);
  BOOST_TEST(p.join() == 4);
}

// ---------------------------------------------------------------------------
// Cleanup: destructor, zombies, descriptors
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(destroying_a_running_process_stops_and_reaps_its_child) {
  pid_t pid = 0;
  {
    pkit::process p{block_forever};
    pid = p.start(pkit::wait);
    BOOST_TEST_REQUIRE(is_unreaped_child(pid));
  }
  BOOST_TEST(!is_unreaped_child(pid));
  BOOST_TEST(!proc_exists(pid));
}

BOOST_AUTO_TEST_CASE(destroying_a_process_whose_child_ignores_sigterm_kills_it_after_the_stop_timeout) {
  auto pipe = make_pipe();
  pid_t pid = 0;
  {
    pkit::process_options o = reporting_to(pipe);
    o.stop = pkit::stop_policy{SIGTERM, 100ms, true};
    pkit::process p{[] {
                      ::signal(SIGTERM, SIG_IGN);
                      write_all(report_fd, "ready\n");
                      block_forever();
                    },
                    o};
    pid = p.start(pkit::wait);
    pipe.write.reset();
    BOOST_TEST_REQUIRE(read_line(pipe.read.get()) == "ready");
  }
  BOOST_TEST(!is_unreaped_child(pid));
  BOOST_TEST(!proc_exists(pid));
}

BOOST_AUTO_TEST_CASE(a_joined_child_leaves_no_zombie) {
  pkit::process p{[] { return 0; }};
  const pid_t pid = p.start();
  p.join();
  BOOST_TEST(!is_zombie(pid));
  BOOST_TEST(!is_unreaped_child(pid));
  BOOST_TEST(zombie_children().empty());
}

BOOST_AUTO_TEST_CASE(a_callable_child_gets_only_stdio_and_the_passed_fds) {
  auto pipe = make_pipe();
  auto unrelated = make_pipe();  // open in the parent, must not reach the child
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::null();
  o.err = pkit::stdio::null();
  o.pass_fds.emplace_back(5, pipe.write.get());
  pkit::process p{[] { write_all(5, open_fds_text()); }, o};
  p.start(pkit::wait);
  pipe.write.reset();
  BOOST_TEST(read_all(pipe.read.get()) == "0 1 2 5");
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(a_finished_run_leaves_no_descriptor_behind_in_the_parent) {
  {  // warm up: the reaper and anything else created on first use
    pkit::process warm{[] {}};
    warm.start(pkit::wait);
    warm.join();
  }
  const auto before = open_fds();
  {
    pkit::process_options o;
    o.in = pkit::stdio::pipe();
    o.out = pkit::stdio::pipe();
    o.err = pkit::stdio::pipe();
    pkit::process p{[] { write_all(1, "out"); }, o};
    p.start(pkit::wait);
    (void)p.take_stdin_pipe();  // closed at once
    BOOST_TEST(read_all(p.take_stdout_pipe().get()) == "out");
    BOOST_TEST(read_all(p.take_stderr_pipe().get()).empty());
    p.join();
  }
  check_fds_unchanged(before);
}

BOOST_AUTO_TEST_CASE(stdio_pipes_of_a_callable_child_reach_the_parent) {
  pkit::process_options o;
  o.in = pkit::stdio::pipe();
  o.out = pkit::stdio::pipe();
  pkit::process p{[] {
                    char buf[64];
                    std::string got;
                    ssize_t n;
                    while ((n = ::read(0, buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
                    write_all(1, "echo:" + got);
                  },
                  o};
  p.start();
  pkit::unique_fd in = p.take_stdin_pipe();
  pkit::unique_fd out = p.take_stdout_pipe();
  BOOST_TEST_REQUIRE(static_cast<bool>(in));
  BOOST_TEST_REQUIRE(static_cast<bool>(out));
  BOOST_TEST(!p.take_stderr_pipe());  // stderr is inherited: no pipe
  BOOST_TEST(!p.take_stdin_pipe());   // taken once
  BOOST_TEST_REQUIRE(write_all(in.get(), "hello"));
  in.reset();
  BOOST_TEST(read_all(out.get()) == "echo:hello");
  BOOST_TEST(p.join() == 0);
}

// ---------------------------------------------------------------------------
// Process group and parent death
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_callable_child_leads_a_new_process_group_by_default) {
  auto pipe = make_pipe();
  pkit::process p{[] { write_all(report_fd, std::to_string(::getpgrp())); }, reporting_to(pipe)};
  const pid_t pid = p.start();
  pipe.write.reset();
  BOOST_TEST(read_all(pipe.read.get()) == std::to_string(pid));
  p.join();
}

BOOST_AUTO_TEST_CASE(without_new_process_group_a_callable_child_stays_in_the_parent_group) {
  auto pipe = make_pipe();
  pkit::process_options o = reporting_to(pipe);
  o.new_process_group = false;
  pkit::process p{[] { write_all(report_fd, std::to_string(::getpgrp())); }, o};
  p.start();
  pipe.write.reset();
  BOOST_TEST(read_all(pipe.read.get()) == std::to_string(::getpgrp()));
  p.join();
}

BOOST_AUTO_TEST_CASE(a_child_started_from_a_short_lived_thread_outlives_that_thread) {
  // PR_SET_PDEATHSIG fires when the creating *thread* exits; die_with_parent must mean
  // the parent process, so a child started from a thread that then ends must live on.
  auto ping = make_pipe();
  auto pong = make_pipe();
  pkit::process_options o;
  o.pass_fds = {{3, ping.read.get()}, {4, pong.write.get()}};
  pkit::process p{[] {
                    char c;
                    for (;;) {
                      const ssize_t n = ::read(3, &c, 1);
                      if (n == 1) write_all(4, "alive\n");
                      if (n == 0 || (n < 0 && errno != EINTR)) block_forever();
                    }
                  },
                  o};
  kill_on_exit cleanup{p};
  pid_t pid = 0;
  pid_t tid = 0;
  std::thread starter([&] {
    tid = static_cast<pid_t>(::gettid());
    pid = p.start(pkit::wait);
  });
  starter.join();
  BOOST_TEST_REQUIRE(pid > 0);
  // pthread_join can return before the kernel has finished the thread's exit (which is
  // when a parent-death signal would be sent); wait until the task is gone.
  const std::string task = "/proc/self/task/" + std::to_string(tid);
  const auto deadline = std::chrono::steady_clock::now() + event_timeout;
  while (std::filesystem::exists(task) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  BOOST_TEST_REQUIRE(!std::filesystem::exists(task));
  // The thread's exit (which would send the parent-death SIGKILL) is complete, so a
  // SIGKILL would be pending now. A child with SIGKILL pending cannot return from its
  // read(2): an answer to a ping proves it survived (no timing window).
  BOOST_TEST_REQUIRE(write_all(ping.write.get(), "?"));
  BOOST_TEST(read_line(pong.read.get()) == "alive");
  BOOST_TEST(p.is_alive());
  p.terminate(pkit::wait);
  BOOST_TEST(p.exitcode() == std::optional<int>{-SIGTERM});
}

BOOST_AUTO_TEST_CASE(a_child_spawned_on_its_calling_thread_is_killed_when_that_thread_ends) {
  // spawn_on_calling_thread skips the detour through the reaper thread: the parent-death
  // signal then follows the calling thread, as documented.
  pkit::process_options o;
  o.spawn_on_calling_thread = true;
  pkit::process p{block_forever, o};
  kill_on_exit cleanup{p};
  pid_t pid = 0;
  std::thread starter([&] { pid = p.start(pkit::wait); });
  starter.join();
  BOOST_TEST_REQUIRE(pid > 0);
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-SIGKILL});
}

// spawn_on_calling_thread from many threads at once: each worker forks its children
// itself (its own spawn stack; with the option ignored they would all be the spawn
// thread's — /proc/self/task/TID/children tells). The children wait for one barrier, then
// return their own code. A child made on its calling thread dies with that thread
// (PR_SET_PDEATHSIG), so each worker joins its children before it ends.
// Concurrent fork-method spawns once deadlocked on each other's go pipes (each child
// inherited the other's write end and waited for EOF); the go pipe now carries a byte.
// Under ASan and TSan a child returning a non-zero code once slept forever (in about half
// the runs): the code came back as a thrown exit_request, whose allocation waited on an
// allocator lock another thread held at the fork; the code is now returned.
namespace {
// What /proc says of `pid` (for a failure message): its state and parent, or "gone".
std::string describe_process(pid_t pid) {
  const auto st = pkit_test_proc::read_proc_stat(pid);
  if (!st) return "pid " + std::to_string(pid) + " gone";
  auto first_line = [pid](const char* what) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/" + what);
    std::string line;
    std::getline(f, line);
    return line;
  };
  // The syscall it sleeps in (number first; "running" if none) and the kernel's wait point.
  return "pid " + std::to_string(pid) + " state " + st->state + " ppid " + std::to_string(st->ppid) + " syscall " +
         first_line("syscall") + " wchan " + first_line("wchan");
}
}  // namespace

BOOST_AUTO_TEST_CASE(callables_spawned_on_their_calling_threads_from_many_threads_each_return_their_own_code) {
  constexpr int threads = 8, per_thread = 12;
  auto barrier = make_pipe();
  std::latch spawned(threads + 1);
  std::vector<std::future<std::vector<std::string>>> results;
  for (int t = 0; t < threads; ++t)
    results.push_back(std::async(std::launch::async, [t, &spawned, &barrier] {
      std::vector<std::string> wrong;
      std::vector<std::unique_ptr<pkit::process>> mine;
      std::vector<pid_t> pids;
      for (int i = 0; i < per_thread; ++i) {
        const int code = (t * per_thread + i) % 200 + 1;
        pkit::process_options o;
        o.spawn_on_calling_thread = true;
        o.pass_fds.emplace_back(report_fd, barrier.read.get());
        mine.push_back(std::make_unique<pkit::process>(
            [code] {
              char c;
              while (::read(report_fd, &c, 1) < 0 && errno == EINTR) {
              }
              return code;
            },
            o));
        std::error_code ec;
        const pid_t pid = (i % 2 == 0) ? mine.back()->start(ec) : mine.back()->start(pkit::wait, ec);
        if (ec) wrong.push_back("start: " + ec.message());
        else pids.push_back(pid);
      }
      std::sort(pids.begin(), pids.end());
      const auto made_here = children_of_thread(static_cast<pid_t>(::gettid()));
      if (made_here != pids)
        wrong.push_back("this thread is the parent of " + std::to_string(made_here.size()) + " of its " +
                        std::to_string(pids.size()) + " children");
      spawned.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        const int code = (t * per_thread + i) % 200 + 1;
        const auto got = mine[i]->join(event_timeout);
        if (got != code)
          wrong.push_back("expected " + std::to_string(code) + ", got " +
                          (got ? std::to_string(*got) : "no exit (" + describe_process(mine[i]->pid().value_or(0)) + ")"));
        if (!got) {
          mine[i]->kill();
          const auto after = mine[i]->join(event_timeout);
          wrong.back() += after ? ", killed: " + std::to_string(*after) : ", killed: still no exit";
        }
      }
      return wrong;  // the thread ends only after its children were joined
    }));
  spawned.arrive_and_wait();
  barrier.write.reset();  // EOF: every child returns its code
  for (auto& r : results) {
    const auto wrong = r.get();
    BOOST_TEST(wrong.empty(), wrong.size() << " wrong, first: " << (wrong.empty() ? "" : wrong.front()));
  }
}

BOOST_AUTO_TEST_CASE(die_with_parent_sets_sigkill_as_the_parent_death_signal) {
  for (const bool die : {true, false}) {
    auto pipe = make_pipe();
    pkit::process_options o = reporting_to(pipe);
    o.die_with_parent = die;
    pkit::process p{[] {
                      int sig = -1;
                      ::prctl(PR_GET_PDEATHSIG, &sig);
                      write_all(report_fd, std::to_string(sig));
                    },
                    o};
    p.start();
    pipe.write.reset();
    BOOST_TEST(read_all(pipe.read.get()) == std::to_string(die ? SIGKILL : 0),
               "die_with_parent=" << die);
    p.join();
  }
}
