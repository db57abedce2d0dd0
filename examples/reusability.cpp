// Example "Reusability" (process-kit: a Process is a hull for successive runs).
//
// Once a run's exit has been collected, the object is reset -- pid() is empty, the exit
// code of the run stays readable until the next start -- and it can be started again.
// Also shows the state accessors: is_alive(), pid(), exitcode(), runs().

#include "check.hpp"

// [snippet]
#include <pkit/process.hpp>

#include <chrono>
#include <thread>

using namespace std::chrono_literals;

void reuse_a_process() {
  pkit::process process{[] { std::this_thread::sleep_for(300ms); }};

  pid_t pid = process.start(pkit::wait);
  check(process.is_alive() && process.pid() == pid, "while it runs: is_alive(), pid()");

  int exitcode = process.join();
  check(exitcode == 0 && process.exitcode() == 0, "the run exited with code 0");
  check(!process.pid() && !process.is_alive(), "once collected: no pid, not alive");

  process.start();  // the same object, a new run
  check(!process.exitcode(), "a new run clears the last exit code");
  check(process.join() == 0 && process.runs() == 2, "two runs, both exited with 0");
}
// [/snippet]

int main() {
  return run_example("reusability", [] { reuse_a_process(); });
}
