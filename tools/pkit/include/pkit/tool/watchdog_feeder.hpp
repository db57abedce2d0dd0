#pragma once

// Feeds `pkit node`'s guardian watchdog (guardian.hpp) from a thread of the node, as long
// as the node's actor system makes progress (liveness_probe.hpp) and its network thread
// still runs its timers (the canary below).
//
// Why a thread and a probe, not an actor on a timer: an actor's periodic message waits
// behind whatever is queued, so a burst of starts delayed it past the limit and the
// guardian fenced a healthy node with its children. Why the canary as well: the node's
// heartbeats and its checks of its links are timer ticks that CAF's clock thread hands to
// the network thread. If either is wedged while the workers run, the controller finds the
// node silent and restarts its programs elsewhere, and the node never notices that it lost
// its controller: it must be fenced too.
//
// Each look judges the two signs on their own: for each, the last look at which it was seen
// (what it saw happened after the look before, whose time is kept). The guardian is fed
// the older of the two times (guardian::feed_at), so it fires once either side has shown
// no life for its limit — not later because a look learns of life after the fact, and not
// because the two sides happened to lag in turns.
//
// What stops the feeds: a stopped process (SIGSTOP stops this thread too); workers that
// all stay in their runs (stuck, or each in one long handler such as a slow name-service
// lookup) while a job waits; the network thread or the clock thread stuck.

#include <pkit/actors/liveness_probe.hpp>
#include <pkit/tool/guardian.hpp>

#include <caf/actor.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace pkit::tool {

class watchdog_feeder {
public:
  /// What a look tells: the time (guardian::now_ms()) the node was last known alive on
  /// both sides. Called on the feeder's thread, every limit / 8; it must not block. What
  /// it throws is dropped (the next look feeds again).
  using feed_sink = std::function<void(std::int64_t alive_ms)>;

  /// Arms `keeper`'s watchdog with `limit` (SIGKILL of the children's groups and of the
  /// node) and feeds it (guardian::feed_at) from the looks of the constructor below.
  /// `keeper` must outlive the feeder. Throws what that constructor throws (nothing is
  /// armed then).
  watchdog_feeder(guardian& keeper, caf::actor_system& sys, std::chrono::milliseconds limit);
  /// Looks every limit / 8 whether `sys` is alive by the probe and its network thread ran
  /// the canary's ticks (every limit / 16), and tells `feed` each time. `sys` must have the
  /// io middleman loaded and run on pkit's scheduler, and outlive the feeder. Throws
  /// std::invalid_argument (an empty `feed`, not pkit's scheduler), std::system_error (no
  /// thread), what spawning an actor throws.
  watchdog_feeder(feed_sink feed, caf::actor_system& sys, std::chrono::milliseconds limit);
  /// Stops the thread (no call of the sink after it returns), disarms the watchdog if it
  /// armed one, ends the canary.
  ~watchdog_feeder();
  watchdog_feeder(const watchdog_feeder&) = delete;
  watchdog_feeder& operator=(const watchdog_feeder&) = delete;

private:
  void loop();

  guardian* keeper_ = nullptr;  // the guardian armed by the first constructor
  feed_sink feed_;
  pkit::actors::liveness_probe probe_;
  std::chrono::milliseconds period_;
  std::shared_ptr<std::atomic<std::uint64_t>> beats_;  // the canary's ticks so far
  caf::actor canary_;                                  // a broker: runs on the network thread
  std::uint64_t last_beats_ = 0;                       // loop() only, as the three below
  std::int64_t last_look_ms_ = 0;                      // guardian::now_ms() of the last look
  std::int64_t workers_alive_ms_ = 0;                  // last known alive, by the probe
  std::int64_t network_alive_ms_ = 0;                  // last known alive, by the canary
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mutex_
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace pkit::tool
