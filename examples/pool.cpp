// Process pools (process-kit's ProcessPool): bounded parallelism, one process per task.
//
// execute() starts a task in a new process once one of the pool's slots is free, and
// blocks until then; a slot comes back the moment its process exits. try_execute() never
// blocks. close() waits for every task; terminate() (and the destructor) stops them.
// execute(pkit::wait, ...) also waits until the task's child is ready, like process-kit's
// execute; on pkit's reaper thread (in a callback) a call that would block fails with
// pkit::errc::would_deadlock instead.

#include "check.hpp"

#include <pkit/unique_fd.hpp>

#include <atomic>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

// [snippet]
#include <pkit/errc.hpp>
#include <pkit/process.hpp>
#include <pkit/process_pool.hpp>

#include <chrono>
#include <csignal>
#include <optional>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int slow_identity(int n) {
  std::this_thread::sleep_for(100ms);
  return n;  // the exit code
}

void run_a_pool() {
  pkit::process_pool pool{2};  // at most 2 processes at a time

  std::vector<pkit::process_pool::task> tasks;
  for (int i = 0; i < 6; ++i) {
    tasks.push_back(pool.execute(pkit::target(slow_identity, i)));  // blocks while full
  }
  bool all = true;
  for (int i = 0; i < 6; ++i) all = all && tasks[i].join() == i;
  check(all, "each task's exit code is its argument");
  pool.close();  // no more tasks; waits until every task has finished
}

void a_full_pool() {
  pkit::process_pool pool{1};
  pkit::process_pool::task sleeper = pool.execute([] { std::this_thread::sleep_for(10s); });

  std::error_code ec;
  std::optional<pkit::process_pool::task> more = pool.try_execute([] {}, ec);
  check(!more && ec == pkit::errc::pool_full, "try_execute on a full pool: " + ec.message());

  pool.terminate();  // stops the tasks still running and waits until they are reaped
  check(sleeper.join() == -SIGTERM, "the sleeper was terminated");
}
// [/snippet]

// [snippet]
void execute_and_wait_until_ready() {
  pkit::process_options options;
  options.notify_fd = 3;  // each task writes a newline to its fd 3 once it is ready
  pkit::process_pool pool{1, options};
  pkit::process_pool::task server = pool.execute(
      pkit::wait, pkit::command{"/bin/sh", "-c", "echo set up; printf '\\n' >&3; exec sleep 10"});
  check(server.state() == pkit::process_pool::task_state::running, "ready: it has set up");

  std::error_code in_callback;
  pkit::process_options trigger_options;
  trigger_options.on_exit = [&](pkit::process&) {  // on pkit's reaper thread
    try {
      server.join();  // only this very thread could report the server's exit
    } catch (const std::system_error& e) {
      in_callback = e.code();
    }
  };
  pkit::process trigger{[] {}, trigger_options};
  trigger.start();
  trigger.join();
  check(in_callback == pkit::errc::would_deadlock, "join in a callback: " + in_callback.message());
  pool.terminate();
}
// [/snippet]

// Proof that execute() blocks while every slot is busy, synchronized on events: the tasks
// block on a "gate" pipe (passed as their fd 3) until the parent closes its write end.
int wait_for_gate() {
  pollfd gate{3, POLLIN, 0};
  if (::poll(&gate, 1, 10000) != 1) return 2;  // the gate never opened
  char c;
  return ::read(3, &c, 1) == 0 ? 0 : 3;  // 0: end of file, the gate is open
}

void execute_blocks_while_full() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category());
  pkit::unique_fd gate_read{fds[0]};
  pkit::unique_fd gate_write{fds[1]};

  pkit::process_options options;
  options.pass_fds = {{3, gate_read.get()}};
  pkit::process_pool pool{2, options};
  pkit::process_pool::task a = pool.execute(wait_for_gate);
  pkit::process_pool::task b = pool.execute(wait_for_gate);
  check(pool.busy() == 2, "two tasks wait at the gate: both slots busy");

  std::atomic<bool> opened{false};
  std::thread opener{[&] {
    std::this_thread::sleep_for(200ms);  // gives the next execute() time to block
    opened = true;
    gate_write.reset();  // opens the gate: the tasks see end of file and exit
  }};
  pkit::process_pool::task c = pool.execute(wait_for_gate);  // blocks until a slot is free
  bool returned_after_opening = opened;
  opener.join();

  check(returned_after_opening, "the third execute() returned only after the gate opened");
  check(a.join() == 0 && b.join() == 0 && c.join() == 0, "all three passed the gate");
  pool.close();
  check(pool.busy() == 0, "after close(): every slot is free again");
}

int main() {
  return run_example("pool", [] {
    std::printf("six tasks, two slots:\n");
    run_a_pool();
    std::printf("a full pool:\n");
    a_full_pool();
    std::printf("execute() blocks while the pool is full:\n");
    execute_blocks_while_full();
    std::printf("execute(pkit::wait) returns once the task is ready:\n");
    execute_and_wait_until_ready();
  });
}
