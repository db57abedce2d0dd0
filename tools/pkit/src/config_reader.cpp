// table_reader: typed, position-aware reads of one table of the tree file.

#include "config_reader.hpp"

#include <algorithm>

namespace pkit::tool::detail {

std::string table_reader::path_of(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const toml::node* table_reader::node(std::string_view key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.emplace_back(key);
  return table_.get(key);
}

void table_reader::error(std::string_view key, std::string message) {
  const toml::node* n = table_.get(key);
  sink_.add(n != nullptr ? position_of(n->source()) : where(), path_of(key), std::move(message));
}

void table_reader::type_error(std::string_view key, const toml::node& n, std::string_view expected) {
  error(key, "expected " + std::string(expected) + ", got " + type_name(n.type()));
}

std::optional<std::string> table_reader::string(std::string_view key) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  if (!n->is_string()) {
    type_error(key, *n, "a string");
    return std::nullopt;
  }
  const std::string& s = n->as_string()->get();
  // A NUL cannot cross exec or a C string: refuse it here rather than truncate later.
  if (s.find('\0') != std::string::npos) {
    error(key, "contains a NUL character");
    return std::nullopt;
  }
  return s;
}

std::optional<bool> table_reader::boolean(std::string_view key) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  if (!n->is_boolean()) {
    type_error(key, *n, "a boolean (true or false)");
    return std::nullopt;
  }
  return n->as_boolean()->get();
}

std::optional<std::int64_t> table_reader::integer(std::string_view key, std::int64_t min, std::int64_t max) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  if (!n->is_integer()) {
    type_error(key, *n, "an integer");
    return std::nullopt;
  }
  const std::int64_t v = n->as_integer()->get();
  if (v < min || v > max) {
    error(key, std::to_string(v) + " is out of range: must be between " + std::to_string(min) + " and " +
                   std::to_string(max));
    return std::nullopt;
  }
  return v;
}

std::optional<double> table_reader::number(std::string_view key) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  if (n->is_integer()) return static_cast<double>(n->as_integer()->get());
  if (!n->is_floating_point()) {
    type_error(key, *n, "a number");
    return std::nullopt;
  }
  return n->as_floating_point()->get();
}

std::optional<std::int64_t> table_reader::duration(std::string_view key, bool infinity_ok) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  if (n->is_integer()) {
    const auto v = n->as_integer()->get();
    error(key, "a duration is a string with a unit: write \"" + std::to_string(v) + "s\" or \"" +
                   std::to_string(v) + "ms\"");
    return std::nullopt;
  }
  if (!n->is_string()) {
    type_error(key, *n, "a duration string (\"500ms\", \"10s\")");
    return std::nullopt;
  }
  auto parsed = parse_duration(n->as_string()->get(), infinity_ok);
  if (auto* msg = std::get_if<std::string>(&parsed)) {
    error(key, *msg);
    return std::nullopt;
  }
  return std::get<std::int64_t>(parsed);
}

std::optional<std::uint64_t> table_reader::size(std::string_view key) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  if (n->is_integer()) {
    const auto v = n->as_integer()->get();
    if (v < 0) {
      error(key, "must not be negative");
      return std::nullopt;
    }
    return static_cast<std::uint64_t>(v);
  }
  if (!n->is_string()) {
    type_error(key, *n, "a size (\"10MiB\" or a number of bytes)");
    return std::nullopt;
  }
  auto parsed = parse_size(n->as_string()->get());
  if (auto* msg = std::get_if<std::string>(&parsed)) {
    error(key, *msg);
    return std::nullopt;
  }
  return std::get<std::uint64_t>(parsed);
}

const toml::table* table_reader::subtable(std::string_view key) {
  const toml::node* n = node(key);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) {
    type_error(key, *n, "a table");
    return nullptr;
  }
  return n->as_table();
}

std::string table_reader::choice_message(const std::string& got, const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "\"" : ", \"") + n + "\"";
  std::string msg = "\"" + got + "\" is not one of " + list;
  if (auto near = closest(got, names); !near.empty()) msg += "; did you mean \"" + near + "\"?";
  return msg;
}

void table_reader::finish() {
  for (auto&& [k, v] : table_) {
    if (std::find(known_.begin(), known_.end(), k.str()) != known_.end()) continue;
    std::string msg = "unknown key '" + std::string(k.str()) + "'";
    auto hint = std::find_if(hints_.begin(), hints_.end(), [&](const auto& h) { return h.first == k.str(); });
    if (hint != hints_.end()) msg += "; " + hint->second;
    else if (auto near = closest(k.str(), known_); !near.empty()) msg += "; did you mean '" + near + "'?";
    sink_.add(position_of(k.source()), path_of(k.str()), std::move(msg));
  }
}

}  // namespace pkit::tool::detail
