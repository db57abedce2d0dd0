#pragma once

// The process actor a node agent hands out for each child: a guard in front of the real
// one, private to pkit::net (node_agent.hpp says what a controller sees of it).
//
// Why a guard: the real process actor starts its child again on any `start` it gets, and
// its handle, once handed to a controller, can be asked by that controller (or any peer
// that learns it) at any time. The node must be able to say no: while it stops (review 11
// #14: a controller restarting children through the process actors during `pkit node`'s
// SIGTERM stop) and once the agent stops a child whose controller was lost (review 11 #4:
// that run's end is awaited, nothing may start it again). The guard also keeps the real
// actor off the network (its answers and reports carry the guard as their sender), and
// its end by an exit message from afar does not end the real actor: the agent sees the
// guard go down and stops the child per its spec, awaiting the end of its run. Reports to
// a relay of the node itself can go sealed (node_config::sealed_local_reports): a peer can
// pose as the guard, but cannot send a sealed_report.

#include <pkit/actors/process_actor.hpp>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/node_id.hpp>

#include <atomic>
#include <memory>
#include <string>

namespace pkit::net::detail {

/// What decides whether a guard lets a `start` through. Shared by the agent (its writer,
/// on the agent's thread) and the guard (its reader, on its own): hence atomics.
struct guard_gate {
  /// Set by the agent when it stops the child for good (its controller was lost).
  std::atomic<bool> retired{false};
  /// The node's stop switch (node_config::stopping; null: the node never sets one).
  std::shared_ptr<const std::atomic<bool>> node_stopping;
  /// The node of the controller that asked for the child (node_config::controller_of):
  /// requests from its actors and from this node are served, any other is refused
  /// (errc::node_not_permitted). Set before the guard is spawned.
  caf::node_id controller;
  /// Reports go to the relay sealed (node_config::sealed_local_reports, for a relay of
  /// this node). Set before the guard is spawned.
  bool sealed_reports = false;
};

/// Spawns the guard of a child that reports to `relay` (as the process actor would:
/// child_started, child_ready, child_exited, with the guard as their sender). The guard
/// takes its real process actor from `agent` only, in one message (a process_actor) that
/// the agent must send before it exposes the guard; it takes reports from that actor
/// only, forwards the process actor requests to it (their answers come from the guard),
/// refuses `start` once `gate` says so (errc::node_shutting_down, node_child_retired, as
/// caf::errors of category "pkitnet"), and ends with the real actor's reason when that
/// actor ends. Thread-safe.
caf::actor spawn_child_guard(caf::actor_system& sys, caf::actor relay, caf::actor_addr agent,
                             std::shared_ptr<const guard_gate> gate);

}  // namespace pkit::net::detail
