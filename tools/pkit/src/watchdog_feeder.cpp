#include <pkit/tool/watchdog_feeder.hpp>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <stdexcept>

namespace pkit::tool {
namespace {

/// A broker with no connection: it runs on the network thread, and counts the ticks that
/// CAF's clock thread delivers to it every `every` — the path of the node's heartbeats.
caf::behavior canary(caf::io::broker* self, std::shared_ptr<std::atomic<std::uint64_t>> beats,
                     std::chrono::milliseconds every) {
  self->send(self, caf::tick_atom_v);
  return {[self, beats, every](caf::tick_atom) {
    beats->fetch_add(1, std::memory_order_relaxed);
    self->delayed_send(self, every, caf::tick_atom_v);
  }};
}

}  // namespace

watchdog_feeder::watchdog_feeder(feed_sink feed, caf::actor_system& sys, std::chrono::milliseconds limit)
    : feed_(std::move(feed)),
      probe_(sys),
      period_(std::max(std::chrono::milliseconds(2), limit / 8)),
      beats_(std::make_shared<std::atomic<std::uint64_t>>(0)) {
  if (!feed_) throw std::invalid_argument("watchdog_feeder: no feed sink");
  // Twice per look: a tick late by less than a period still counts for that look.
  canary_ = sys.middleman().spawn_broker(canary, beats_, period_ / 2);
  last_look_ms_ = workers_alive_ms_ = network_alive_ms_ = guardian::now_ms();
  try {
    thread_ = std::thread([this] { loop(); });
  } catch (...) {
    caf::anon_send_exit(canary_, caf::exit_reason::user_shutdown);
    throw;
  }
}

watchdog_feeder::watchdog_feeder(guardian& keeper, caf::actor_system& sys, std::chrono::milliseconds limit)
    : watchdog_feeder([&keeper](std::int64_t alive_ms) { keeper.feed_at(alive_ms); }, sys, limit) {
  // Armed once the thread runs: a constructor that throws leaves nothing armed. The
  // first look comes a period later, well within the limit.
  keeper_ = &keeper;
  keeper.arm_watchdog(limit, true);
}

watchdog_feeder::~watchdog_feeder() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
  if (keeper_ != nullptr) keeper_->arm_watchdog(std::chrono::milliseconds(0), false);
  caf::anon_send_exit(canary_, caf::exit_reason::user_shutdown);
}

void watchdog_feeder::loop() {
  std::unique_lock<std::mutex> guard(mutex_);
  while (!wake_.wait_for(guard, period_, [this] { return stop_; })) {
    const std::int64_t now = guardian::now_ms();
    // Both looks every time: each keeps its own count from the previous look. What they
    // saw happened after the previous look: that is when each side is known alive.
    if (probe_.look()) workers_alive_ms_ = last_look_ms_;
    const std::uint64_t beats = beats_->load(std::memory_order_relaxed);
    if (beats != last_beats_) network_alive_ms_ = last_look_ms_;
    last_beats_ = beats;
    last_look_ms_ = now;
    try {
      feed_(std::min(workers_alive_ms_, network_alive_ms_));
    } catch (...) {
      // A sink that failed this once (out of memory) is fed again at the next look; an
      // exception out of this thread would end the node.
    }
  }
}

}  // namespace pkit::tool
