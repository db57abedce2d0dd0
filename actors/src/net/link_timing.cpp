#include <pkit/net/link_timing.hpp>

#include <caf/actor_system_config.hpp>

#include <string>
#include <vector>

namespace pkit::net {

std::optional<error> link_timing::check() const {
  auto refuse = [](const char* field, const char* why) {
    return error{make_error_code(errc::link_timing_invalid), field, why};
  };
  if (heartbeat_interval <= caf::timespan::zero())
    return refuse("heartbeat_interval", "must be positive (zero turns heartbeats off)");
  if (connection_timeout <= caf::timespan::zero())
    return refuse("connection_timeout", "must be positive (zero never drops a silent peer)");
  // CAF checks last_seen + timeout against each tick: a timeout not beyond one interval
  // drops healthy connections between two heartbeats.
  if (connection_timeout <= heartbeat_interval)
    return refuse("connection_timeout", "must be longer than heartbeat_interval");
  return std::nullopt;
}

std::string incompatible_release_text() {
  return std::string("it runs another pkit release, or is no pkit (its link identifier is not \"") + app_identifier +
         "\"): run one pkit release on every machine of a tree";
}

std::optional<error> apply_link(caf::actor_system_config& cfg, const link_timing& timing) {
  if (auto refused = timing.check())
    return refused;
  // Key names as in CAF 0.17.6's libcaf_core/src/actor_system_config.cpp (middleman group).
  cfg.set("middleman.heartbeat-interval", timing.heartbeat_interval);
  cfg.set("middleman.connection-timeout", timing.connection_timeout);
  cfg.set("middleman.app-identifiers", std::vector<std::string>{app_identifier});
  return std::nullopt;
}

}  // namespace pkit::net
