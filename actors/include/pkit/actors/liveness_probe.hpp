#pragma once

/// \file
/// Tells an actor system that is busy from one whose actors no longer run, for a
/// watchdog (`pkit node`'s guardian).

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <cstddef>
#include <cstdint>

namespace pkit::actors {

namespace detail {
struct scheduler_counters;
}  // namespace detail

/// Looks at pkit's scheduler (use_pkit_scheduler) from outside: whether its workers made
/// progress between two looks.
///
/// Why not the delay of a periodic message: that is the queue's length, not a sign of a
/// stop. A burst of work (a node starting 600 programs at once) keeps a message queued
/// behind it longer than any useful limit while every worker runs; a watchdog that judged
/// by that delay fenced healthy nodes. Here the judgement is "a job waited, and for the
/// whole time between two looks no worker began any": every worker stuck in a handler, or
/// none running at all. So that there is always a job to wait, each look sends a message
/// to an actor of the probe's own, which needs a worker before the next look.
///
/// Not seen: one worker stuck while another is free (the free one makes progress), and an
/// actor stuck in a handler while other actors run (its messages wait in its mailbox; the
/// actor it handed to its worker's slot, which only that worker runs, waits too). Seen as
/// stuck although only slow: every worker in one handler for the whole time between two
/// looks.
/// A process stopped as a whole (SIGSTOP) stops whoever calls look(), which is what a
/// watchdog fed from a thread of that process needs.
///
/// Thread-safe for one caller at a time (look() keeps the previous count). Does not own
/// the system, which must outlive the probe.
class liveness_probe {
public:
  /// What the scheduler reported at one look.
  struct sample {
    std::uint64_t resumes = 0;  ///< runs of an actor begun since the system started
    std::size_t waiting = 0;    ///< jobs in the shared queue: runnable, taken by no worker
  };

  /// Probes `sys` (spawns the probe's actor there). Throws std::invalid_argument when
  /// `sys` does not run on pkit's scheduler (call use_pkit_scheduler on its config).
  explicit liveness_probe(caf::actor_system& sys);
  /// Ends the probe's actor.
  ~liveness_probe();
  liveness_probe(const liveness_probe&) = delete;
  liveness_probe& operator=(const liveness_probe&) = delete;

  /// The scheduler's counts now.
  sample now() const noexcept;

  /// True when an actor began running since the previous look() (or the construction),
  /// or when no job waits now. False means: jobs waited — at least the probe's own,
  /// sent by the previous look — and no worker began any in between. Then sends the
  /// probe's message for the next look. Does not throw (a message that cannot be
  /// allocated is not sent: the next look then relies on other jobs).
  bool look() noexcept;

private:
  detail::scheduler_counters* counters_;  // the scheduler's, which outlives us
  caf::actor ping_;                             // the probe's own actor
  std::uint64_t last_resumes_ = 0;
};

}  // namespace pkit::actors
