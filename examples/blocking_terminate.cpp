// Example "Blocking terminate" (process-kit: process.terminate(wait=True)).
//
// terminate() sends SIGTERM and returns; terminate(pkit::wait) returns once the child is
// gone and reaped. join(timeout) gives up after the timeout and returns no value.

#include "check.hpp"

// [snippet]
#include <pkit/process.hpp>

#include <chrono>
#include <csignal>
#include <optional>
#include <thread>

using namespace std::chrono_literals;

void terminate_and_wait() {
  pkit::process process{[] { std::this_thread::sleep_for(10s); }};
  process.start();

  std::optional<int> exitcode = process.join(100ms);  // gives up: the child sleeps 10 s
  check(!exitcode && process.is_alive(), "join(100ms) returned no value; still alive");

  process.terminate(pkit::wait);  // SIGTERM, then wait until the child is gone and reaped
  check(!process.is_alive(), "after terminate(wait): not alive");
  check(process.exitcode() == -SIGTERM, "exit code -SIGTERM");
}

void terminate_then_join() {
  pkit::process process{[] { std::this_thread::sleep_for(10s); }};
  process.start();
  process.terminate();  // only sends SIGTERM
  check(process.join() == -SIGTERM, "terminate() then join(): exit code -SIGTERM");
}
// [/snippet]

int main() {
  return run_example("blocking_terminate", [] {
    terminate_and_wait();
    terminate_then_join();
  });
}
