#include "handoff_sharing.hpp"

#include <pkit/actors/scheduler.hpp>

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

namespace pkit::actors {

void use_pkit_scheduler(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("pkit"));
  // One factory is enough: a second scheduler module would replace the first.
  using factory_fn = caf::actor_system::module* (*)(caf::actor_system&);
  for (const auto& f : cfg.module_factories) {
    if (const auto* fn = f.target<factory_fn>(); fn != nullptr && *fn == detail::make_scheduler) return;
  }
  cfg.module_factories.push_back(detail::make_scheduler);
}

}  // namespace pkit::actors
