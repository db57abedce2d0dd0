// The allow-list file of `pkit node`: TOML → pkit::net::allow_list. It reuses the tree
// file's reader (config_reader.hpp: positions, typed getters, unknown keys with "did you
// mean"), so that both files report errors the same way.

#include <pkit/tool/node_allow.hpp>

#include "config_reader.hpp"

#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

namespace pkit::tool {
namespace {

namespace fs = std::filesystem;
using detail::error_sink;
using detail::position_of;
using detail::table_reader;

constexpr std::uintmax_t max_allow_file_size = 4u << 20;  // as a tree file

/// The file's [limits] keys, and the allow_list::check() subject each one is.
struct limit_key {
  const char* key;
  const char* subject;
};
constexpr limit_key limit_keys[] = {
    {"max_args", "max_args"},
    {"max_arg_bytes", "max_arg_bytes"},
    {"max_total_bytes", "max_total_bytes"},
    {"max_name_bytes", "max_name_bytes"},
    {"max_stop_timeout", "max_stop_timeout_ms"},
    {"max_ready_timeout", "max_ready_timeout_ms"},
};

/// An array of strings at `key` (absent: nullopt, no error). A wrong element is an error
/// at that element, named `key[i]`.
std::optional<std::vector<std::string>> string_list(table_reader& r, std::string_view key) {
  const toml::node* n = r.node(key);
  if (n == nullptr) return std::nullopt;
  const toml::array* a = n->as_array();
  if (a == nullptr) {
    r.type_error(key, *n, "an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (std::size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    const std::string at = r.path_of(key) + "[" + std::to_string(i) + "]";
    if (!e.is_string()) {
      r.sink().add(position_of(e.source()), at, "expected a string, got " + detail::type_name(e.type()));
      ok = false;
    } else if (e.as_string()->get().find('\0') != std::string::npos) {
      r.sink().add(position_of(e.source()), at, "contains a NUL character");
      ok = false;
    } else {
      out.push_back(e.as_string()->get());
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::vector<fs::path> paths(std::vector<std::string> v) { return {v.begin(), v.end()}; }

/// One [[pinned]] entry: program and args, both required.
std::optional<net::fixed_args> read_pinned(const toml::table& t, const std::string& path, error_sink& sink) {
  table_reader r(t, path, sink);
  auto program = r.string("program");
  auto args = string_list(r, "args");
  if (r.node("program") == nullptr) r.error("program", "a pinned entry needs the program's absolute path");
  if (r.node("args") == nullptr) r.error("args", "a pinned entry needs its fixed arguments (args = [] for none)");
  r.finish();
  if (!program || !args) return std::nullopt;
  return net::fixed_args{*program, std::move(*args)};
}

void read_pinned_list(table_reader& r, net::allow_list& allow) {
  const toml::node* n = r.node("pinned");
  if (n == nullptr) return;
  const toml::array* a = n->as_array();
  if (a == nullptr || !a->is_array_of_tables()) {
    r.type_error("pinned", *n, "an array of tables ([[pinned]])");
    return;
  }
  for (std::size_t i = 0; i < a->size(); ++i)
    if (auto p = read_pinned(*a->get(i)->as_table(), "pinned[" + std::to_string(i) + "]", r.sink()))
      allow.pinned.push_back(std::move(*p));
}

void read_limits(table_reader& root, net::allow_list& allow) {
  const toml::table* t = root.subtable("limits");
  if (t == nullptr) return;
  table_reader r(*t, "limits", root.sink());
  constexpr auto big = std::numeric_limits<std::int32_t>::max();
  if (auto v = r.integer("max_args", 1, big)) allow.max_args = static_cast<std::size_t>(*v);
  if (auto v = r.size("max_arg_bytes")) allow.max_arg_bytes = *v;
  if (auto v = r.size("max_total_bytes")) allow.max_total_bytes = *v;
  if (auto v = r.integer("max_name_bytes", 1, 4096)) allow.max_name_bytes = static_cast<std::size_t>(*v);
  if (auto v = r.duration("max_stop_timeout")) allow.max_stop_timeout_ms = *v;
  if (auto v = r.duration("max_ready_timeout")) allow.max_ready_timeout_ms = *v;
  r.finish();
}

void read_lists(table_reader& r, net::allow_list& allow) {
  if (auto v = string_list(r, "programs")) allow.programs = paths(std::move(*v));
  if (auto v = string_list(r, "program_dirs")) allow.program_dirs = paths(std::move(*v));
  if (auto v = string_list(r, "cwd_dirs")) allow.cwd_dirs = paths(std::move(*v));
  if (auto v = string_list(r, "users")) allow.users = std::move(*v);
  if (auto v = string_list(r, "groups")) allow.groups = std::move(*v);
  if (auto v = string_list(r, "env_names")) allow.env_names = std::move(*v);
  if (auto v = string_list(r, "base_env")) allow.base_env = std::move(*v);
}

void read_root(table_reader& r, net::allow_list& allow) {
  read_lists(r, allow);
  if (auto v = r.boolean("interpreters_allowed")) allow.interpreters_allowed = *v;
  if (auto v = r.string("default_user")) allow.default_user = *v;
  if (auto v = r.string("default_group")) allow.default_group = *v;
  if (auto v = r.boolean("agent_credentials_allowed")) allow.agent_credentials_allowed = *v;
  if (auto v = r.boolean("rlimits_allowed")) allow.rlimits_allowed = *v;
  read_pinned_list(r, allow);
  read_limits(r, allow);
  r.hint("max_children", "the cap on children is pkit node's --max-children");
  r.hint("program", "list programs as programs = [\"/usr/bin/x\"]");
  r.finish();
}

/// The key path in the file of allow_list::check()'s `subject` ("programs[2]",
/// "pinned[0]", "max_stop_timeout_ms").
std::string key_path_of(const std::string& subject) {
  for (const auto& l : limit_keys)
    if (subject == l.subject) return std::string("limits.") + l.key;
  if (subject.starts_with("pinned[")) return subject + ".program";
  return subject;
}

/// allow.check()'s refusal as an error at the entry it names (the file's start when the
/// entry is a default the file did not write).
void check_list(const net::allow_list& allow, const toml::table& root, error_sink& sink) {
  auto bad = allow.check();
  if (!bad) return;
  const std::string path = key_path_of(bad->subject);
  toml::node_view<const toml::node> at = root.at_path(path);
  source_position where = at ? position_of(at.node()->source()) : source_position{1, 1};
  std::string text = bad->reason;
  if (!bad->detail.empty()) text += " (" + bad->detail + ")";
  sink.add(where, path, std::move(text));
}

}  // namespace

allow_file_result load_allow_string(std::string_view text, const std::string& file_name) {
  error_sink sink(file_name);
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(file_name));
  } catch (const toml::parse_error& e) {
    sink.add(position_of(e.source()), "", std::string(e.description()));
    return {std::nullopt, sink.take()};
  }
  net::allow_list allow;
  table_reader r(root, "", sink);
  read_root(r, allow);
  // check() reads the file system: only for a file whose every key was understood.
  if (sink.empty()) check_list(allow, root, sink);
  if (!sink.empty()) return {std::nullopt, sink.take()};
  return {std::move(allow), {}};
}

allow_file_result load_allow_file(const fs::path& file) {
  error_sink sink(file.string());
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) {
    sink.add({}, "", "cannot read the allow-list: " + ec.message());
    return {std::nullopt, sink.take()};
  }
  if (size > max_allow_file_size) {
    sink.add({}, "", "the file is " + std::to_string(size) + " bytes; an allow-list has at most 4 MiB");
    return {std::nullopt, sink.take()};
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) {
    sink.add({}, "", "cannot read the allow-list");
    return {std::nullopt, sink.take()};
  }
  return load_allow_string(text.str(), file.string());
}

}  // namespace pkit::tool
