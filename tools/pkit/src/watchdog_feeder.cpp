#include "watchdog_feeder.hpp"

#include <algorithm>

namespace pkit::tool {

watchdog_feeder::watchdog_feeder(guardian& keeper, caf::actor_system& sys, std::chrono::milliseconds limit)
    : keeper_(keeper), probe_(sys), period_(std::max(std::chrono::milliseconds(1), limit / 5)) {
  keeper_.arm_watchdog(limit, true);
  try {
    thread_ = std::thread([this] { loop(); });
  } catch (...) {
    keeper_.arm_watchdog(std::chrono::milliseconds(0), false);
    throw;
  }
}

watchdog_feeder::~watchdog_feeder() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
  keeper_.arm_watchdog(std::chrono::milliseconds(0), false);
}

void watchdog_feeder::loop() {
  std::unique_lock<std::mutex> guard(mutex_);
  while (!wake_.wait_for(guard, period_, [this] { return stop_; })) {
    // Jobs waited and no worker began any for a whole period: no feed. The guardian fires
    // once that has lasted its limit (about five periods in a row).
    if (probe_.look()) keeper_.feed();
  }
}

}  // namespace pkit::tool
