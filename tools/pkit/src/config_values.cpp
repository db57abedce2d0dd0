// Values of the tree file: durations, sizes, signals, names, and the "did you mean"
// suggestion — the parsers every table of the file shares.

#include "config_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>
#include <cstring>
#include <limits>

namespace pkit::tool::detail {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Damerau-free Levenshtein distance: names are short, a plain O(n*m) table is enough.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0u : 1u)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Splits "500ms" into 500 and "ms"; false when there is no leading integer.
bool split_number(std::string_view s, std::uint64_t& value, std::string_view& unit) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end == s.data()) return false;
  unit = s.substr(static_cast<std::size_t>(end - s.data()));
  return true;
}

}  // namespace

source_position position_of(const toml::source_region& r) { return {r.begin.line, r.begin.column}; }

void error_sink::add(source_position at, std::string key_path, std::string message) {
  errors_.push_back({file_, at, std::move(key_path), std::move(message)});
}

std::vector<config_error> error_sink::take() {
  auto key = [](const config_error& e) {
    // Unknown positions (0) after every known one.
    auto l = e.where.line == 0 ? std::numeric_limits<std::uint32_t>::max() : e.where.line;
    return std::pair{l, e.where.column};
  };
  std::stable_sort(errors_.begin(), errors_.end(),
                   [&](const config_error& a, const config_error& b) { return key(a) < key(b); });
  return std::move(errors_);
}

std::string type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = 3;
  const std::string w = lower(word);
  for (const std::string& c : candidates) {
    std::size_t d = edit_distance(w, lower(c));
    const bool prefix = w.size() >= 3 && (c.starts_with(w) || w.starts_with(c));
    if (prefix && d > 2) d = 2;
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::variant<std::int64_t, std::string> parse_duration(std::string_view s, bool infinity_ok) {
  if (s == "infinity") {
    if (infinity_ok) return std::int64_t{-1};
    return std::string("\"infinity\" is not allowed here");
  }
  if (s.starts_with('-')) return std::string("must not be negative");
  std::uint64_t n = 0;
  std::string_view unit;
  if (!split_number(s, n, unit))
    return "\"" + std::string(s) + "\" is not a duration (write \"500ms\", \"10s\", \"2m\" or \"1h\")";
  std::uint64_t scale = 0;
  if (unit == "ms") scale = 1;
  else if (unit == "s") scale = 1000;
  else if (unit == "m" || unit == "min") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else if (unit.empty() && n == 0) scale = 1;
  else
    return "\"" + std::string(s) + "\": unknown unit '" + std::string(unit) + "' (use ms, s, m or h)";
  // Capped far below int64's range: steady_clock::now() + the duration must not overflow
  // (a "3000000h" shutdown_timeout used to wrap around and force the kill at once).
  constexpr std::uint64_t max_ms = 1'000'000'000'000;
  if (n > max_ms / scale) return "\"" + std::string(s) + "\" is too long (at most 1000000000000ms, about 31 years)";
  return static_cast<std::int64_t>(n * scale);
}

std::variant<std::uint64_t, std::string> parse_size(std::string_view s) {
  std::uint64_t n = 0;
  std::string_view unit;
  if (!split_number(s, n, unit))
    return "\"" + std::string(s) + "\" is not a size (write \"512KiB\", \"10MiB\", \"1GB\" or bytes)";
  static const std::vector<std::pair<std::string_view, std::uint64_t>> units = {
      {"", 1}, {"B", 1}, {"KB", 1000}, {"MB", 1000'000}, {"GB", 1000'000'000},
      {"KiB", 1u << 10}, {"MiB", 1u << 20}, {"GiB", 1u << 30}};
  for (const auto& [u, scale] : units) {
    if (unit != u) continue;
    if (n > std::numeric_limits<std::uint64_t>::max() / scale) return "\"" + std::string(s) + "\" is too large";
    return n * scale;
  }
  return "\"" + std::string(s) + "\": unknown unit '" + std::string(unit) + "' (use B, KB, MB, GB, KiB, MiB or GiB)";
}

std::string name_problem(std::string_view name) {
  if (name.empty()) return "a name cannot be empty";
  if (name.size() > 64) return "a name has at most 64 characters";
  if (name.front() == '.' || name.front() == '-') return "a name cannot start with '.' or '-'";
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return "'" + std::string(name) + "': a name has only letters, digits, '_', '.' and '-'";
  return {};
}

std::filesystem::path resolve_path(const std::filesystem::path& base, const std::string& p) {
  std::filesystem::path out = (std::filesystem::path(p).is_absolute() ? std::filesystem::path(p) : base / p).lexically_normal();
  if (!out.has_filename() && out != out.root_path()) out = out.parent_path();
  return out;
}

std::string format_duration(std::int64_t ms) {
  if (ms < 0) return "infinity";
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

void load_context::claim_name(const std::string& name, const name_owner& who, source_position at,
                              const std::string& key_path) {
  auto [it, fresh] = names.emplace(name, who);
  if (fresh) return;
  const name_owner& other = it->second;
  std::string what = other.instance_of.empty()
                         ? "the name of " + other.key_path
                         : "an instance name of " + other.key_path + " ('" + other.instance_of + "' has instances)";
  std::string mine = who.instance_of.empty() ? "duplicate name '" + name + "'"
                                             : "instance name '" + name + "' of '" + who.instance_of + "'";
  sink.add(at, key_path, mine + " is already " + what + " (line " + std::to_string(other.where.line) +
                             "); names are unique in the whole file");
}

}  // namespace pkit::tool::detail
