#pragma once

/// \file
/// `pkit::actors::placement`: the one plug-in point through which a supervisor runs a
/// worker on another node (issue 11). pkit::actors knows nothing of the network: a
/// supervisor given a placement asks it for a stand-in for each worker whose
/// `child_spec::nodes` is not empty, and supervises that stand-in exactly like a local
/// process actor. pkit::net's `node_directory` is the implementation.

#include <pkit/actors/messages.hpp>
#include <pkit/actors/process_actor.hpp>

#include <caf/actor_system.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pkit::actors {

/// Where the remote workers of a supervisor tree run.
///
/// Ownership: the application owns it; it must outlive every supervisor given it (as a
/// fork_server must), nested ones included, which inherit their parent's placement.
/// Threads: `spawn_remote` is called from supervisors' actor threads, several at once:
/// implementations must be thread-safe.
class placement {
public:
  virtual ~placement() = default;

  /// Returns at once (never blocks, never waits for the network) a LOCAL actor with the
  /// process_actor interface that stands for one run after another of a worker on one of
  /// `nodes` (in order of preference). It is not started: like spawn_process's actor, it
  /// picks a node, spawns and starts the child there on `start`, and reports the child's
  /// life to `observer` with itself as the sender (child_started / child_ready /
  /// child_exited), preceded for each placement by `(child_node_atom, observer.id, node
  /// name)`. Its replies are bounded in time: a node that cannot be reached fails `start`
  /// with `error::node_unreachable`; a node lost under a run ends the actor with the
  /// exit reason `error::node_down` (a supervisor reports that run as ended with
  /// exit_status::lost(), reason node_down) after answering what was pending from its own
  /// knowledge. When the actor ends, for any reason, the remote child is stopped.
  virtual process_actor spawn_remote(caf::actor_system& system, const std::vector<std::string>& nodes,
                                     process_spec spec, process_observer observer) const = 0;

  /// The longest the actor spawn_remote makes for `nodes` and `spec` takes to answer a
  /// start (its own bounds: reaching a node, the spawn, the readiness); nullopt when not
  /// known. A supervisor derives its own limit on a remote start from it (the bound and
  /// a second), so that it never gives up on a stand-in still within its bounds; without
  /// one it allows the spec's readiness deadline and 30 s (no limit only when the spec
  /// waits for readiness for ever). Thread-safe.
  virtual std::optional<std::chrono::milliseconds> start_bound(const std::vector<std::string>& nodes,
                                                               const process_spec& spec) const {
    (void)nodes;
    (void)spec;
    return std::nullopt;
  }
};

}  // namespace pkit::actors
