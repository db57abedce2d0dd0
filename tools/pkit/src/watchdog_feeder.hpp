#pragma once

// Feeds `pkit node`'s guardian watchdog (guardian.hpp) from a thread of the node, as long
// as the node's actor system makes progress or has nothing to do (liveness_probe.hpp).
//
// Why a thread and a probe, not an actor on a timer: an actor's periodic message waits
// behind whatever is queued, so a burst of starts delayed it past the limit and the
// guardian fenced a healthy node with its children. A stopped process (SIGSTOP) stops this
// thread too; a wedged scheduler (jobs waiting, no worker starting any) makes the probe
// say no: either way the feeds stop and the guardian fires.

#include <pkit/actors/liveness_probe.hpp>
#include <pkit/tool/guardian.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace pkit::tool {

class watchdog_feeder {
public:
  /// Arms `keeper`'s watchdog with `limit` (SIGKILL of the children's groups and of the
  /// node) and feeds it every limit / 5 while `sys` is alive by the probe. Both must
  /// outlive the feeder. Throws std::invalid_argument (`sys` is not on pkit's scheduler;
  /// nothing armed), std::system_error (no thread; the watchdog disarmed again).
  watchdog_feeder(guardian& keeper, caf::actor_system& sys, std::chrono::milliseconds limit);
  /// Stops the thread, then disarms the watchdog.
  ~watchdog_feeder();
  watchdog_feeder(const watchdog_feeder&) = delete;
  watchdog_feeder& operator=(const watchdog_feeder&) = delete;

private:
  void loop();

  guardian& keeper_;
  pkit::actors::liveness_probe probe_;
  std::chrono::milliseconds period_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mutex_
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace pkit::tool
