#include "handoff_sharing.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/defaults.hpp>
#include <caf/policy/profiled.hpp>
#include <caf/policy/work_sharing.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/scheduler/profiled_coordinator.hpp>
#include <caf/scheduler/test_coordinator.hpp>

namespace pkit::actors::detail {

caf::actor_system::module* make_scheduler(caf::actor_system& system) {
  using namespace caf::scheduler;
  using caf::policy::profiled;
  using caf::policy::work_sharing;
  using caf::policy::work_stealing;
  const auto& cfg = system.config();
  const caf::atom_value policy = caf::get_or(cfg, "scheduler.policy", caf::defaults::scheduler::policy);
  const bool profiling = caf::get_or(cfg, "scheduler.enable-profiling", false);
  // As actor_system's own choice in CAF 0.17.6 (which a module factory replaces), plus "pkit".
  if (policy == caf::atom("pkit")) return new coordinator<handoff_sharing>(system);
  if (policy == caf::atom("testing")) return new test_coordinator(system);
  if (policy == caf::atom("sharing")) {
    if (profiling) return new profiled_coordinator<profiled<work_sharing>>(system);
    return new coordinator<work_sharing>(system);
  }
  if (profiling) return new profiled_coordinator<profiled<work_stealing>>(system);
  return new coordinator<work_stealing>(system);
}

}  // namespace pkit::actors::detail
