// The fork server (beyond process-kit; like Python's forkserver start method).
//
// Forking a multithreaded program to run C++ code in the child can deadlock on a lock
// that another thread held at the time of the fork (the allocator, stdio, a logger). A fork
// server is a small process forked at the top of main, while the program has a single
// thread; afterwards it forks each child from itself, on request. Its targets are plain
// functions of string arguments, registered by name before it starts.

#include "check.hpp"

#include <cstdio>
#include <unistd.h>

// [snippet]
#include <pkit/errc.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>
#include <pkit/process_pool.hpp>

#include <future>
#include <string>
#include <vector>

// A target of the server: it runs in a child of the server; its result is the exit code.
int square(const std::vector<std::string>& args) {
  int n = std::stoi(args.at(0));
  std::printf("  child %d of the fork server %d: %d * %d\n", getpid(), getppid(), n, n);
  return n * n;
}

void use_the_server(const pkit::fork_server& server) {
  std::vector<std::future<int>> results;
  for (int n : {2, 3, 4, 5}) {
    results.push_back(std::async(std::launch::async, [&server, n] {  // four threads
      pkit::process p{server.target("square", {std::to_string(n)})};
      p.start();
      return p.join();
    }));
  }
  bool all = true;
  for (int n : {2, 3, 4, 5}) all = all && results[n - 2].get() == n * n;
  check(all, "four threads ran targets of the server: exit codes 4, 9, 16, 25");

  pkit::process_pool pool{2};  // a pool runs server targets too
  check(pool.execute(server.target("square", {"7"})).join() == 49, "a pool task: 49");

  bool unknown = false;
  try {
    server.target("cube");
  } catch (const std::system_error& e) {
    unknown = e.code() == pkit::errc::unknown_target;
  }
  check(unknown, "an unregistered name: errc::unknown_target");
}
// [/snippet]

// [snippet]
int main() {
  // First, while the program has a single thread: the server is a copy of the program
  // as it is now, and runs only the targets registered here.
  pkit::fork_server::registry targets;
  targets.add("square", square);
  pkit::fork_server server = pkit::fork_server::start(std::move(targets));

  // From here on, the program may start threads.
  return run_example("fork_server", [&] { use_the_server(server); });
}
// [/snippet]
