// `pkit run`'s side of the distribution (issue 11) that needs no network code: what a
// `ctl add` snippet inherits of the tree's links. The links themselves: daemon_net.cpp.

#include "daemon_detail.hpp"

#include <nlohmann/json.hpp>

namespace pkit::tool::detail {

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
