// Loading a tree file: TOML syntax (toml++), then the root group, [pkit], and the groups
// and programs in file order. Every problem is collected (see config_reader.hpp) and
// the load fails as a whole when there is any.

#include "config_reader.hpp"

#include <pkit/actors/supervisor.hpp>

#include <caf/message.hpp>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

namespace pkit::tool {
namespace detail {
namespace {

using actors::auto_shutdown;
using actors::restart_strategy;
using actors::supervisor_report;

constexpr std::int64_t int32_max = std::numeric_limits<std::int32_t>::max();
constexpr std::uintmax_t max_file_size = 4u << 20;  // a tree file is small; refuse a runaway one

void read_backoff(table_reader& r, actors::backoff_spec& b) {
  const toml::node* n = r.node("backoff");
  if (n == nullptr) return;
  if (n->is_string()) {  // `backoff = "500ms"`: the initial delay, the rest default
    if (auto d = r.duration("backoff")) b.initial_ms = *d;
    return;
  }
  const toml::table* t = r.subtable("backoff");
  if (t == nullptr) return;
  table_reader br(*t, r.path_of("backoff"), r.sink());
  b.initial_ms = 500;  // a backoff table means backoff wanted: start at 500ms unless told
  if (auto d = br.duration("initial")) b.initial_ms = *d;
  if (auto d = br.duration("max")) b.max_ms = *d;
  if (auto m = br.number("multiplier")) {
    if (*m < 1.0) br.error("multiplier", "must be >= 1 (a delay that shrinks is no backoff)");
    else b.multiplier = *m;
  }
  if (auto j = br.number("jitter")) {
    if (*j < 0.0 || *j > 1.0) br.error("jitter", "must be between 0 and 1 (a fraction of the delay)");
    else b.jitter = *j;
  }
  if (auto d = br.duration("reset_after")) b.reset_after_ms = *d;
  if (b.initial_ms > 0 && b.max_ms < b.initial_ms)
    br.error(t->contains("max") ? "max" : "initial", "max (" + format_duration(b.max_ms) +
                                                          ") must not be below initial (" +
                                                          format_duration(b.initial_ms) + ")");
  br.finish();
}

actors::supervisor_flags read_flags(table_reader& r) {
  actors::supervisor_flags f;
  if (r.table().get("strategy") != nullptr && r.table().get("strategy")->value_or(std::string_view{}) == "simple_one_for_one") {
    r.node("strategy");
    r.error("strategy", "simple_one_for_one is not offered in the file: give the program `instances = N` instead");
  } else if (auto s = r.choice<restart_strategy>("strategy", {{"one_for_one", restart_strategy::one_for_one},
                                                              {"one_for_all", restart_strategy::one_for_all},
                                                              {"rest_for_one", restart_strategy::rest_for_one}})) {
    f.strategy = *s;
  }
  if (auto i = r.integer("intensity", 0, int32_max)) f.intensity = static_cast<std::int32_t>(*i);
  if (auto p = r.duration("period")) {
    if (*p == 0) r.error("period", "must be longer than 0s");
    else f.period_ms = *p;
  }
  read_backoff(r, f.backoff);
  if (auto d = r.duration("min_uptime")) f.min_uptime_ms = *d;
  if (auto i = r.integer("max_failed_starts", 0, int32_max)) f.max_failed_starts = static_cast<std::int32_t>(*i);
  if (auto i = r.integer("start_concurrency", 1, int32_max)) f.start_concurrency = static_cast<std::int32_t>(*i);
  if (auto a = r.choice<auto_shutdown>("auto_shutdown", {{"never", auto_shutdown::never},
                                                         {"any_significant", auto_shutdown::any_significant},
                                                         {"all_significant", auto_shutdown::all_significant}}))
    f.shutdown = *a;
  if (auto a = r.choice<supervisor_report>("report", {{"none", supervisor_report::none},
                                                      {"give_up", supervisor_report::give_up},
                                                      {"all", supervisor_report::all}}))
    f.report = *a;
  return f;
}

void read_children(table_reader& r, group_config& g, load_context& ctx);

std::optional<group_config> read_group(const toml::table& t, const std::string& path, load_context& ctx) {
  table_reader r(t, path, ctx.sink);
  group_config g;
  g.where = r.where();
  if (auto name = r.string("name")) {
    if (auto why = name_problem(*name); !why.empty()) r.error("name", why);
    else {
      g.name = *name;
      ctx.claim_name(g.name, {path, g.where, ""}, position_of(t.get("name")->source()), r.path_of("name"));
    }
  } else if (!t.contains("name")) {
    r.error("name", "every group needs a name");
  }
  g.flags = read_flags(r);
  // A group's node(s) are its programs' (at any depth) unless they name their own.
  std::vector<std::string> outer = ctx.placement;
  if (auto nodes = read_placement(r, ctx)) ctx.placement = std::move(*nodes);
  g.nodes = ctx.placement;
  read_children(r, g, ctx);
  ctx.placement = std::move(outer);
  r.finish();
  return g;
}

// `[[program]]` and `[[group]]` are two arrays for TOML; the file's order is their
// tables' positions, merged.
void read_children(table_reader& r, group_config& g, load_context& ctx) {
  struct item {
    source_position at;
    const toml::table* table;
    bool is_group;
    std::string path;
  };
  std::vector<item> items;
  for (const char* kind : {"program", "group"}) {
    const toml::node* n = r.node(kind);
    if (n == nullptr) continue;
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      r.type_error(kind, *n, std::string("an array of tables ([[") + (r.path().empty() ? "" : "...") + kind + "]])");
      continue;
    }
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string path = r.path_of(kind) + "[" + std::to_string(i) + "]";
      const toml::node& e = *a->get(i);
      if (!e.is_table()) {
        r.sink().add(position_of(e.source()), path, "expected a table, got " + type_name(e.type()));
        continue;
      }
      items.push_back({position_of(e.source()), e.as_table(), std::string_view(kind) == "group", path});
    }
  }
  std::stable_sort(items.begin(), items.end(), [](const item& a, const item& b) {
    return std::pair{a.at.line, a.at.column} < std::pair{b.at.line, b.at.column};
  });
  for (const item& it : items) {
    child_config c;
    if (it.is_group) {
      if (auto sub = read_group(*it.table, it.path, ctx)) c.group.push_back(std::move(*sub));
    } else {
      c.program = read_program(*it.table, it.path, ctx);
    }
    if (c.program || c.is_group()) g.children.push_back(std::move(c));
  }
}

void read_settings(load_context& ctx, table_reader& rr) {
  ctx.settings.log_dir = resolve_path(ctx.base_dir, "logs");
  const toml::table* t = rr.subtable("pkit");
  if (t == nullptr) return;
  table_reader r(*t, "pkit", ctx.sink);
  run_settings& s = ctx.settings;
  if (auto name = r.string("name")) {
    if (auto why = name_problem(*name); !why.empty()) r.error("name", why);
    else s.name = *name;
  }
  if (auto d = r.string("log_dir")) s.log_dir = resolve_path(ctx.base_dir, *d);
  if (auto d = r.string("control_socket")) s.control_socket = resolve_path(ctx.base_dir, *d);
  if (auto d = r.duration("shutdown_timeout", true)) s.shutdown_timeout_ms = *d;
  if (auto d = r.duration("watchdog")) s.watchdog_ms = *d;
  read_link_settings(r, s, ctx.base_dir);
  r.finish();
}

std::size_t count_programs(const group_config& g) {
  std::size_t n = 0;
  for (const auto& c : g.children) n += c.is_group() ? count_programs(c.group.front()) : 1;
  return n;
}

std::string error_text(const caf::error& err) {
  const caf::message& ctx = err.context();
  if (ctx.match_elements<std::string>()) return ctx.get_as<std::string>(0);
  return to_string(err);
}

}  // namespace

