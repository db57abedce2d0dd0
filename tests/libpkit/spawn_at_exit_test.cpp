// Spawning an external program while a thread's thread_local objects are being destroyed,
// and from a static object's destructor after main has returned.
//
// libpkit's program spawn runs the CLONE_VM child on a small stack it keeps per spawning
// thread. The cases below spawn after that thread's own stack object is destroyed (its
// thread_local destructor ran first): a thread_local destructor of a worker thread, a
// thread_local destructor of the main thread (run by exit(), before the statics) and a
// static destructor. Each spawns `pkit_test_child exit N` and checks it exited with N.
//
// Not a Boost.Test program: the interesting part happens after main returns. Exit code 0
// when every spawn was seen to exit with its code; 1 otherwise, with a message on stderr.

#include <pkit/process.hpp>

#include "test_child_path.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <unistd.h>

namespace {

// Outcomes of the spawns made after main: 0 not run yet, 1 ok, -1 failed. Trivially
// destructible, so they stay readable until the very end.
std::atomic<int> worker_thread_local_result{0};
std::atomic<int> main_thread_local_result{0};

// Spawns `pkit_test_child exit code` and waits for it. True when it exited with `code`.
bool spawn_and_check(const char* where, int code) noexcept {
  try {
    pkit::process p{pkit::command{{pkit_test_common::child_path(), "exit", std::to_string(code)}}};
    p.start();
    const pkit::exit_status st = p.join_status();
    if (st == pkit::exit_status::exited(code)) return true;
    std::fprintf(stderr, "spawn_at_exit_test: %s: the child ended with %s, expected exit %d\n",
                 where, st.to_string().c_str(), code);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spawn_at_exit_test: %s: %s\n", where, e.what());
  }
  return false;
}

// Spawns from its destructor and stores the outcome.
struct spawn_in_destructor {
  const char* where;
  int code;
  std::atomic<int>* result;
  ~spawn_in_destructor() { result->store(spawn_and_check(where, code) ? 1 : -1); }
};

// Constructs a thread_local spawn_in_destructor *before* this thread's first spawn, so
// that its destructor runs after libpkit's per-thread spawn state was destroyed (thread
// locals are destroyed in the reverse order of their construction).
void arm_thread_local(const char* where, int code, std::atomic<int>& result) {
  thread_local spawn_in_destructor armed{where, code, &result};
  (void)armed;
}

// Runs last: after main returned, after the main thread's thread_local destructors.
struct check_at_static_destruction {
  ~check_at_static_destruction() {
    int failures = 0;
    if (main_thread_local_result.load() != 1) {
      std::fprintf(stderr, "spawn_at_exit_test: the main thread's thread_local destructor %s\n",
                   main_thread_local_result.load() == 0 ? "did not run" : "failed");
      ++failures;
    }
    if (!spawn_and_check("static destructor", 9)) ++failures;
    // A second one: the fallback stack of the first must not have been left in a state
    // that breaks the next spawn.
    if (!spawn_and_check("static destructor, again", 10)) ++failures;
    if (failures != 0) std::_Exit(1);
    std::fprintf(stderr, "spawn_at_exit_test: every spawn at exit worked\n");
  }
} the_check;

}  // namespace

int main() {
  // The worker: arms its thread_local, spawns once (creating its spawn state after the
  // armed object), then ends; its thread_local destructors run in this order: libpkit's
  // spawn state, then the armed object, which spawns.
  std::thread worker{[] {
    arm_thread_local("worker thread_local destructor", 7, worker_thread_local_result);
    if (!spawn_and_check("worker", 5)) worker_thread_local_result.store(-2);
  }};
  worker.join();
  if (worker_thread_local_result.load() != 1) {
    std::fprintf(stderr, "spawn_at_exit_test: the worker thread's thread_local destructor %s\n",
                 worker_thread_local_result.load() == 0 ? "did not run" : "failed");
    return 1;
  }

  // The same on the main thread: its thread_local destructors run in exit(), before the
  // static destructors.
  arm_thread_local("main thread_local destructor", 8, main_thread_local_result);
  if (!spawn_and_check("main", 6)) return 1;
  return 0;
}
