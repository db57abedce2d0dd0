#include <pkit/actors/liveness_probe.hpp>

#include "handoff_sharing.hpp"

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>

#include <stdexcept>

namespace pkit::actors {

liveness_probe::liveness_probe(caf::actor_system& sys) : counters_(nullptr) {
  auto* coord = dynamic_cast<caf::scheduler::coordinator<detail::handoff_sharing>*>(&sys.scheduler());
  if (coord == nullptr)
    throw std::invalid_argument("liveness_probe: the actor system does not run on pkit's scheduler");
  counters_ = &coord->data().counters;
  counters_->watched.store(true, std::memory_order_relaxed);
  // Does nothing: its message is a job that needs a worker, which is all the probe wants.
  // Lazily initialised: no job of its own before the first look's message. The unused
  // argument: CAF 0.17.6 spawns a functor without arguments through an empty shared_ptr
  // that it dereferences (UBSan: reference binding to null pointer).
  ping_ = sys.spawn<caf::lazy_init>(
      [](caf::event_based_actor*, int) -> caf::behavior {
        return {[](caf::tick_atom) {}};
      },
      0);
  last_resumes_ = now().resumes;
}

liveness_probe::~liveness_probe() { caf::anon_send_exit(ping_, caf::exit_reason::user_shutdown); }

liveness_probe::sample liveness_probe::now() const noexcept {
  const auto& c = *counters_;
  return {c.resumes.load(std::memory_order_relaxed), c.waiting.load(std::memory_order_relaxed)};
}

bool liveness_probe::look() noexcept {
  const sample s = now();
  const bool progressed = s.resumes != last_resumes_;
  last_resumes_ = s.resumes;
  try {
    caf::anon_send(ping_, caf::tick_atom_v);
  } catch (...) {
  }
  return progressed || s.waiting == 0;
}

}  // namespace pkit::actors
