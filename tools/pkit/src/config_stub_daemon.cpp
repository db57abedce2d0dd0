// TEMPORARY stub of pkit/tool/config.hpp for the daemon branch (helper "daemon"), so that
// `pkit run` links and its end-to-end tests run before the "cfg" helper's implementation
// lands. DELETE THIS FILE (and its line in daemon.cmake) when config.cpp is merged.
//
// It understands only what the daemon's tests use: top-level strategy/intensity/period,
// [pkit] name/control_socket, [[program]] name/command/shell/stop_signal/stop_timeout/
// restart/instances/kill_group, [[group]] name/strategy/intensity/period with nested
// program/group arrays. Durations: "500ms", "2s", "1m" or an integer of milliseconds.

#include <pkit/tool/config.hpp>

#include <toml++/toml.h>

#include <csignal>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

namespace pkit::tool {
namespace {

struct loader {
  std::string file;
  std::vector<config_error> errors;
  std::set<std::string> names;

  void fail(const toml::node* n, const std::string& path, const std::string& msg) {
    source_position at;
    if (n != nullptr) at = {n->source().begin.line, n->source().begin.column};
    errors.push_back({file, at, path, msg});
  }

  std::optional<std::int64_t> duration(const toml::node* n, const std::string& path) {
    if (n == nullptr) return std::nullopt;
    if (auto i = n->value<std::int64_t>()) return *i;
    if (auto s = n->value<std::string>()) {
      std::size_t used = 0;
      try {
        double v = std::stod(*s, &used);
        std::string unit = s->substr(used);
        if (unit == "ms") return static_cast<std::int64_t>(v);
        if (unit == "s") return static_cast<std::int64_t>(v * 1000);
        if (unit == "m") return static_cast<std::int64_t>(v * 60000);
      } catch (const std::exception&) {
      }
    }
    fail(n, path, "expected a duration such as \"500ms\", \"2s\", \"1m\"");
    return std::nullopt;
  }

  void flags(const toml::table& t, const std::string& prefix, actors::supervisor_flags& f) {
    if (auto s = t["strategy"].value<std::string>()) {
      if (*s == "one_for_one") f.strategy = actors::restart_strategy::one_for_one;
      else if (*s == "one_for_all") f.strategy = actors::restart_strategy::one_for_all;
      else if (*s == "rest_for_one") f.strategy = actors::restart_strategy::rest_for_one;
      else fail(t.get("strategy"), prefix + "strategy", "unknown strategy '" + *s + "'");
    }
    if (auto i = t["intensity"].value<std::int64_t>()) f.intensity = static_cast<std::int32_t>(*i);
    if (auto d = duration(t.get("period"), prefix + "period")) f.period_ms = *d;
  }

  void program(const toml::table& t, const std::string& path, group_config& into) {
    program_config p;
    p.where = {t.source().begin.line, t.source().begin.column};
    if (auto n = t["name"].value<std::string>()) p.name = *n;
    else fail(&t, path + ".name", "a program needs a name");
    if (!p.name.empty() && !names.insert(p.name).second)
      fail(t.get("name"), path + ".name", "duplicate name '" + p.name + "'");
    if (auto* a = t["command"].as_array()) {
      for (auto& e : *a)
        if (auto s = e.value<std::string>()) p.argv.push_back(*s);
    } else if (auto s = t["shell"].value<std::string>()) {
      p.argv = {"/bin/sh", "-c", *s};
      p.shell = true;
    }
    if (p.argv.empty()) fail(&t, path + ".command", "a program needs a command or a shell");
    if (auto i = t["stop_signal"].value<std::int64_t>()) p.stop_signal = static_cast<std::int32_t>(*i);
    if (auto s = t["stop_signal"].value<std::string>()) {
      static const std::map<std::string, int> sigs{{"TERM", SIGTERM}, {"INT", SIGINT}, {"KILL", SIGKILL},
                                                   {"HUP", SIGHUP}, {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}};
      auto it = sigs.find(*s);
      if (it == sigs.end()) fail(t.get("stop_signal"), path + ".stop_signal", "unknown signal '" + *s + "'");
      else p.stop_signal = it->second;
    }
    if (auto d = duration(t.get("stop_timeout"), path + ".stop_timeout")) p.stop_timeout_ms = *d;
    if (auto s = t["restart"].value<std::string>()) {
      if (*s == "transient") p.restart = actors::restart_type::transient;
      else if (*s == "temporary") p.restart = actors::restart_type::temporary;
      else if (*s != "permanent") fail(t.get("restart"), path + ".restart", "unknown restart '" + *s + "'");
    }
    if (auto i = t["instances"].value<std::int64_t>()) p.instances = static_cast<std::uint32_t>(*i);
    if (auto b = t["kill_group"].value<bool>()) p.kill_group = *b;
    child_config c;
    c.program = std::move(p);
    into.children.push_back(std::move(c));
  }

