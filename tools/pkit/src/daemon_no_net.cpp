// `pkit`'s (the executable without network code) answer to a tree with nodes. main runs
// `pkit-net` for a file that declares nodes, so only a reload or a `ctl add` of a tree
// started without them gets here (config_nodes.cpp refuses those files already): the
// links to nodes are made once, at start, by the process that has the network module.

#include "daemon_detail.hpp"

namespace pkit::tool::detail {

std::unique_ptr<node_links> open_node_links(const tree_config&, caf::actor_system_config&,
                                            std::optional<std::string>& why) {
  why = "the links to the nodes: this pkit has no network module (pkit-net runs the trees with [nodes]; restart "
        "pkit run to add nodes)";
  return nullptr;
}

}  // namespace pkit::tool::detail
