#pragma once

// A placement for supervisor tests whose stand-ins never answer a start (remote workers
// without a process or a network): the supervisor's own limit on a remote start, in real
// or in virtual time. Header-only.

#include <pkit/actors/placement.hpp>
#include <pkit/actors/process_actor.hpp>

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

namespace sup_test_placement {

namespace pa = pkit::actors;

using promises = std::vector<caf::typed_response_promise<std::int32_t>>;

/// A stand-in whose start is never answered (its promises are kept: never broken).
inline pa::process_actor::behavior_type mute_stand_in(pa::process_actor::pointer self, std::shared_ptr<promises> kept) {
  return {[self, kept](pa::start_atom) -> caf::result<std::int32_t> {
            kept->push_back(self->make_response_promise<std::int32_t>());
            return kept->back();
          },
          [](pa::stop_atom) { return pkit::exit_status::lost(); },
          [](pa::kill_atom) { return pkit::exit_status::lost(); },
          [](pa::signal_atom, std::int32_t) { return caf::ok_atom_v; },
          [](pa::join_atom) { return pkit::exit_status::lost(); },
          [](pa::status_atom) { return pa::process_info{}; }};
}

/// Every worker placed through it gets a mute stand-in (kept in `spawned`); its start
/// bound is `bound`.
struct mute_placement : pa::placement {
  explicit mute_placement(std::chrono::milliseconds b) : bound(b) {}
  std::chrono::milliseconds bound;
  std::shared_ptr<promises> kept = std::make_shared<promises>();
  mutable std::vector<caf::actor> spawned;
  pa::process_actor spawn_remote(caf::actor_system& sys, const std::vector<std::string>&, pa::process_spec,
                                 pa::process_observer) const override {
    auto h = sys.spawn(mute_stand_in, kept);
    spawned.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }
  std::optional<std::chrono::milliseconds> start_bound(const std::vector<std::string>&,
                                                       const pa::process_spec&) const override {
    return bound;
  }
};

}  // namespace sup_test_placement
