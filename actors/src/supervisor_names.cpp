#include "supervisor_names.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/atom.hpp>

#include <map>
#include <mutex>
#include <utility>

namespace pkit::actors::detail {
namespace {

// Keyed by the actor system's address too: the program may run several systems. An entry
// of a destroyed system holds only a weak address, which no longer leads to an actor.
using key = std::pair<const caf::actor_system*, std::string>;

struct name_table {
  std::mutex mutex;
  std::map<key, caf::actor_addr> names;
};

name_table& table() {
  // Never destroyed: supervisors may end (and unregister) while static destructors run.
  static name_table* const one = new name_table();
  return *one;
}

bool alive(const caf::actor_addr& a) { return static_cast<bool>(caf::actor_cast<caf::strong_actor_ptr>(a)); }

}  // namespace

bool register_supervisor_name(caf::actor_system& system, const std::string& name, const caf::actor_addr& who) {
  // Another live actor under the same name in CAF's registry (the application's own) holds it.
  if (auto other = system.registry().get(caf::atom_from_string(name));
      other && caf::actor_cast<caf::actor_addr>(other) != who)
    return false;
  auto& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  auto [it, fresh] = t.names.emplace(key{&system, name}, who);
  if (fresh) return true;
  if (it->second != who && alive(it->second)) return false;
  it->second = who;
  return true;
}

void unregister_supervisor_name(caf::actor_system& system, const std::string& name,
                                const caf::actor_addr& who) noexcept {
  auto& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  try {
    auto it = t.names.find(key{&system, name});
    if (it != t.names.end() && it->second == who) t.names.erase(it);
  } catch (...) {
    // Only the key's copy of `name` can throw (no memory): the dead entry then stays,
    // and counts as free.
  }
}

caf::actor_addr registered_supervisor(caf::actor_system& system, const std::string& name) {
  auto& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  auto it = t.names.find(key{&system, name});
  return it == t.names.end() ? caf::actor_addr{} : it->second;
}

}  // namespace pkit::actors::detail
