#pragma once

// The thread that creates children for threads that may not outlive them.

#include <functional>
#include <memory>
#include <thread>

namespace pkit::detail {

/// A thread that lives as long as the program and does nothing but create children on
/// request. Linux ties PR_SET_PDEATHSIG to the creating *thread*: a child made by a
/// short-lived thread would be killed when that thread ends, so `die_with_parent`
/// children of threads other than the main one are made here.
///
/// It never runs user code (no callback, no target: a forked child runs its target in the
/// child), so a thread that holds its own lock while starting a process never waits for
/// a thread that waits for that lock — unlike the reaper thread, which runs `on_exit`.
/// Created on first use, never destroyed; a forked child that uses pkit gets its own.
class spawn_thread {
public:
  static spawn_thread& instance();

  /// Runs `task` on the spawn thread and waits for it; rethrows what it threw. Runs it
  /// directly when called on the spawn thread itself.
  void run(const std::function<void()>& task);

  spawn_thread(const spawn_thread&) = delete;
  spawn_thread& operator=(const spawn_thread&) = delete;

private:
  spawn_thread();
  struct job;
  void loop();

  struct queue;
  std::unique_ptr<queue> queue_;  // the instance is never destroyed (see instance())
  std::thread::id thread_id_;
};

}  // namespace pkit::detail