load_result load_table(const toml::table& root, error_sink& sink, const std::filesystem::path& file,
                       const std::filesystem::path& base_dir, const std::vector<std::string>& placement) {
  load_context ctx{sink, base_dir, {}, {}, {}, placement};
  table_reader r(root, "", sink);
  r.hint("name", "the tree's name is [pkit] name");
  r.hint("command", "a program is a [[program]] table with a name and a command");
  read_settings(ctx, r);
  read_nodes(r, ctx, ctx.nodes);
  tree_config tree;
  tree.file = file;
  tree.root.name = ctx.settings.name;
  tree.root.where = {1, 1};
  tree.root.flags = read_flags(r);
  tree.root.nodes = ctx.placement;
  read_children(r, tree.root, ctx);
  r.finish();
  tree.settings = ctx.settings;
  tree.nodes = std::move(ctx.nodes);
  check_node_links(tree, sink);
  if (sink.empty() && count_programs(tree.root) == 0)
    sink.add({1, 1}, "program", "the tree has no program (add a [[program]] table)");
  if (sink.empty()) check_log_dir(tree, root, sink);
  // The actor layer's own check, as a backstop: whatever passed the file's checks must
  // pass it too, or the daemon would fail at start instead of here.
  if (sink.empty())
    if (caf::error err = actors::check_supervisor_spec(to_supervisor_spec(tree)))
      sink.add({}, "", "the actor layer refuses the tree: " + error_text(err));
  load_result out;
  if (sink.empty()) out.tree = std::move(tree);
  else out.errors = sink.take();
  return out;
}

}  // namespace detail

load_result load_string(std::string_view text, const std::string& file_name, const std::filesystem::path& base_dir,
                        const std::vector<std::string>& placement) {
  detail::error_sink sink(file_name);
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(file_name));
  } catch (const toml::parse_error& e) {
    sink.add(detail::position_of(e.source()), "", std::string(e.description()));
    return {std::nullopt, sink.take()};
  }
  std::error_code ec;
  auto base = std::filesystem::absolute(base_dir, ec);
  return detail::load_table(root, sink, file_name, ec ? base_dir : base, placement);
}

load_result load_file(const std::filesystem::path& file) {
  detail::error_sink sink(file.string());
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) {
    sink.add({}, "", "cannot read the file: " + ec.message());
    return {std::nullopt, sink.take()};
  }
  if (size > detail::max_file_size) {
    sink.add({}, "", "the file is " + std::to_string(size) + " bytes; a tree file has at most 4 MiB");
    return {std::nullopt, sink.take()};
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) {
    sink.add({}, "", "cannot read the file");
    return {std::nullopt, sink.take()};
  }
  const auto absolute = std::filesystem::absolute(file, ec).lexically_normal();
  load_result r = load_string(text.str(), file.string(), absolute.parent_path());
  if (r.tree) r.tree->file = absolute;
  return r;
}

}  // namespace pkit::tool
