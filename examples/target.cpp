// Example "Providing a target callable" (process-kit: Process(target=f, args=(...))).
//
// A C++ callable, with arguments bound by pkit::target(), runs in a child process forked
// from this one; what it returns is the child's exit code. join() waits for the child and
// returns that code -- or minus the signal number when a signal killed the child.

#include "check.hpp"

// [snippet]
#include <pkit/process.hpp>

#include <csignal>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unistd.h>

// Runs in the child: counts the words of `text`; the count is the child's exit code.
int count_words(const std::string& text, const std::string& label) {
  std::istringstream in{text};
  int words = 0;
  for (std::string word; in >> word;) ++words;
  std::printf("  child %d: %s has %d words\n", getpid(), label.c_str(), words);
  return words;
}

void run_a_target() {
  pkit::process proc{pkit::target(count_words, "abc 123 xyz", "the text")};
  pid_t pid = proc.start();
  int exitcode = proc.join();  // count_words' result
  std::printf("  parent: child %d exited with code %d\n", pid, exitcode);
  check(exitcode == 3, "the exit code is count_words' result");
}
// [/snippet]

// [snippet]
void exit_codes() {
  pkit::process returns{[] {}};                                   // exit code 0
  pkit::process asks{[] { pkit::exit_child(4); }};                // exit code 4
  pkit::process throws{[] { throw std::runtime_error("boom"); }};  // exit code 1
  pkit::process dies{[] { std::raise(SIGKILL); }};                // killed by SIGKILL

  for (pkit::process* p : {&returns, &asks, &throws, &dies}) p->start();

  check(returns.join() == 0, "a target that returns: exit code 0");
  check(asks.join() == 4, "exit_child(4): exit code 4");
  check(throws.join() == 1, "an uncaught exception: exit code 1 (and its message on stderr)");
  check(dies.join() == -SIGKILL, "killed by a signal: minus the signal number");

  pkit::exit_status status = dies.join_status();  // the full status of the run
  check(status.is_killed() && status.signal() == SIGKILL, status.to_string());
}
// [/snippet]

int main() {
  return run_example("target", [] {
    std::printf("a callable with bound arguments:\n");
    run_a_target();
    std::printf("exit codes:\n");
    exit_codes();
  });
}
