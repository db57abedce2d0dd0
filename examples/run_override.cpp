// Example "Overriding Process.run method" (process-kit: class MyProcessObj(Process)).
//
// A subclass of pkit::process overrides run(); start() runs it in a child process forked
// from this one. Returning from run() exits with 0; pkit::exit_child(code) ends the child
// early with `code`.

#include "check.hpp"

// [snippet]
#include <pkit/process.hpp>

#include <cstdio>
#include <string>
#include <unistd.h>

class greeter : public pkit::process {
public:
  explicit greeter(std::string name) : name_(std::move(name)) {}

protected:
  void run() override {  // runs in the child
    if (name_.empty()) pkit::exit_child(2);
    std::printf("  child %d: hello, %s\n", getpid(), name_.c_str());
  }

private:
  std::string name_;
};

void run_greeters() {
  greeter world{"world"};
  world.start();
  check(world.join() == 0, "run() returned: exit code 0");

  greeter nobody{""};
  nobody.start();
  check(nobody.join() == 2, "run() called exit_child(2): exit code 2");
}
// [/snippet]

int main() {
  return run_example("run_override", [] { run_greeters(); });
}
