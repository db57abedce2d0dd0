#include <pkit/actors/liveness_probe.hpp>

#include "handoff_sharing.hpp"

#include <caf/actor_system.hpp>
#include <caf/scheduler/coordinator.hpp>

#include <stdexcept>

namespace pkit::actors {
liveness_probe::liveness_probe(caf::actor_system& sys) : counters_(nullptr), last_resumes_(0) {
  auto* coord = dynamic_cast<caf::scheduler::coordinator<detail::handoff_sharing>*>(&sys.scheduler());
  if (coord == nullptr)
    throw std::invalid_argument("liveness_probe: the actor system does not run on pkit's scheduler");
  counters_ = &coord->data().counters;
  last_resumes_ = now().resumes;
}

liveness_probe::sample liveness_probe::now() const noexcept {
  const auto& c = *counters_;
  return {c.resumes.load(std::memory_order_relaxed),
          c.waiting.load(std::memory_order_relaxed) + c.held.load(std::memory_order_relaxed)};
}

bool liveness_probe::look() noexcept {
  const sample s = now();
  const bool progressed = s.resumes != last_resumes_;
  last_resumes_ = s.resumes;
  return progressed || s.waiting == 0;
}

}  // namespace pkit::actors
