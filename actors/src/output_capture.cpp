#include <pkit/actors/output_capture.hpp>

#include <map>
#include <mutex>
#include <utility>

namespace pkit::actors {
namespace {

// CAF 0.17 has no place of its own for a per-system object that is not an actor (its
// modules are a closed set), so the captures live here, keyed by the system's address.
struct capture_registry {
  std::mutex m;
  std::map<const caf::actor_system*, std::shared_ptr<output_capture>> by_system;
};

capture_registry& registry() {
  static capture_registry r;  // never destroyed before its users: a function-local static
  return r;
}

}  // namespace

void set_output_capture(caf::actor_system& system, std::shared_ptr<output_capture> capture) {
  auto& r = registry();
  std::shared_ptr<output_capture> old;  // released outside the lock: its destructor may be slow
  std::lock_guard<std::mutex> lock(r.m);
  if (capture) {
    auto& slot = r.by_system[&system];
    old = std::exchange(slot, std::move(capture));
  } else if (auto i = r.by_system.find(&system); i != r.by_system.end()) {
    old = std::move(i->second);
    r.by_system.erase(i);
  }
}

std::shared_ptr<output_capture> output_capture_of(caf::actor_system& system) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.m);
  auto i = r.by_system.find(&system);
  return i == r.by_system.end() ? nullptr : i->second;
}

}  // namespace pkit::actors
