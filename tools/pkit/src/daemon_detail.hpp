#pragma once

// Internals shared by daemon.cpp and daemon_control.cpp.

#include <pkit/tool/daemon.hpp>
#include "systemd_notify.hpp"

#include <pkit/actors/placement.hpp>

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

/// The links to a tree's nodes: the network half of the daemon, behind a seam so that the
/// `pkit` executable links no network code (pkit::net, CAF's io and OpenSSL modules): its
/// implementation is daemon_net.cpp in `pkit-net` and in pkit_tool (tests), and
/// daemon_no_net.cpp, which refuses every tree with nodes, in `pkit`. Owned by the
/// daemon, destroyed after its actor system (CAF reads the TLS files' copies it holds at
/// every connection). Main thread only.
class node_links {
public:
  virtual ~node_links() = default;
  /// Once the system is made from the configuration open_node_links prepared: the
  /// directory of the tree's nodes. The refusal (naming the node or value), or nullopt.
  virtual std::optional<std::string> start(caf::actor_system& sys, const tree_config& tree) = 0;
  /// What supervisors place programs through; null before a successful start().
  virtual const actors::placement* place() const noexcept = 0;
  /// Ends the directory's actor: before the actor system ends (its object lives on).
  virtual void shutdown() noexcept = 0;
};

/// For a tree with [nodes]: readies `cfg` for the links to them (pkit::net::prepare_links
/// with the tree's TLS set and timing). `why` is set (naming the file or value) when they
/// are refused, or when this executable has no network code (`pkit`: its main runs
/// `pkit-net` for such trees, so only a reload or `ctl add` can get here).
std::unique_ptr<node_links> open_node_links(const tree_config& tree, caf::actor_system_config& cfg,
                                            std::optional<std::string>& why);
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
