#pragma once

/// \file
/// The process of a worker's previous run, while it may still be ending (internal).

#include <pkit/unique_fd.hpp>

#include <sys/types.h>

namespace pkit::actors::detail {

/// Watches the OS process of a worker's previous run after its process actor died while
/// the process still ran: the dying actor handed the process to pkit's stopper, which
/// gives it its stop signal and up to its stop timeout. A supervisor must not start the
/// child's next run before that process has exited (never two instances of one child).
///
/// The process is watched through a pidfd opened on its pid when the actor's death is
/// learnt; the pidfd becomes readable when the process exits. It is only polled (never
/// waited on: the process is the reaper thread's to collect, and the actor that polls
/// must not block). Not thread-safe: owned by one supervisor actor.
class old_run {
 public:
  /// Starts watching `pid`, the pid of the run whose actor died. If the process has
  /// already been reaped (pidfd_open fails), there is nothing to wait for. The pid cannot
  /// have been reused in between unless the kernel cycled through every pid since that
  /// run's process exited (a window of one message delivery), which is not guarded against.
  void watch(pid_t pid) noexcept;

  /// Whether the watched process still runs (has not exited). Once it has, the pidfd is
  /// closed and this stays false until the next watch.
  bool lingers() noexcept;

 private:
  unique_fd pidfd_;
};

}  // namespace pkit::actors::detail