  void children(const toml::table& t, const std::string& prefix, group_config& g) {
    if (auto* progs = t["program"].as_array()) {
      for (std::size_t i = 0; i < progs->size(); ++i)
        if (auto* pt = progs->get(i)->as_table())
          program(*pt, prefix + "program[" + std::to_string(i) + "]", g);
    }
    if (auto* groups = t["group"].as_array()) {
      for (std::size_t i = 0; i < groups->size(); ++i) {
        auto* gt = groups->get(i)->as_table();
        if (gt == nullptr) continue;
        std::string path = prefix + "group[" + std::to_string(i) + "]";
        group_config sub;
        sub.where = {gt->source().begin.line, gt->source().begin.column};
        if (auto n = (*gt)["name"].value<std::string>()) sub.name = *n;
        else fail(gt, path + ".name", "a group needs a name");
        flags(*gt, path + ".", sub.flags);
        children(*gt, path + ".", sub);
        child_config c;
        c.group.push_back(std::move(sub));
        g.children.push_back(std::move(c));
      }
    }
  }
};

}  // namespace

std::string config_error::to_string() const {
  std::ostringstream o;
  o << file << ':' << where.line << ':' << where.column << ": " << key_path << (key_path.empty() ? "" : ": ")
    << message;
  return o.str();
}

const std::string& child_config::name() const { return is_group() ? group.front().name : program->name; }

bool program_config::operator==(const program_config& o) const {
  return name == o.name && argv == o.argv && shell == o.shell && environment == o.environment &&
         stop_signal == o.stop_signal && stop_timeout_ms == o.stop_timeout_ms && kill_group == o.kill_group &&
         restart == o.restart && instances == o.instances && cwd == o.cwd;
}
bool child_config::operator==(const child_config& o) const { return program == o.program && group == o.group; }
bool group_config::operator==(const group_config& o) const {
  return name == o.name && flags.strategy == o.flags.strategy && flags.intensity == o.flags.intensity &&
         flags.period_ms == o.flags.period_ms && children == o.children;
}

load_result load_string(std::string_view text, const std::string& file_name, const std::filesystem::path&) {
  load_result r;
  loader l{file_name, {}, {}};
  toml::table t;
  try {
    t = toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    r.errors.push_back({file_name, {e.source().begin.line, e.source().begin.column}, "",
                        std::string(e.description())});
    return r;
  }
  tree_config tree;
  tree.file = file_name;
  if (auto n = t["pkit"]["name"].value<std::string>()) tree.settings.name = *n;
  if (auto s = t["pkit"]["control_socket"].value<std::string>()) tree.settings.control_socket = *s;
  if (auto d = l.duration(t["pkit"]["shutdown_timeout"].node(), "pkit.shutdown_timeout")) tree.settings.shutdown_timeout_ms = *d;
  if (auto d = l.duration(t["pkit"]["watchdog"].node(), "pkit.watchdog")) tree.settings.watchdog_ms = *d;
  tree.root.name = tree.settings.name;
  l.flags(t, "", tree.root.flags);
  l.children(t, "", tree.root);
  if (!l.errors.empty()) {
    r.errors = std::move(l.errors);
    return r;
  }
  r.tree = std::move(tree);
  return r;
}

load_result load_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return {std::nullopt, {{file.string(), {}, "", "cannot read the file"}}};
  std::stringstream ss;
  ss << in.rdbuf();
  auto abs = std::filesystem::absolute(file);
  return load_string(ss.str(), abs.string(), abs.parent_path());
}

