#pragma once

/// \file
/// Tells an actor system that is busy from one whose actors no longer run, for a
/// watchdog (`pkit node`'s guardian).

#include <caf/fwd.hpp>

#include <cstddef>
#include <cstdint>

namespace pkit::actors {

namespace detail {
struct scheduler_counters;
}  // namespace detail

/// Looks at pkit's scheduler (use_pkit_scheduler) from outside: whether the system's
/// actors made progress since the last look, or had nothing to do.
///
/// Why not a periodic message: its delay is the queue's length, not a sign of a stop. A
/// burst of work (a node starting 600 programs at once) keeps a message queued behind it
/// longer than any useful limit while every worker runs; a watchdog that judged by that
/// delay fenced healthy nodes. Here the judgement is "jobs waited, and for a whole period
/// no worker began any": every worker stuck in one handler, or none running at all.
///
/// Not seen: one worker stuck while others run (the others make progress), and a wedged
/// actor whose mailbox fills while it runs (its messages wait in its mailbox, not in the
/// scheduler's queue). A process that is stopped as a whole (SIGSTOP) stops whoever calls
/// look(), which is what a watchdog fed from a thread of that process needs.
///
/// Thread-safe: look() may be called from any thread, but one caller at a time (it keeps
/// the previous count). Does not own the system, which must outlive the probe.
class liveness_probe {
public:
  /// What the scheduler reported at one look.
  struct sample {
    std::uint64_t resumes = 0;  ///< runs of an actor begun since the system started
    std::size_t waiting = 0;    ///< jobs runnable but not running (queued or handed off)
  };

  /// Probes `sys`. Throws std::invalid_argument when `sys` does not run on pkit's
  /// scheduler (nothing to look at: call use_pkit_scheduler on its config).
  explicit liveness_probe(caf::actor_system& sys);

  /// The scheduler's counts now.
  sample now() const noexcept;

  /// True when an actor began running since the previous look() (or the construction),
  /// or when no job is waiting now. False means: jobs wait and no worker began anything
  /// for the whole time between the two looks.
  bool look() noexcept;

private:
  const detail::scheduler_counters* counters_;  // the scheduler's, which outlives us
  std::uint64_t last_resumes_;
};

}  // namespace pkit::actors
