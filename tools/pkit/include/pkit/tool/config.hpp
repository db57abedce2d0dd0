#pragma once

/// \file
/// The model of a `pkit` tree file (TOML): groups (supervisors, nestable) and programs,
/// in file order; loading and checking it; turning it into the actor layer's
/// supervisor_spec; the difference between two versions (for reload).
///
/// The file format is documented in the README ("The tree file"). In short: the top level
/// of the file is the root group (its settings: strategy, intensity, ...), an optional
/// `[pkit]` table holds settings of `pkit run` itself, `[[program]]` and `[[group]]`
/// tables are the root's children in the order they appear in the file, and a group's
/// own children are `[[group.program]]` / `[[group.group]]` below it.

#include <pkit/actors/messages.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pkit::tool {

/// Where in a file something is (1-based; 0 when unknown, e.g. a default).
struct source_position {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

/// One problem of a file: "FILE:LINE:COLUMN: KEY.PATH: MESSAGE". `key_path` is the TOML
/// path of the offending key, with array indices: `program[2].stop_timeout`,
/// `group[0].program[1].command`.
struct config_error {
  std::string file;
  source_position where;
  std::string key_path;
  std::string message;

  /// The one-line rendering above.
  std::string to_string() const;
};

/// Where one of a program's standard streams goes.
struct output_spec {
  enum class kind { inherit, null, log };
  kind mode = kind::inherit;
  /// For `log`: the file (absolute; relative names in the file are resolved against the
  /// `[pkit] log_dir`, itself relative to the file's directory), rotated once it would
  /// exceed `max_bytes`, keeping `keep` rotated files (spdlog keeps the extension last: api.log rotates to api.1.log ... api.KEEP.log; a name without one to NAME.1 ... NAME.KEEP).
  std::filesystem::path path;
  std::uint64_t max_bytes = 10u << 20;
  std::uint32_t keep = 5;
};

/// How a program tells it is ready.
struct readiness_spec {
  enum class kind { none, fd, notify_socket };
  kind mode = kind::none;
  int fd = -1;                     ///< for `fd`: the descriptor it writes a newline to
  std::int64_t timeout_ms = 10000; ///< not ready by then: a failed start
};

/// One `[[program]]`: everything the file says about it, already checked.
struct program_config {
  std::string name;                ///< unique in the whole file (ctl addresses it by it)
  source_position where;
  std::vector<std::string> argv;   ///< `command`, or {"/bin/sh", "-c", shell}
  bool shell = false;              ///< given as `shell = "..."`
  std::map<std::string, std::string> environment;
  bool clear_env = false;
  std::string cwd;                 ///< absolute, or "" (pkit run's own)
  std::string user;
  std::string group;
  output_spec stdout_spec;
  output_spec stderr_spec;
  /// `stdin`: /dev/null unless "inherit" (pkit run's own), as systemd's default
  /// StandardInput=null: a program in a group of its own that read pkit run's terminal
  /// would be stopped (SIGTTIN), and programs sharing one stdin would race for it.
  enum class input { null, inherit };
  input stdin_mode = input::null;
  std::int32_t stop_signal = 15;
  std::int64_t stop_timeout_ms = 5000;  ///< -1: never SIGKILL; 0: SIGKILL at once
  bool kill_group = true;
  actors::restart_type restart = actors::restart_type::permanent;
  bool significant = false;
  std::uint32_t instances = 1;     ///< > 1: children NAME.1 ... NAME.N
  /// Empty: the program runs here. Else the declared nodes ([nodes.NAME]) it may run on,
  /// in order of preference (its own `node`/`nodes`, or its nearest group's).
  std::vector<std::string> nodes;
  readiness_spec readiness;
  std::vector<actors::rlimit_spec> limits;

  bool operator==(const program_config&) const;  ///< ignores `where`

  /// The name of instance `i` (1 ... instances): "NAME.i"; `name` itself for 0. The one
  /// spelling of the rule, for the file's name checks, the child ids and the tool's paths.
  std::string instance_name(std::uint32_t i) const { return i == 0 ? name : name + "." + std::to_string(i); }
};

struct group_config;

/// One child of a group: a program, or a nested group (like actors::child_spec, a vector
/// of exactly one, because group_config is not complete here).
struct child_config {
  std::optional<program_config> program;
  std::vector<group_config> group;  ///< exactly one element for a group

  bool is_group() const noexcept { return !group.empty(); }
  const std::string& name() const;
  bool operator==(const child_config&) const;
};

/// One group (a supervisor): the root, or a `[[group]]`.
struct group_config {
  std::string name;                ///< the root's is the file's [pkit] name
  source_position where;
  actors::supervisor_flags flags;  ///< strategy, intensity, period, backoff, ...
  std::vector<child_config> children;  ///< in file order
  /// Where its programs run unless they say: its own `node`/`nodes`, else its enclosing
  /// group's; empty: here. Derived (its programs carry it): not compared.
  std::vector<std::string> nodes;

  bool operator==(const group_config&) const;  ///< ignores `where` (children compared too)
};

/// Whether two groups' flags are the same (supervisor_flags has no operator==).
bool same_flags(const actors::supervisor_flags& a, const actors::supervisor_flags& b);

/// A node of the tree (`[nodes.NAME]`): a `pkit node` that runs programs placed on it.
struct node_address {
  std::string name;
  std::string host;        ///< a name or a numeric address (IPv6 without brackets)
  std::uint16_t port = 0;
  source_position where;

