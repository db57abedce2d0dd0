#pragma once

/// \file
/// `pkit::net::link_timing` and `apply_link`: the BASP settings every pkit process that
/// joins a distributed tree needs, over TLS or plain loopback alike: heartbeats (so that
/// a silent peer is noticed, ISSUE11_DESIGN §3) and pkit's application identifier.

#include <pkit/net/error.hpp>

#include <caf/timespan.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace caf {
class actor_system_config;
}

namespace pkit::net {

/// The BASP application identifier pkit's processes announce and require: a peer that
/// announces another one (another CAF program, an incompatible pkit) is refused by the
/// connecting side (`sec::incompatible_application_ids`). Bumped with the wire protocol.
/// "pkit-2": process_spec gained stdin_path.
inline constexpr const char* app_identifier = "pkit-2";

/// What a connecting side says of a peer whose handshake announced another application
/// identifier (`sec::incompatible_application_ids`): most likely another pkit release,
/// which no message of its could tell (BASP refuses before any is exchanged). One text for
/// every connecting side (the node directory, `pkit ctl`).
std::string incompatible_release_text();

/// How fast a silent peer is noticed: every `heartbeat_interval` each side sends a
/// heartbeat on every connection and drops those it heard nothing from for
/// `connection_timeout`; a loss is seen within timeout + interval. Both sides must set it.
struct link_timing {
  caf::timespan heartbeat_interval = std::chrono::seconds(1);
  caf::timespan connection_timeout = std::chrono::seconds(5);

  /// link_timing_invalid (naming the field) unless both are positive and the timeout is
  /// longer than the interval; nullopt when usable.
  std::optional<error> check() const;
};

/// timing.check(), then, when it passed, sets middleman.heartbeat-interval,
/// middleman.connection-timeout and middleman.app-identifiers = {app_identifier} in `cfg`
/// (left untouched on a refusal). Call before the actor system is created.
std::optional<error> apply_link(caf::actor_system_config& cfg, const link_timing& timing = {});

}  // namespace pkit::net
