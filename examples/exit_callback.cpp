// Example "Exit callbacks" (process-kit: Process(on_exit=callback)).
//
// process_options::on_exit is called exactly once per run, on pkit's reaper thread, as
// soon as the child has ended -- whether or not anyone joins. While it runs, pid() is
// still the pid of the run that ended. join() returns only after it has run, so join()
// is the synchronization point before looking at what the callback recorded.

#include "check.hpp"

// [snippet]
#include <pkit/process.hpp>

#include <atomic>
#include <chrono>
#include <thread>

using namespace std::chrono_literals;

void exit_callback() {
  std::atomic<pid_t> exited_pid{0};
  std::atomic<int> calls{0};

  pkit::process_options options;
  options.on_exit = [&](pkit::process& proc) {  // on pkit's reaper thread
    exited_pid = proc.pid().value_or(-1);       // the pid of the run that ended
    ++calls;
  };
  pkit::process process{[] { std::this_thread::sleep_for(1s); }, options};

  pid_t pid = process.start();
  process.terminate();
  process.join();  // returns after on_exit has run

  check(exited_pid == pid, "on_exit saw the pid of the run that ended");
  check(calls == 1, "on_exit was called exactly once");
}
// [/snippet]

int main() {
  return run_example("exit_callback", [] { exit_callback(); });
}
