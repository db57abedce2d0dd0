#pragma once

// The tree's names and paths for the daemon's control requests: a group path ("a/b")
// in the tree file and in the supervisor specs mapped from it, the child ids a name
// stands for (a program, each instance, a group), and the edits a reload makes to the
// recorded tree. Pure functions of the file's model; the daemon calls them under its
// control lock.

#include <pkit/actors/messages.hpp>
#include <pkit/tool/config.hpp>

#include <string>
#include <utility>
#include <vector>

namespace pkit::tool::detail {

/// "a/b" from {"a", "b"}; "" for the root.
std::string join(const std::vector<std::string>& path);
/// {"a", "b"} from "a/b" (empty parts dropped).
std::vector<std::string> split(const std::string& path);

/// The spec of the group at `path` below `root`; nullptr when there is none.
const actors::supervisor_spec* spec_at(const actors::supervisor_spec& root, const std::vector<std::string>& path);

/// The group at `path` below `root` (group_config, const or not); nullptr when none.
template <class Group>
Group* group_at(Group& root, const std::vector<std::string>& path) {
  Group* g = &root;
  for (const auto& id : path) {
    Group* next = nullptr;
    for (auto& c : g->children)
      if (c.is_group() && c.name() == id) next = &c.group.front();
    if (next == nullptr) return nullptr;
    g = next;
  }
  return g;
}

/// The child ids a child of the file stands for: its name, or NAME.1 ... NAME.N for a
/// program with instances.
std::vector<std::string> child_ids(const child_config& c);
/// The process names of a program: NAME, or NAME.1 ... NAME.N with instances — the ids
/// to_child_spec gives its children, which the log capture is keyed by.
std::vector<std::string> process_names(const program_config& p);
/// The ids `name` stands for among the children of `g`: a whole child (every instance)
/// or one instance.
std::vector<std::string> ids_named(const group_config& g, const std::string& name);
/// The specs of the children `name` stands for in group `path` (`spec` mapped from `tree`).
std::vector<actors::child_spec> children_named(const actors::supervisor_spec& spec, const group_config& tree,
                                               const std::vector<std::string>& path, const std::string& name);

// Where a named child is: every (group path, child id) it stands for.
struct target {
  std::vector<std::string> path;
  std::string id;
  std::string key() const { return path.empty() ? id : join(path) + "/" + id; }
};

/// What `name` stands for: a path as status shows it ("g/c": that child of group g only)
/// or a bare name (a child of that name at any depth). Empty when nothing.
std::vector<target> resolve(const group_config& root, const std::string& name);

/// The children of a group in tree order: each the live child, or (nullptr) the id of one
/// its supervisor no longer has. Live children the spec lacks come last. The pointers
/// point into `live`.
std::vector<std::pair<const actors::child_info*, std::string>> in_tree_order(
    const std::vector<actors::child_info>& live, const actors::supervisor_spec* spec);

/// Takes the child of change `c` out of `root`.
void drop_child(group_config& root, const reload_plan::change& c);
/// Puts `next`'s child of change `c` into `root`: in place of the one of that name, else
/// at the end of its group.
void put_child(group_config& root, const tree_config& next, const reload_plan::change& c);

}  // namespace pkit::tool::detail
