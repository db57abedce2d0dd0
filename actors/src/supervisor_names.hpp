#pragma once

// Registered supervisor names (supervisor_flags::registered_name, OTP's {local, Name}).
//
// Not CAF's actor registry: it holds a strong_actor_ptr, so a registered supervisor could
// never become unreachable, and an application that released its last handle waited for
// ever in ~actor_system (review D4). OTP's registered names do not keep a process alive;
// neither do these: a table, per actor system, of weak addresses (caf::actor_addr). An
// entry whose actor is gone counts as free. CAF 0.17 offers no hook for "the last strong
// handle went", so unregistering at that moment is not possible; the supervisor removes
// its entry when it ends, and a dead entry is skipped until then.
//
// One consequence: a registered supervisor is no longer a CAF named actor (no
// `registry().get(atom)`, no middleman remote_lookup by name); whereis_supervisor is the
// way to find it. A name that CAF's registry holds for another live actor still counts as
// taken, so the two name spaces do not overlap.

#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>

#include <string>

namespace pkit::actors::detail {

/// Registers `who` as `name` in `system` unless a live actor has that name (check and put
/// are one step: two supervisors spawned with one name at once cannot both get it).
/// Returns false when the name is taken. Thread-safe; throws std::bad_alloc.
bool register_supervisor_name(caf::actor_system& system, const std::string& name, const caf::actor_addr& who);

/// Removes `name`'s entry if it is still `who`'s. Thread-safe, noexcept.
void unregister_supervisor_name(caf::actor_system& system, const std::string& name,
                                const caf::actor_addr& who) noexcept;

/// The address registered as `name` in `system` (invalid if none). Thread-safe.
caf::actor_addr registered_supervisor(caf::actor_system& system, const std::string& name);

}  // namespace pkit::actors::detail
