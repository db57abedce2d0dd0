#pragma once

// The private protocol between a node_directory's actor and the relays it spawns
// (remote_process.cpp). Local only: every type here is unserializable, so no peer can
// send one, and nothing of it crosses the wire.

#include <pkit/net/node_agent.hpp>
#include <pkit/net/node_directory.hpp>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/allowed_unsafe_message_type.hpp>

#include <string>
#include <vector>

namespace pkit::net::detail {

/// Adds a node (node_directory::add_node has checked it).
struct dir_add {
  node_address node;
};

/// A relay asks for a node among `nodes` (in preference order) → dir_placed, or
/// pkit::actors::error::node_unreachable naming each node tried and why.
struct dir_acquire {
  std::vector<std::string> nodes;
};

struct dir_placed {
  std::string name;
  node_actor agent;
};

/// A relay saw its remote process lost with its link: the node `name` is down unless it
/// was reconnected meanwhile (its agent is then another proxy than `agent`).
struct dir_lost {
  std::string name;
  caf::actor_addr agent;
};

/// The directory's own timer: try to reconnect `name` (background, backoff).
struct dir_retry {
  std::string name;
};

/// → std::vector<node_status>.
struct dir_status {};

/// The directory actor of node_directory.
caf::actor spawn_directory(caf::actor_system& sys, placement_timing timing, bool tls);

/// A relay: the local process_actor that stands for a remote worker (placement.hpp).
pkit::actors::process_actor spawn_relay(caf::actor_system& sys, caf::actor directory, placement_timing timing,
                                        std::vector<std::string> nodes, pkit::actors::process_spec spec,
                                        pkit::actors::process_observer observer);

/// The observer a relay names to a node in a spawn (placement_observer.cpp): it passes
/// the remote process actor's reports on to `relay`, their sender kept, and ends with it.
/// One per placement: ending it gives the placement up on the node (its agent ends what
/// it spawned for an observer that goes down, review 11 #13) while the relay lives on.
caf::actor spawn_placement_observer(caf::actor_system& sys, caf::actor_addr relay);

}  // namespace pkit::net::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::net::detail::dir_add)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::net::detail::dir_acquire)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::net::detail::dir_placed)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::net::detail::dir_lost)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::net::detail::dir_retry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::net::detail::dir_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<pkit::net::node_status>)
