// `pkit run`'s side of the distribution (issue 11), in `pkit-net` only: a tree that
// places programs on nodes gets the network links (prepare_links: mutual TLS beyond
// loopback, heartbeats) and a node directory the supervisors place those programs
// through. A tree without nodes loads no network module at all: no middleman thread, no
// listener, nothing to attack (and `pkit`, which runs such trees, has none linked).

#include "daemon_detail.hpp"

#include <pkit/net/link_setup.hpp>
#include <pkit/net/listen_policy.hpp>
#include <pkit/net/node_directory.hpp>
#include <pkit/net/tls_snapshot.hpp>

#include <caf/actor_system_config.hpp>

namespace pkit::tool::detail {

namespace {

class net_node_links final : public node_links {
public:
  std::optional<std::string> prepare(const tree_config& tree, caf::actor_system_config& cfg) {
    net::link_timing timing;
    timing.heartbeat_interval = std::chrono::milliseconds(tree.settings.heartbeat_ms);
    timing.connection_timeout = std::chrono::milliseconds(tree.settings.node_timeout_ms);
    std::optional<net::tls_files> tls;
    if (const auto& t = tree.settings.tls) tls = net::tls_files{t->cert, t->key, t->ca, {}, {}};
    if (auto refused = net::prepare_links(cfg, tls ? &*tls : nullptr, timing, snapshot_))
      return "the links to the nodes: " + refused->message();
    return std::nullopt;
  }

  std::optional<std::string> start(caf::actor_system& sys, const tree_config& tree) override {
    // What CAF really uses must be what was checked (never its anonymous-cipher mode).
    if (tree.settings.tls)
      if (auto off = net::require_authenticated(sys, snapshot_.files()))
        return "the links to the nodes: " + off->message();
    net::placement_timing timing;
    // A connect bounded like a silent link: a node that does not answer within the time
    // that would make it lost is tried no longer (and the next listed node is).
    timing.connect_timeout = std::chrono::milliseconds(tree.settings.node_timeout_ms);
    directory_ = std::make_unique<net::node_directory>(sys, timing);
    for (const auto& n : tree.nodes)
      if (auto refused = directory_->add_node({n.name, n.host, n.port}))
        return "node '" + n.name + "': " + refused->message();
    return std::nullopt;
  }

  const actors::placement* place() const noexcept override { return directory_.get(); }

  void shutdown() noexcept override {
    if (directory_) directory_->shutdown();
  }

  ~net_node_links() override { directory_.reset(); }  // before the snapshot

private:
  net::tls_snapshot snapshot_;
  std::unique_ptr<net::node_directory> directory_;
};

}  // namespace

std::unique_ptr<node_links> open_node_links(const tree_config& tree, caf::actor_system_config& cfg,
                                            std::optional<std::string>& why) {
  auto links = std::make_unique<net_node_links>();
  why = links->prepare(tree, cfg);
  return links;
}

}  // namespace pkit::tool::detail
