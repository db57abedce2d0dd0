#pragma once

/// \file
/// pkit's CAF scheduler, an explicit opt-in: `pkit::actors::use_pkit_scheduler(cfg)`.

#include <caf/actor_system_config.hpp>

namespace pkit::actors {

/// Makes the actor system built from `cfg` run on pkit's scheduler (`scheduler.policy` =
/// `pkit`): CAF's work sharing — idle workers block instead of polling, so a supervision
/// tree uses no CPU while nothing happens — plus a hand-off slot per worker, so a chain
/// of single messages (reaper → process actor → supervisor → …) runs on one worker
/// without a thread wake-up per link (see the README). `pkit::actors::init` does not do
/// this: without this call the application keeps whatever scheduler it configures (CAF's
/// default is work stealing), and pkit's actors work the same on it.
///
/// Call before the actor system is constructed; calling it twice is harmless. It sets
/// the policy and installs a scheduler module factory that also builds CAF's own
/// policies, so a `scheduler.policy` set afterwards (in code, a config file or the
/// command line that `cfg.parse` reads) still chooses `sharing`, `stealing` or
/// `testing`. With the `pkit` policy, `scheduler.enable-profiling` is ignored.
/// Throws what `cfg.set` throws (`std::bad_alloc`).
void use_pkit_scheduler(caf::actor_system_config& cfg);

}  // namespace pkit::actors
