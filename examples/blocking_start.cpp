// Example "Blocking start" (process-kit: process.start(wait=True)).
//
// start(pkit::wait) returns only once the child is ready to run its target, with its
// signal handling in place: a SIGTERM sent right after it returns is honoured, never lost.

#include "check.hpp"

#include <cstdio>

// [snippet]
#include <pkit/process.hpp>

#include <chrono>
#include <csignal>
#include <optional>
#include <thread>

using namespace std::chrono_literals;

void start_then_sigterm() {
  pkit::process process{[] { std::this_thread::sleep_for(10s); }};
  pid_t pid = process.start(pkit::wait);  // the child is ready to run its target
  ::kill(pid, SIGTERM);                   // sent at once: honoured, never lost

  std::optional<int> exitcode = process.join(5s);
  check(exitcode == -SIGTERM, "the child died of the SIGTERM");
  check(!process.is_alive(), "is_alive() is false");
}
// [/snippet]

// The same race, many times over: every SIGTERM sent right after start(wait) must kill the
// child (a lost one would leave it sleeping for 10 s, and join(5s) would give up).
void many_rounds(int rounds) {
  int honoured = 0;
  for (int i = 0; i < rounds; ++i) {
    pkit::process process{[] { std::this_thread::sleep_for(10s); }};
    ::kill(process.start(pkit::wait), SIGTERM);
    if (process.join(5s) == -SIGTERM) ++honoured;
  }
  check(honoured == rounds, std::to_string(honoured) + "/" + std::to_string(rounds) +
                                " immediate SIGTERMs honoured");
}

int main() {
  return run_example("blocking_start", [] {
    start_then_sigterm();
    many_rounds(50);
  });
}
