#pragma once

/// \file
/// `pkit::net::node_directory`: the controller's side of issue 11 — the nodes a supervisor
/// tree may place workers on, and the placement (pkit/actors/placement.hpp) that runs a
/// worker there. Give it to the supervisor (`supervisor_options::place`); a child whose
/// `child_spec::nodes` names some of its nodes then runs on the first of them that can be
/// reached, through a local relay actor that the supervisor supervises exactly like a
/// local process actor.
///
/// Connections: asynchronous (the middleman's or, when the actor system loaded CAF's
/// OpenSSL module, the OpenSSL manager's `connect`), bounded by `placement_timing`, the
/// peer checked to publish a `node_actor` and to speak `node_protocol_version` (hello).
/// One connection per node, shared by all children placed there.
///
/// Health: a node whose link is lost (its agent's proxy down, a relay's remote process
/// down with `remote_link_unreachable`) or that could not be connected is `down`: it is
/// tried after every node that is not, and reconnected in the background with
/// exponential backoff so that it is used again once it is back. Nothing is tried in the
/// background for a node no child has asked for yet.
///
/// What a lost node means for a child: see placement::spawn_remote (node_down, a lost
/// exit status, the supervisor's strategy — a restart may land on another listed node).
/// A remote child whose controller is lost is stopped by its node's agent (node_agent.hpp);
/// until then — the node's connection timeout + heartbeat interval, then the child's stop
/// timeout — it may run beside a replacement started elsewhere or on the same node (no
/// fencing in this version; unbounded while the node's agent itself is frozen).

#include <pkit/actors/placement.hpp>
#include <pkit/net/error.hpp>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace pkit::net {

/// Where a node's agent is published.
struct node_address {
  std::string name;  ///< what child_spec::nodes names it by
  std::string host;  ///< an address or a host name
  std::uint16_t port = 0;
};

/// The directory's time bounds (each must be positive; reconnect_max >= reconnect_initial). Every request that crosses the network has one (a
/// request to a lost node is never answered, ISSUE11_DESIGN §3).
struct placement_timing {
  /// Per node: the connect (TCP, TLS and BASP handshakes), then the hello, each.
  std::chrono::milliseconds connect_timeout{5000};
  /// The agent's answer to a spawn, beyond the first start it includes (bounded as a
  /// forwarded start: the spec's ready timeout, if it waits for readiness, + request_margin).
  /// A spawn not answered within it is given up: the node ends what it spawned for it.
  ///
  /// A relay's start is answered within node_directory::start_bound.
  std::chrono::milliseconds spawn_timeout{5000};
  /// Added to a forwarded start's ready timeout and a stop's stop timeout; the bound of
  /// kill, signal and status. A forwarded request that exceeds it counts as the node lost
  /// for that child (its relay ends with node_down).
  std::chrono::milliseconds request_margin{5000};
  /// Background reconnection of a down node: first after this, doubling up to the max.
  std::chrono::milliseconds reconnect_initial{250};
  std::chrono::milliseconds reconnect_max{10000};
};

/// The bounds of a relay's start (review 11 #12), both from `timing`. Placing: per listed
/// node a connect and a hello (2 × connect_timeout), + request_margin.
std::chrono::milliseconds placing_bound(const placement_timing& timing, std::size_t nodes);

/// The spawn with the child's first start: spawn_timeout + the ready timeout of a spec that
/// waits for readiness + its stop timeout (the node first waits for a previous run of the
/// child orphaned there by a lost link, node_agent.hpp) + request_margin; nullopt for a spec that waits for ever (the
/// node's loss still ends the wait).
std::optional<std::chrono::milliseconds> spawn_bound(const placement_timing& timing,
                                                     const pkit::actors::process_spec& spec);

enum class node_health : std::uint8_t {
  unknown,     ///< never connected (nor tried)
  connecting,  ///< a connect or hello is under way
  up,          ///< connected, the agent said hello
  down,        ///< lost or unreachable; reconnected in the background
};
std::string to_string(node_health h);

/// One node as status() reports it.
struct node_status {
  std::string name;
  node_health health = node_health::unknown;
  std::string last_error;  ///< why it is down (rendered), or ""
};

/// The known nodes and the placement over them.
///
/// Ownership: owns one local actor in `sys` (ended by the destructor); must outlive every
/// supervisor given it, and `sys` must outlive it. Threads: every member is thread-safe;
/// status() blocks (not from an actor's handler).
class node_directory final : public pkit::actors::placement {
public:
  explicit node_directory(caf::actor_system& sys, placement_timing timing = {});
  ~node_directory() override;
  node_directory(const node_directory&) = delete;
  node_directory& operator=(const node_directory&) = delete;

  /// Adds a node (not connected yet: that happens on the first child placed there).
  /// Refused with node_address_invalid (subject "name", "host" or "port") for an empty
  /// name or host, port 0 or a name already added; with connect_needs_tls for a host that
  /// is not numeric loopback when the system has no OpenSSL module. nullopt when added.
  std::optional<error> add_node(const node_address& node);

  /// See placement::spawn_remote. Nodes not added are skipped (named in the
  /// node_unreachable error when no listed node could be used). `system` must be the
  /// directory's own (the supervisors' and the directory's share one actor system).
  pkit::actors::process_actor spawn_remote(caf::actor_system& system, const std::vector<std::string>& nodes,
                                           pkit::actors::process_spec spec,
                                           pkit::actors::process_observer observer) const override;

  /// The longest a relay spawn_remote made for `nodes` and `spec` takes to answer a
  /// start: placing_bound + spawn_bound; nullopt when the spec waits for readiness for
  /// ever. A supervisor's own limit on a remote start must be derived from it (a shorter
  /// one discards a relay whose placement is still within its bounds). Thread-safe.
  std::optional<std::chrono::milliseconds> start_bound(const std::vector<std::string>& nodes,
                                                       const pkit::actors::process_spec& spec) const override;

  /// Every added node's health, in the order added; empty if the directory did not
  /// answer within `timeout`. Blocks the calling thread.
  std::vector<node_status> status(std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  /// Ends the directory's actor; placements after it fail with node_unreachable. For an
  /// owner whose supervisors may still run when it must let the actor system end (a
  /// system waits for every actor, the directory's too): shutdown(), destroy the system,
  /// then the directory — spawn_remote stays safe to call until the object is destroyed.
  /// Idempotent; the owner's thread (not concurrently with the destructor).
  void shutdown();

private:
  caf::actor_system& sys_;
  placement_timing timing_;
  bool tls_;
  caf::actor actor_;  // the directory actor (node_directory.cpp); never reassigned (spawn_remote reads it)
  bool shut_down_ = false;  // shutdown() ran: the destructor must not touch a system that may be gone
  std::mutex mutex_;  // guards names_ (add_node from any thread)
  std::vector<std::string> names_;
};

}  // namespace pkit::net