std::string_view default_tree_text() {
  return R"(# pkit's built-in default tree: a clock and a small group of sleepers.
[pkit]
name = "default"

intensity = 5
period = "10s"

[[program]]
name = "ticker"
shell = "while :; do sleep 5; done"
stop_timeout = "2s"

[[group]]
name = "workers"
strategy = "one_for_all"

[[group.program]]
name = "worker"
command = ["sleep", "3600"]
instances = 2
stop_timeout = "2s"
)";
}

actors::child_spec to_child_spec(const program_config& p, std::uint32_t instance) {
  actors::child_spec c;
  c.id = instance == 0 ? p.name : p.name + "." + std::to_string(instance);
  c.process.name = c.id;
  c.process.argv = p.argv;
  c.process.stop_signal = p.stop_signal;
  c.process.stop_timeout_ms = p.stop_timeout_ms;
  c.process.kill_group = p.kill_group;
  c.restart = p.restart;
  c.significant = p.significant;
  return c;
}

actors::supervisor_spec to_supervisor_spec(const group_config& g) {
  actors::supervisor_spec s;
  s.name = g.name;
  s.flags = g.flags;
  for (const auto& c : g.children) {
    if (c.is_group()) {
      actors::child_spec cs;
      cs.id = c.group.front().name;
      cs.supervisor.push_back(to_supervisor_spec(c.group.front()));
      s.children.push_back(std::move(cs));
    } else if (c.program->instances > 1) {
      for (std::uint32_t i = 1; i <= c.program->instances; ++i) s.children.push_back(to_child_spec(*c.program, i));
    } else {
      s.children.push_back(to_child_spec(*c.program));
    }
  }
  return s;
}

actors::supervisor_spec to_supervisor_spec(const tree_config& tree) { return to_supervisor_spec(tree.root); }

std::vector<program_ref> programs_of(const tree_config& tree) {
  std::vector<program_ref> out;
  std::function<void(const group_config&, std::vector<std::string>)> walk = [&](const group_config& g,
                                                                                std::vector<std::string> path) {
    for (const auto& c : g.children) {
      if (c.is_group()) {
        auto p = path;
        p.push_back(c.group.front().name);
        walk(c.group.front(), p);
      } else {
        out.push_back({&*c.program, path});
      }
    }
  };
  walk(tree.root, {});
  return out;
}

std::string describe(const tree_config& tree) {
  std::ostringstream o;
  std::function<void(const group_config&, int)> walk = [&](const group_config& g, int depth) {
    o << std::string(depth * 2, ' ') << "group " << g.name << " (" << actors::to_string(g.flags.strategy) << ")\n";
    for (const auto& c : g.children) {
      if (c.is_group()) {
        walk(c.group.front(), depth + 1);
        continue;
      }
      o << std::string(depth * 2 + 2, ' ') << "program " << c.program->name << ":";
      for (const auto& a : c.program->argv) o << ' ' << a;
      o << '\n';
    }
  };
  walk(tree.root, 0);
  return o.str();
}

reload_plan diff(const tree_config& running, const tree_config& next) {
  reload_plan plan;
  plan.root_changed = running.root.flags.strategy != next.root.flags.strategy ||
                      running.root.flags.intensity != next.root.flags.intensity ||
                      running.root.flags.period_ms != next.root.flags.period_ms;
  std::function<void(const group_config&, const group_config&, std::vector<std::string>)> walk =
      [&](const group_config& a, const group_config& b, std::vector<std::string> path) {
        auto find = [](const group_config& g, const std::string& n) -> const child_config* {
          for (const auto& c : g.children)
            if (c.name() == n) return &c;
          return nullptr;
        };
        for (const auto& c : a.children)
          if (find(b, c.name()) == nullptr) plan.removed.push_back({path, c.name(), c.is_group()});
        for (const auto& c : b.children) {
          const auto* old = find(a, c.name());
          if (old == nullptr) {
            plan.added.push_back({path, c.name(), c.is_group()});
          } else if (*old == c) {
            ++plan.unchanged;
          } else if (old->is_group() && c.is_group() && old->group.front().flags.strategy == c.group.front().flags.strategy &&
                     old->group.front().flags.intensity == c.group.front().flags.intensity) {
            auto p = path;
            p.push_back(c.name());
            walk(old->group.front(), c.group.front(), p);
          } else {
            plan.changed.push_back({path, c.name(), c.is_group()});
          }
        }
      };
  walk(running.root, next.root, {});
  return plan;
}

}  // namespace pkit::tool
