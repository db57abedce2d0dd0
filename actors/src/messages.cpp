#include <pkit/actors/messages.hpp>

#include <pkit/actors/error.hpp>

#include <caf/message.hpp>

namespace pkit::actors {

std::string to_string(process_state s) {
  switch (s) {
    case process_state::idle: return "idle";
    case process_state::starting: return "starting";
    case process_state::running: return "running";
    case process_state::stopping: return "stopping";
    case process_state::exited: return "exited";
  }
  return "?";
}

std::string to_string(restart_strategy s) {
  switch (s) {
    case restart_strategy::one_for_one: return "one_for_one";
    case restart_strategy::one_for_all: return "one_for_all";
    case restart_strategy::rest_for_one: return "rest_for_one";
    case restart_strategy::simple_one_for_one: return "simple_one_for_one";
  }
  return "?";
}

std::string to_string(restart_type t) {
  switch (t) {
    case restart_type::permanent: return "permanent";
    case restart_type::transient: return "transient";
    case restart_type::temporary: return "temporary";
  }
  return "?";
}

std::string to_string(auto_shutdown a) {
  switch (a) {
    case auto_shutdown::never: return "never";
    case auto_shutdown::any_significant: return "any_significant";
    case auto_shutdown::all_significant: return "all_significant";
  }
  return "?";
}

std::string to_string(child_state s) {
  switch (s) {
    case child_state::stopped: return "stopped";
    case child_state::starting: return "starting";
    case child_state::running: return "running";
    case child_state::restarting: return "restarting";
    case child_state::stopping: return "stopping";
    case child_state::fatal: return "fatal";
  }
  return "?";
}

std::string to_string(event_kind k) {
  switch (k) {
    case event_kind::started: return "started";
    case event_kind::ready: return "ready";
    case event_kind::exited: return "exited";
    case event_kind::restarting: return "restarting";
    case event_kind::gave_up: return "gave_up";
    case event_kind::fatal: return "fatal";
    case event_kind::stopped: return "stopped";
  }
  return "?";
}

std::string to_string(end_kind k) {
  switch (k) {
    case end_kind::none: return "none";
    case end_kind::exited: return "exited";
    case end_kind::signaled: return "signaled";
    case end_kind::lost: return "lost";
    case end_kind::stopped: return "stopped";
    case end_kind::stop_timeout: return "stop_timeout";
    case end_kind::node_down: return "node_down";
    case end_kind::actor_down: return "actor_down";
    case end_kind::start_failed: return "start_failed";
    case end_kind::restart_limit: return "restart_limit";
    case end_kind::shutdown: return "shutdown";
    case end_kind::error: return "error";
  }
  return "?";
}

std::optional<std::int64_t> start_wait_ms(const process_spec& spec) {
  const bool readiness = spec.notify_fd >= 0 || spec.notify_socket;
  const bool lookup = !spec.user.empty() || !spec.group.empty();
  if (!readiness && !lookup) return 0;
  // A lookup is bounded by a deadline over 0 only (0 bounds nothing but readiness).
  if (spec.ready_timeout_ms < 0 || (lookup && spec.ready_timeout_ms == 0)) return std::nullopt;
  return spec.ready_timeout_ms;
}

std::optional<start_failure> start_failure_of(const caf::error& err) {
  if (err.category() != caf::atom("pkit")) return std::nullopt;
  const caf::message& ctx = err.context();
  if (!ctx.match_elements<start_failure>()) return std::nullopt;
  return ctx.get_as<start_failure>(0);
}

void init(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::pkit>();
  // The scheduler stays the application's: pkit's is an explicit opt-in
  // (use_pkit_scheduler, scheduler.hpp).
  // Renders "pkit: start_failed (cannot start 'x': exec: No such file or directory)".
  cfg.add_error_category(caf::atom("pkit"), [](std::uint8_t code, caf::atom_value,
                                               const caf::message& context) {
    std::string out = "pkit: " + to_string(static_cast<error>(code));
    if (context.match_elements<std::string>()) {
      out += " (" + context.get_as<std::string>(0) + ")";
    } else if (context.match_elements<start_failure>()) {
      out += " (" + context.get_as<start_failure>(0).text + ")";
    } else if (!context.empty()) {
      out += " " + to_string(context);
    }
    return out;
  });
}

}  // namespace pkit::actors
