// `pkit run`'s side of the distribution (issue 11): a tree that places programs on nodes
// gets the network links (prepare_links: mutual TLS beyond loopback, heartbeats) and a
// node directory the supervisors place those programs through. A tree without nodes
// loads no network module at all: no middleman thread, no listener, nothing to attack.

#include "daemon_detail.hpp"

#include <pkit/net/link_setup.hpp>
#include <pkit/net/listen_policy.hpp>
#include <pkit/net/node_directory.hpp>

#include <caf/actor_system_config.hpp>

namespace pkit::tool::detail {

std::optional<std::string> prepare_node_links(const tree_config& tree, caf::actor_system_config& cfg,
                                              net::tls_snapshot& snapshot) {
  net::link_timing timing;
  timing.heartbeat_interval = std::chrono::milliseconds(tree.settings.heartbeat_ms);
  timing.connection_timeout = std::chrono::milliseconds(tree.settings.node_timeout_ms);
  std::optional<net::tls_files> tls;
  if (tree.settings.tls) tls = net::tls_files{tree.settings.tls->cert, tree.settings.tls->key, tree.settings.tls->ca, {}, {}};
  if (auto refused = net::prepare_links(cfg, tls ? &*tls : nullptr, timing, snapshot))
    return "the links to the nodes: " + refused->message();
  return std::nullopt;
}

std::unique_ptr<net::node_directory> make_directory(caf::actor_system& sys, const tree_config& tree,
                                                    const net::tls_snapshot& snapshot, std::optional<std::string>& why) {
  // What CAF really uses must be what was checked (never its anonymous-cipher mode).
  if (tree.settings.tls)
    if (auto off = net::require_authenticated(sys, snapshot.files())) {
      why = "the links to the nodes: " + off->message();
      return nullptr;
    }
  net::placement_timing timing;
  // A connect bounded like a silent link: a node that does not answer within the time
  // that would make it lost is tried no longer (and the next listed node is).
  timing.connect_timeout = std::chrono::milliseconds(tree.settings.node_timeout_ms);
  auto dir = std::make_unique<net::node_directory>(sys, timing);
  for (const auto& n : tree.nodes)
    if (auto refused = dir->add_node({n.name, n.host, n.port})) {
      why = "node '" + n.name + "': " + refused->message();
      break;
    }
  return dir;
}

std::string link_settings_toml(const tree_config& tree) {
  auto quoted = [](const std::string& s) {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::string out = "\n[pkit]\nlog_dir = " + quoted(tree.settings.log_dir.string()) + "\n";
  if (const auto& t = tree.settings.tls)
    out += "tls = { cert = " + quoted(t->cert.string()) + ", key = " + quoted(t->key.string()) +
           ", ca = " + quoted(t->ca.string()) + " }\n";
  for (const auto& n : tree.nodes) {
    const bool v6 = n.host.find(':') != std::string::npos;
    out += "[nodes." + n.name + "]\naddress = " +
           quoted((v6 ? "[" + n.host + "]" : n.host) + ":" + std::to_string(n.port)) + "\n";
  }
  return out;
}

}  // namespace pkit::tool::detail
