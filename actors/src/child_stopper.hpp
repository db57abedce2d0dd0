#pragma once

// Finishes the stop of children whose process actor is gone.
//
// A process actor that terminates with its child still running must stop it per its spec
// (stop signal, SIGKILL after the stop timeout) without waiting for that itself: an actor
// must not block, and its state's destructor is noexcept. The actor sends the stop signal
// (once) and hands the libpkit process to this one long-lived thread, which sends SIGKILL
// when the stop timeout runs out, and destroys the process once pkit's reaper thread has
// reported its exit (so the child is reaped). One thread for the whole program, however
// many children are being stopped: no thread per child (which thousands of dying actors
// could not create), and handing a child over allocates nothing (its `stop_job` is
// allocated with the process, when the actor first starts it).
//
// The thread is started on first use (`instance()`, from a handler that can report the
// failure) and lives until the program ends. A child whose stop timeout is infinite
// stays in its care until it exits. When the program itself ends, the children still
// here are not waited for: a program's child gets SIGKILL from the kernel
// (PR_SET_PDEATHSIG) when the thread that created it ends — for a process actor's
// program, the CAF worker that started it, i.e. at the latest when the actor system
// shuts down; for a fork-server target, when the fork server ends.

#include <pkit/process.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include <sys/types.h>

namespace pkit::actors::detail {

/// A child being stopped after its actor is gone. Made by the actor along with its
/// process; filled in and handed over by the actor's destructor.
struct stop_job {
  using clock = std::chrono::steady_clock;

  std::unique_ptr<process> proc;
  /// When to send SIGKILL (`clock::time_point::max()`: never).
  clock::time_point kill_at = clock::time_point::max();
  /// A process group whose leftover members get SIGKILL once the child is gone (as
  /// `process::stop` does with `kill_group`); 0 for none.
  pid_t group = 0;

  // The stopper's (guarded by its mutex).
  bool killed = false;  // SIGKILL sent (or due: sent right after the next unlock)
  bool exited = false;  // the reaper has reported the exit
  stop_job* next = nullptr;
  stop_job* next_due = nullptr;
};

class child_stopper {
public:
  /// The stopper, started on first use. Throws std::system_error when its thread cannot
  /// be created (call it where that can be reported).
  static child_stopper& instance();

  /// Takes `job` (its process running, its stop signal sent) until its child is gone.
  /// Never blocks for long, never allocates, never throws.
  void adopt(std::unique_ptr<stop_job> job) noexcept;

  /// The reaper's report that `job`'s child has exited (call from the process's on_exit
  /// callback, for a job adopted before). The job is destroyed soon after, on the
  /// stopper's thread — not before that callback has returned.
  void exited(stop_job* job) noexcept;

  child_stopper(const child_stopper&) = delete;
  child_stopper& operator=(const child_stopper&) = delete;

private:
  child_stopper();
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  stop_job* jobs_ = nullptr;  // owned (released unique_ptrs), an intrusive list
  bool changed_ = false;
  std::thread thread_;
};

}  // namespace pkit::actors::detail