  bool operator==(const node_address& o) const { return name == o.name && host == o.host && port == o.port; }
};

/// The certificate set `pkit run` presents to its nodes (`[pkit] tls`): required as soon
/// as a node is beyond loopback. Absolute paths; checked when the run starts.
struct tls_paths {
  std::filesystem::path cert;
  std::filesystem::path key;
  std::filesystem::path ca;

  bool operator==(const tls_paths&) const = default;
};

/// Where `pkit run` serves remote control (`[pkit] control_listen = "HOST:PORT"`): a
/// numeric address (IPv6 without brackets); port 0 takes any free port (printed at start).
struct control_endpoint {
  std::string host;
  std::uint16_t port = 0;
  source_position where;

  bool operator==(const control_endpoint& o) const { return host == o.host && port == o.port; }
};

/// Settings of `pkit run` itself (`[pkit]`).
struct run_settings {
  std::string name = "pkit";       ///< names the tree: the root group, the socket
  std::filesystem::path log_dir;   ///< absolute; default: <file's dir>/logs
  std::filesystem::path control_socket;  ///< "" : $XDG_RUNTIME_DIR/pkit/NAME.sock (or /run/pkit as root, /tmp/pkit-UID otherwise)
  std::int64_t shutdown_timeout_ms = -1;  ///< whole-tree stop deadline; -1: each child's own
  std::int64_t watchdog_ms = 0;    ///< sd_notify WATCHDOG=1 period when run under systemd; 0: $WATCHDOG_USEC
  std::optional<tls_paths> tls;    ///< the links to nodes over TLS (mutual authentication)
  std::int64_t heartbeat_ms = 1000;     ///< a heartbeat on each node link this often
  std::int64_t node_timeout_ms = 5000;  ///< a node silent this long is lost (node_down)
  /// Remote control (`pkit ctl --host`): where to listen; none: the control socket only.
  std::optional<control_endpoint> control_listen;
  /// The control listener's certificate set (`[pkit] control_tls`), required beyond
  /// loopback: its own certificate (signed by the nodes' CA) and the CA of those who may
  /// control (the controllers' CA). Never [pkit] tls, which trusts the nodes' CA.
  std::optional<tls_paths> control_tls;
};

/// A whole file, loaded and checked.
struct tree_config {
  std::filesystem::path file;      ///< absolute; "<built-in default>" for the default tree
  run_settings settings;
  std::vector<node_address> nodes;  ///< in file order
  group_config root;
};

/// The outcome of loading: the tree, or every problem found (at least one).
struct load_result {
  std::optional<tree_config> tree;
  std::vector<config_error> errors;
  explicit operator bool() const noexcept { return tree.has_value(); }
};

/// Loads and checks `file`: TOML syntax, every key and value, names unique in the whole
/// file, programs found (argv[0] resolved: a relative path with '/' is made absolute
/// against the program's cwd or the file's directory), cwd, user/group, log_dir, and
/// finally actors::check_supervisor_spec on the mapped spec. Every error is returned,
/// sorted by position. Nothing is started. Any thread (reads the environment's PATH and
/// the user database).
load_result load_file(const std::filesystem::path& file);

/// Loads TOML `text` as if read from `file_name` (relative paths resolve against `base_dir`).
/// `placement`: the nodes the top-level programs and groups inherit, as if the text were
/// inside a group placed there (`ctl add --group` into such a group).
load_result load_string(std::string_view text, const std::string& file_name, const std::filesystem::path& base_dir,
                        const std::vector<std::string>& placement = {});

/// The built-in default tree's TOML text (`pkit run` without a file).
std::string_view default_tree_text();

/// The tree as the actor layer's supervisor spec. Programs whose output is `log` get
/// stdout_path/stderr_path "capture" (see pkit/actors/output_capture.hpp); instances are
/// expanded to children NAME.1 ... NAME.N.
actors::supervisor_spec to_supervisor_spec(const tree_config& tree);
actors::child_spec to_child_spec(const program_config& p, std::uint32_t instance = 0);
actors::supervisor_spec to_supervisor_spec(const group_config& g);

/// Every program of the tree (depth first, file order), with the path of groups above it
/// (root excluded): {"backend", "workers"}.
struct program_ref {
  const program_config* program;
  std::vector<std::string> groups;
};
std::vector<program_ref> programs_of(const tree_config& tree);

/// What `pkit check` prints: the tree, one line per group and program, indented.
std::string describe(const tree_config& tree);

/// The difference between a running tree and a newly loaded one (reload): per group (by
/// path), which children were added, removed, changed or kept. A group whose own settings
/// changed is `changed` as a whole (restarted with its children).
struct reload_plan {
  struct change {
    std::vector<std::string> group;  ///< path of the parent group ({} for the root)
    std::string name;                ///< the child's name
    bool is_group = false;
  };
  std::vector<change> added;    ///< in new file order
  std::vector<change> removed;
  std::vector<change> changed;  ///< stopped and started again with the new config
  std::size_t unchanged = 0;   ///< programs kept as they were, at any depth (same pids)
  /// The root's own settings changed, or [pkit] name / control_socket (needs a full
  /// restart). The lists above are filled all the same.
  bool root_changed = false;
  bool empty() const noexcept { return added.empty() && removed.empty() && changed.empty() && !root_changed; }
};
reload_plan diff(const tree_config& running, const tree_config& next);

}  // namespace pkit::tool
