#pragma once

// Internals shared by daemon.cpp and daemon_control.cpp.

#include <pkit/tool/daemon.hpp>
#include "systemd_notify.hpp"

#include <pkit/net/node_directory.hpp>
#include <pkit/net/tls_snapshot.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace pkit::tool {

/// What the daemon records of one child from its events (the final table; uptimes).
struct daemon::row {
  std::string name;
  std::string group;
  std::string state = "stopped";
  pid_t pid = 0;
  std::string node;  // where the run is: "" here, else a node's name (pid is that node's)
  bool is_group = false;
  std::uint32_t restarts = 0;         // automatic: counted from `restarting` events
  std::uint32_t manual_restarts = 0;  // the supervisor's count, as its restart_child reply said
  nlohmann::json last_exit = nullptr;
  std::string reason;
  std::chrono::steady_clock::time_point started{};
};

namespace detail {

/// Renames every nested supervisor spec to its group path ("backend/workers"), so that an
/// event's `supervisor` names the group unambiguously.
void name_supervisors_by_path(actors::supervisor_spec& spec, const std::string& path);

/// Makes every program of `spec` start without NOTIFY_SOCKET, WATCHDOG_USEC and
/// WATCHDOG_PID (pkit run's own, under systemd) unless the file sets them.
void keep_systemd_variables_to_pkit(actors::supervisor_spec& spec);

/// The tree's root spec, root named after the tree, nested supervisors by path.
actors::supervisor_spec spec_of(const tree_config& tree);

// -- nodes (daemon_nodes.cpp) -------------------------------------------------------------

/// For a tree with [nodes]: readies `cfg` for the links to them (pkit::net::prepare_links
/// with the tree's TLS set and timing; `snapshot` must outlive the system). The refusal,
/// naming the file or value, or nullopt.
std::optional<std::string> prepare_node_links(const tree_config& tree, caf::actor_system_config& cfg,
                                              net::tls_snapshot& snapshot);
/// The directory of the tree's nodes in `sys` (prepared by prepare_node_links); `why` set
/// (and null returned, with TLS) when CAF does not use the checked files, or when a node
/// is refused.
std::unique_ptr<net::node_directory> make_directory(caf::actor_system& sys, const tree_config& tree,
                                                    const net::tls_snapshot& snapshot, std::optional<std::string>& why);
/// The tree's [pkit] log_dir and tls and its [nodes], as TOML appended to a `ctl add`
/// snippet, so that its programs log and are placed as the tree's are.
std::string link_settings_toml(const tree_config& tree);

/// The state a child is in after event `k` (the names of actors::child_state).
inline std::string state_after(actors::event_kind k, const std::string& before) {
  using actors::event_kind;
  switch (k) {
    case event_kind::started: return "starting";
    case event_kind::ready: return "running";
    case event_kind::exited: return "exited";
    case event_kind::restarting: return "restarting";
    case event_kind::fatal: return "fatal";
    case event_kind::stopped: return "stopped";
    default: return before;
  }
}

}  // namespace detail
}  // namespace pkit::tool
