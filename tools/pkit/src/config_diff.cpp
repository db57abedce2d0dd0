// diff(): what a reload changes, group by group, by child name.

#include <pkit/tool/config.hpp>

#include <algorithm>

namespace pkit::tool {
namespace {

const child_config* find(const group_config& g, const std::string& name) {
  auto it = std::find_if(g.children.begin(), g.children.end(), [&](const child_config& c) { return c.name() == name; });
  return it == g.children.end() ? nullptr : &*it;
}

// The group itself, not its children: a change here restarts it as a whole.
bool same_group_settings(const group_config& a, const group_config& b) {
  return a.name == b.name && same_flags(a.flags, b.flags);
}

void diff_group(const group_config& old_g, const group_config& new_g, std::vector<std::string>& path, reload_plan& plan) {
  for (const child_config& c : old_g.children)
    if (find(new_g, c.name()) == nullptr) plan.removed.push_back({path, c.name(), c.is_group()});
  for (const child_config& c : new_g.children) {
    const child_config* before = find(old_g, c.name());
    if (before == nullptr) {
      plan.added.push_back({path, c.name(), c.is_group()});
    } else if (before->is_group() != c.is_group()) {
      plan.changed.push_back({path, c.name(), c.is_group()});
    } else if (!c.is_group()) {
      if (*before->program == *c.program) ++plan.unchanged;
      else plan.changed.push_back({path, c.name(), false});
    } else if (!same_group_settings(before->group.front(), c.group.front())) {
      plan.changed.push_back({path, c.name(), true});
    } else {
      path.push_back(c.name());
      diff_group(before->group.front(), c.group.front(), path, plan);
      path.pop_back();
    }
  }
}

}  // namespace

reload_plan diff(const tree_config& running, const tree_config& next) {
  reload_plan plan;
  const run_settings& a = running.settings;
  const run_settings& b = next.settings;
  plan.root_changed = !same_flags(running.root.flags, next.root.flags) || a.name != b.name ||
                      a.control_socket != b.control_socket ||
                      // the links to nodes are made once, at start
                      running.nodes != next.nodes || a.tls != b.tls || a.heartbeat_ms != b.heartbeat_ms ||
                      a.node_timeout_ms != b.node_timeout_ms ||
                      // the control listener is made once, at start
                      a.control_listen != b.control_listen || a.control_tls != b.control_tls;
  std::vector<std::string> path;
  diff_group(running.root, next.root, path, plan);
  return plan;
}

}  // namespace pkit::tool
