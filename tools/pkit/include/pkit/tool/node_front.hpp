#pragma once

/// \file
/// What `pkit node` publishes: a front with the node agent's interface (node_actor),
/// which passes every request on to the agent and adds what only the tool can do:
///
/// * each spawn's relay goes through a local *tap*, which forwards the process actor's
///   reports to the controller's relay unchanged and unregisters each run's process group
///   from the guardian at its exit (the node registers it as the child is spawned:
///   node_config::on_child_started, so that nothing outlives a SIGKILLed `pkit node`); the tap ends
///   when the relay does (controller gone or link lost: logged to stderr), which is what
///   makes the agent stop that relay's children;
/// * the live process actors are kept in a node_children registry, so that SIGTERM can
///   stop each child per its spec before the node exits (node_children::drain).
///
/// The agent itself (pkit::net::spawn_node_agent) validates every spec; the front adds no
/// interface: a peer sees exactly node_actor.

#include <pkit/actors/process_actor.hpp>
#include <pkit/net/node_agent.hpp>
#include <pkit/tool/guardian.hpp>

#include <caf/actor_system.hpp>

#include <caf/actor_addr.hpp>
#include <caf/node_id.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pkit::tool {

/// The process actors the front has handed out and that have not ended. Shared between
/// the front (adds, removes: on its own thread) and the command's main thread (drain).
/// Thread-safe.
class node_children {
public:
  /// Records `p`; false once draining (the caller must then end `p` itself).
  bool add(const pkit::actors::process_actor& p);
  void remove(const caf::actor_addr& a);
  /// From now on add() refuses; returns the process actors recorded.
  std::vector<pkit::actors::process_actor> drain();

  /// The front's taps stand for controllers' relays: `tap` for a relay of `controller`'s
  /// (the agent asks, node_config::controller_of, to tell who may act on the child).
  void own(const caf::actor_addr& tap, const caf::node_id& controller);
  void disown(const caf::actor_addr& tap);
  /// The controller `relay` stands for if it is a tap, else `relay`'s own node.
  caf::node_id controller_of(const caf::actor& relay);

private:
  std::mutex mutex_;
  bool draining_ = false;
  std::vector<pkit::actors::process_actor> live_;
  std::map<caf::actor_addr, caf::node_id> owners_;
};

/// Spawns the front for `agent` in `sys`. `keeper` (may be null: no guardian) and
/// `children` must outlive the actor system. `node_name` prefixes the lines logged on
/// stderr. Every `relay_check` (0: never) each tap asks the controller whether its relay
/// still exists, and ends (its child is stopped) when the controller no longer has it:
/// the old proxies of a controller that reconnected before this node noticed the old link
/// dead are never killed by CAF. The front runs until sent an exit. `agent` must be
/// configured with node_config::sealed_local_reports (the taps take sealed reports only:
/// without it the controllers would hear of no start and no exit) and controller_of
/// mapping each tap to its controller (node_children::controller_of).
pkit::net::node_actor spawn_node_front(caf::actor_system& sys, pkit::net::node_actor agent,
                                       std::shared_ptr<node_children> children, guardian* keeper,
                                       std::string node_name, std::chrono::milliseconds relay_check);

}  // namespace pkit::tool
