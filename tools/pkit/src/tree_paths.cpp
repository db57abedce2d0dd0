// The tree's names and paths (tree_paths.hpp).

#include "tree_paths.hpp"

#include <algorithm>
#include <sstream>

namespace pkit::tool::detail {

using actors::child_info;
using actors::child_spec;
using actors::supervisor_spec;

std::string join(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& p : path) out += (out.empty() ? "" : "/") + p;
  return out;
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream in(path);
  for (std::string part; std::getline(in, part, '/');)
    if (!part.empty()) out.push_back(part);
  return out;
}

const supervisor_spec* spec_at(const supervisor_spec& root, const std::vector<std::string>& path) {
  const supervisor_spec* s = &root;
  for (const auto& id : path) {
    const supervisor_spec* next = nullptr;
    for (const auto& c : s->children)
      if (c.id == id && !c.supervisor.empty()) next = &c.supervisor.front();
    if (next == nullptr) return nullptr;
    s = next;
  }
  return s;
}



std::vector<std::string> process_names(const program_config& p) {
  if (p.instances <= 1) return {p.name};
  std::vector<std::string> out;
  for (std::uint32_t i = 1; i <= p.instances; ++i) out.push_back(p.instance_name(i));
  return out;
}

// The child ids a child of the file stands for: its name, or its process names. Names are
// resolved against the file, never by their shape: a program may be called "web.2"
// without being an instance of "web".
std::vector<std::string> child_ids(const child_config& c) {
  return c.is_group() ? std::vector<std::string>{c.name()} : process_names(*c.program);
}

// The ids `name` stands for among the children of `g`: a whole child (every instance of
// it) or one instance.
std::vector<std::string> ids_named(const group_config& g, const std::string& name) {
  for (const auto& c : g.children) {
    auto ids = child_ids(c);
    if (c.name() == name) return ids;
    if (ids.size() > 1 && std::find(ids.begin(), ids.end(), name) != ids.end()) return {name};
  }
  return {};
}

// The specs of the children `name` stands for in group `path` (`spec` mapped from `tree`).
std::vector<child_spec> children_named(const supervisor_spec& spec, const group_config& tree,
                                       const std::vector<std::string>& path, const std::string& name) {
  std::vector<child_spec> out;
  const auto* s = spec_at(spec, path);
  const auto* g = group_at(tree, path);
  if (s == nullptr || g == nullptr) return out;
  for (const auto& id : ids_named(*g, name))
    for (const auto& c : s->children)
      if (c.id == id) out.push_back(c);
  return out;
}


namespace {

void find_targets(const group_config& g, std::vector<std::string>& path, const std::string& name,
                  std::vector<target>& out) {
  for (const auto& id : ids_named(g, name)) out.push_back({path, id});
  for (const auto& c : g.children) {
    if (!c.is_group()) continue;
    path.push_back(c.name());
    find_targets(c.group.front(), path, name, out);
    path.pop_back();
  }
}

}  // namespace

// What `name` stands for: a path as status shows it ("g/c": that child of group g only)
// or a bare name (a child of that name at any depth).
std::vector<target> resolve(const group_config& root, const std::string& name) {
  std::vector<target> out;
  if (name.find('/') != std::string::npos) {
    auto parts = split(name);
    if (parts.empty()) return out;
    std::vector<std::string> path(parts.begin(), parts.end() - 1);
    if (const auto* g = group_at(root, path))
      for (const auto& id : ids_named(*g, parts.back())) out.push_back({path, id});
    return out;
  }
  std::vector<std::string> path;
  find_targets(root, path, name, out);
  return out;
}

// The children of a group in tree order: each the live child, or (nullptr) the id of one
// its supervisor no longer has — a temporary program that ended is dropped (OTP's rule)
// but is still in the tree. Live children the spec lacks come last.
std::vector<std::pair<const child_info*, std::string>> in_tree_order(const std::vector<child_info>& live,
                                                                     const supervisor_spec* spec) {
  std::vector<std::pair<const child_info*, std::string>> out;
  if (spec != nullptr)
    for (const auto& s : spec->children) {
      auto it = std::find_if(live.begin(), live.end(), [&](const child_info& c) { return c.id == s.id; });
      out.emplace_back(it == live.end() ? nullptr : &*it, s.id);
    }
  for (const auto& c : live)
    if (std::none_of(out.begin(), out.end(), [&](const auto& o) { return o.first == &c; })) out.emplace_back(&c, c.id);
  return out;
}

// Takes the child of change `c` out of `root`.
void drop_child(group_config& root, const reload_plan::change& c) {
  if (auto* g = group_at(root, c.group))
    std::erase_if(g->children, [&](const child_config& x) { return x.name() == c.name; });
}

// Puts `next`'s child of change `c` into `root`: in place of the one of that name, else
// at the end of its group.
void put_child(group_config& root, const tree_config& next, const reload_plan::change& c) {
  auto* to = group_at(root, c.group);
  const auto* from = group_at(next.root, c.group);
  if (to == nullptr || from == nullptr) return;
  for (const auto& x : from->children) {
    if (x.name() != c.name) continue;
    auto it = std::find_if(to->children.begin(), to->children.end(),
                           [&](const child_config& y) { return y.name() == c.name; });
    if (it != to->children.end()) *it = x;
    else to->children.push_back(x);
  }
}

}  // namespace pkit::tool::detail
