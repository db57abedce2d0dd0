#pragma once

// Private to the config part (tools/pkit/src/config_*.cpp) and to the node allow-list
// (node_allow.cpp, which reads its file the same way): reading one TOML table with
// positions, typed getters that record errors instead of throwing, and the shared
// value parsers (durations, sizes, signals, names). Not installed, not for other parts.

#include <pkit/tool/config.hpp>

#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace pkit::tool::detail {

source_position position_of(const toml::source_region& r);

/// Collects every error of one load (the load never stops at the first).
class error_sink {
public:
  explicit error_sink(std::string file) : file_(std::move(file)) {}
  void add(source_position at, std::string key_path, std::string message);
  const std::string& file() const noexcept { return file_; }
  bool empty() const noexcept { return errors_.empty(); }
  /// The errors sorted by position (unknown positions last), stable otherwise.
  std::vector<config_error> take();

private:
  std::string file_;
  std::vector<config_error> errors_;
};

/// "a string", "an integer", ... for "expected X, got Y".
std::string type_name(toml::node_type t);

/// The closest of `candidates` to `word` (edit distance <= 2, or a prefix either way), or "".
std::string closest(std::string_view word, const std::vector<std::string>& candidates);

/// Parses "500ms", "10s", "2m", "1h" (and "infinity" → -1 when `infinity_ok`); an error
/// text (without position) when it cannot.
std::variant<std::int64_t, std::string> parse_duration(std::string_view s, bool infinity_ok);
/// "10MiB", "512KiB", "1GB", "100B", "4096".
std::variant<std::uint64_t, std::string> parse_size(std::string_view s);
/// "" when `name` is a valid program/group name, else why not.
std::string name_problem(std::string_view name);
/// `p` made absolute against `base`, normalised, without a trailing '/' ("." → base).
std::filesystem::path resolve_path(const std::filesystem::path& base, const std::string& p);
/// "500ms", "10s", "2m", "1h", "infinity" (-1).
std::string format_duration(std::int64_t ms);

/// Reads one table of the file. Every getter records the key as known (present or not),
/// so that `finish()` can refuse the keys nobody asked for, with a suggestion. A getter
/// returns nullopt when the key is absent or wrong (the error is recorded then).
class table_reader {
public:
  table_reader(const toml::table& t, std::string path, error_sink& sink)
      : table_(t), path_(std::move(path)), sink_(sink) {}

  const toml::table& table() const noexcept { return table_; }
  const std::string& path() const noexcept { return path_; }
  std::string path_of(std::string_view key) const;
  source_position where() const { return position_of(table_.source()); }
  error_sink& sink() const noexcept { return sink_; }

  /// The node of `key` (marks it known), nullptr when absent.
  const toml::node* node(std::string_view key);
  /// Records an error about `key` at its value (or at the table when absent).
  void error(std::string_view key, std::string message);
  /// "expected T, got U" about `key`.
  void type_error(std::string_view key, const toml::node& n, std::string_view expected);

  std::optional<std::string> string(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
  std::optional<double> number(std::string_view key);
  std::optional<std::int64_t> duration(std::string_view key, bool infinity_ok = false);
  std::optional<std::uint64_t> size(std::string_view key);
  const toml::table* subtable(std::string_view key);
  /// One of `choices` (by name), else an error listing them (with a suggestion).
  template <class E>
  std::optional<E> choice(std::string_view key, const std::vector<std::pair<std::string, E>>& choices) {
    auto s = string(key);
    if (!s) return std::nullopt;
    std::vector<std::string> names;
    for (const auto& [n, v] : choices) {
      if (n == *s) return v;
      names.push_back(n);
    }
    error(key, choice_message(*s, names));
    return std::nullopt;
  }

  /// An unknown `key` gets `text` as its suggestion instead of a near known key.
  void hint(std::string key, std::string text) { hints_.emplace_back(std::move(key), std::move(text)); }

  /// Refuses every key no getter asked for ("unknown key 'x'; did you mean 'y'?").
  void finish();

private:
  static std::string choice_message(const std::string& got, const std::vector<std::string>& names);

  const toml::table& table_;
  std::string path_;
  error_sink& sink_;
  std::vector<std::string> known_;
  std::vector<std::pair<std::string, std::string>> hints_;
};

/// Who holds a name already (names are unique in the whole file).
struct name_owner {
  std::string key_path;
  source_position where;
  std::string instance_of;  ///< "" or the program whose instance this name is
};

/// State of one load.
struct load_context {
  error_sink& sink;
  std::filesystem::path base_dir;  ///< the file's directory (absolute)
  run_settings settings;
  std::map<std::string, name_owner> names;
  std::vector<node_address> nodes;   ///< the file's [nodes], read before any program
  std::vector<std::string> placement;  ///< the nearest enclosing group's `node`/`nodes`
  /// Children (programs × instances) declared so far: capped at max_children, since each
  /// costs memory and start time (100 × 10000 instances cost 750 MB just to check).
  std::uint64_t children = 0;
  static constexpr std::uint64_t max_children = 100'000;

  /// Registers `name` (a program's, a group's, or a generated instance name).
  void claim_name(const std::string& name, const name_owner& who, source_position at, const std::string& key_path);
};

// -- parts of the load (config_parse.cpp, config_program.cpp, config_checks.cpp) ---------

/// Reads and checks a parsed file (errors into `sink`).
load_result load_table(const toml::table& root, error_sink& sink, const std::filesystem::path& file,
                       const std::filesystem::path& base_dir, const std::vector<std::string>& placement = {});

/// Reads one [[program]] table; nullopt when it is too broken to be a program.
std::optional<program_config> read_program(const toml::table& t, const std::string& path, load_context& ctx);

/// Checks against the system: argv[0] resolvable (made absolute when relative with a
/// '/'), on `path`'s `command`/`shell` node `at`.
void check_command(program_config& p, table_reader& r, const load_context& ctx);
/// cwd exists and is a directory.
void check_cwd(const program_config& p, table_reader& r);
/// user / group exist, and are ours unless we are root.
void check_credentials(const program_config& p, table_reader& r);
// -- distribution (config_nodes.cpp) ------------------------------------------------------

/// Reads the root's [nodes.NAME] tables into `out`.
void read_nodes(table_reader& root, load_context& ctx, std::vector<node_address>& out);
/// Reads [pkit] tls, heartbeat and node_timeout into `s` (paths against `base_dir`).
void read_link_settings(table_reader& pkit, run_settings& s, const std::filesystem::path& base_dir);

/// "HOST:PORT" or "[V6]:PORT" into `host` and `port` (port 0 only with `allow_any_port`).
/// Returns the error text, or "" when parsed. Shared by [nodes], control_listen and
/// `pkit ctl --host`.
std::string parse_host_port(const std::string& text, std::string& host, std::uint16_t& port, bool allow_any_port);
/// A program's or group's `node` / `nodes`: declared node names, in order; nullopt when
/// absent or wrong (the error is recorded then).
std::optional<std::vector<std::string>> read_placement(table_reader& r, const load_context& ctx);
/// What no node would accept of a program placed on nodes (relative command, log output,
/// kill_group = false, an infinite stop_timeout).
void check_remote_program(const program_config& p, table_reader& r);
/// Every node that a program uses and that is beyond loopback needs [pkit] tls.
void check_node_links(const tree_config& tree, error_sink& sink);

/// When a program logs to a file: log_dir can be created.
void check_log_dir(const tree_config& tree, const toml::table& root, error_sink& sink);

}  // namespace pkit::tool::detail
