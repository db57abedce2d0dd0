// Example "Restartable" (process-kit: processes restart following a policy).
//
// restart(policy) ends the current run and starts a new one in the same object:
// restart_policy::graceful waits for the run to end by itself (join), restart_policy::forced
// stops it first with the process's stop policy (SIGTERM, a grace period, then SIGKILL).

#include "check.hpp"

#include <cstdio>

// [snippet]
#include <pkit/process.hpp>

#include <chrono>
#include <csignal>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

void restart_a_process() {
  std::mutex mutex;
  std::vector<int> exitcodes;  // one per run, recorded by on_exit

  pkit::process_options options;
  options.on_exit = [&](pkit::process& proc) {
    std::lock_guard lock{mutex};
    if (auto status = proc.status()) exitcodes.push_back(status->exit_code());
  };
  pkit::process worker{[] { std::this_thread::sleep_for(300ms); }, options};

  pid_t first = worker.start();
  pid_t second = worker.restart(pkit::restart_policy::graceful);  // run 1 ends by itself
  pid_t third = worker.restart(pkit::restart_policy::forced);     // run 2 is stopped
  worker.join();                                                  // run 3 ends by itself
  std::printf("  runs: %d, %d, %d\n", first, second, third);

  std::lock_guard lock{mutex};
  check(exitcodes == std::vector<int>{0, -SIGTERM, 0}, "exit codes 0, -SIGTERM, 0");
  check(worker.runs() == 3, "three runs");
}
// [/snippet]

int main() {
  return run_example("restart", [] { restart_a_process(); });
}
