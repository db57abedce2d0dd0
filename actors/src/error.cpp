#include <pkit/actors/error.hpp>

namespace pkit::actors {

std::string to_string(error e) {
  switch (e) {
    case error::not_started: return "not_started";
    case error::already_running: return "already_running";
    case error::start_failed: return "start_failed";
    case error::ready_timeout: return "ready_timeout";
    case error::died_before_ready: return "died_before_ready";
    case error::unknown_child: return "unknown_child";
    case error::already_present: return "already_present";
    case error::still_running: return "still_running";
    case error::restart_limit: return "restart_limit";
    case error::shutting_down: return "shutting_down";
    case error::invalid_spec: return "invalid_spec";
    case error::no_fork_server: return "no_fork_server";
    case error::wrong_strategy: return "wrong_strategy";
    case error::os_error: return "os_error";
    case error::node_down: return "node_down";
    case error::node_unreachable: return "node_unreachable";
  }
  return "unknown";
}

}  // namespace pkit::actors
