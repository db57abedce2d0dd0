#pragma once

// A TCP reachability check of pkit's own, made before CAF's connect (review 11 #6): CAF
// 0.17.6 connects with a blocking connect() on its one, serial middleman actor, so one
// node whose packets are dropped held up every other node's connect for the kernel's
// SYN timeout (minutes). A node that does not answer a SYN within the directory's
// connect timeout is now found out here, on a thread of its own, and CAF's connect is
// only asked for a node that has just answered.

#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace pkit::net::detail {

/// Whether a TCP connection to `host`:`port` (a name or a numeric address) opens within
/// `timeout`: "" when it does (it is closed at once), else why not — the resolver's
/// error, the connect's errno text, or "no answer within N ms". Blocks the calling thread
/// for at most about `timeout` (plus the resolver's own time for a name).
std::string tcp_reachable(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout);

/// A detached actor's behaviour: answers (caf::connect_atom) with tcp_reachable(...) once,
/// then ends.
caf::behavior tcp_prober(caf::event_based_actor* self, std::string host, std::uint16_t port,
                         std::chrono::milliseconds timeout);

}  // namespace pkit::net::detail
