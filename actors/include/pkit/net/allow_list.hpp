#pragma once

/// \file
/// `pkit::net::allow_list` and `validate`: what a node agent lets a remote controller run.
/// A node that runs anything for anyone is remote code execution (issue 11 §1), and every
/// peer the agent talks to may be hostile (ISSUE11_DESIGN §4): each `process_spec` that
/// arrives over the network is checked here before anything is spawned.
///
/// Pure apart from the file system. The node agent spawns remote_child_spec(spec) of a
/// validated spec, never the spec as received. Paths are matched as the peer spells them, and the
/// spelling must be the file itself: argv[0] and cwd must equal their realpath(3) (no
/// symbolic link anywhere in them, nothing under /proc or /dev), because the child execs
/// the spelling, after its own chdir, and multi-call programs (pkill -> pgrep, busybox)
/// act on argv[0]. A hard link cannot be told from the file: never allow a directory
/// holding hard links to programs that must not run. What is checked is the file system
/// at validation time: the allowed programs and directories (and every directory above
/// them) must not be writable by anyone the node does not trust, or a file could be
/// swapped between the check and the exec (or before a later restart).

#include <pkit/actors/messages.hpp>
#include <pkit/net/error.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pkit::net {

/// A program that may run only with fixed arguments: argv[1..] must equal `args` exactly.
struct fixed_args {
  std::filesystem::path program;
  std::vector<std::string> args;
};

/// The node's rules for remote specs.
///
/// READ THIS BEFORE ALLOWING A PROGRAM: the arguments are the peer's. Allowing a shell,
/// env, find, xargs, an interpreter (python3, perl, node, ...), a privilege or exec
/// wrapper (sudo, nice, timeout, setsid, ...), busybox, pkit itself — or a directory
/// holding any of them, such as /usr/bin — lets a peer run anything: remote code
/// execution. check() refuses those (by file name: a copy or hard link under another
/// name is not caught) unless each is pinned (fixed arguments) or interpreters_allowed
/// says the node accepts that risk.
///
/// Empty lists allow nothing of their kind (beyond the defaults stated per member). A
/// plain value: build it once (from the node's file) and share it read-only between
/// threads.
struct allow_list {
  /// Programs that may be run, by absolute path, compared as spelled (each entry must be
  /// its own resolved path: check() refuses /bin/true where /bin links to usr/bin).
  std::vector<std::filesystem::path> programs;
  /// Directories whose programs (at any depth) may be run; each its own resolved path.
  std::vector<std::filesystem::path> program_dirs;
  /// Programs restricted to fixed argument vectors: a spec running such a program must
  /// carry one of its entries' args exactly (spec_args_not_allowed otherwise). Programs
  /// without an entry take any arguments.
  std::vector<fixed_args> pinned;
  /// Lets check() accept programs that run whatever their arguments say (see above)
  /// without fixed arguments: an explicit opt-in to remote code execution by design.
  bool interpreters_allowed = false;
  /// Directories a spec's cwd may be in (at any depth). An empty cwd (the agent's own) is
  /// always allowed.
  std::vector<std::filesystem::path> cwd_dirs;
  /// `user` / `group` values a spec may carry, compared as written ("app" does not allow
  /// "1000"). An empty user means default_user (below), or else the agent's own
  /// credentials, which are refused when the agent runs as root unless
  /// agent_credentials_allowed: a root agent must not run remote children as root by
  /// default.
  std::vector<std::string> users;
  std::vector<std::string> groups;
  /// What remote_child_spec() puts in an empty user / group: the node's own choice, not
  /// checked against users / groups.
  std::string default_user;
  std::string default_group;
  /// Whether an empty user with no default_user may run with a root agent's credentials.
  bool agent_credentials_allowed = false;
  /// Environment variable names a spec may set or remove (LD_PRELOAD only if listed).
  std::vector<std::string> env_names;
  /// The environment every remote child starts from ("NAME=value" entries): remote
  /// children never inherit the agent's (which may hold secrets); remote_child_spec()
  /// sets clear_env and puts these before the spec's own entries.
  std::vector<std::string> base_env = {"PATH=/usr/local/bin:/usr/bin:/bin"};
  /// Whether a spec may carry resource limits (a privileged agent could raise hard limits).
  bool rlimits_allowed = false;
  /// Caps: argv entries, bytes of one argv or env entry, bytes of argv and env together
  /// (each entry counted with its NUL), bytes of the name.
  std::size_t max_args = 256;
  std::size_t max_arg_bytes = 32 * 1024;
  std::size_t max_total_bytes = 128 * 1024;
  std::size_t max_name_bytes = 64;
  /// Caps on the spec's stop and ready timeouts. "Never" (-1) is refused for both: the
  /// agent must be able to stop every child it runs, in bounded time, when its controller
  /// is lost (issue 11 §2), and a child that is never ready would be waited for forever.
  std::int64_t max_stop_timeout_ms = 60'000;
  std::int64_t max_ready_timeout_ms = 600'000;

  /// The list's own sanity, for the node to run once at start: every path entry absolute
  /// (as validate() requires of specs), existing and its own resolved path, every cap
  /// positive; no program (or program in a directory) that runs whatever its arguments
  /// say, by file name (sh, bash, env, find, python*, perl, ...), unless pinned or
  /// interpreters_allowed; pinned entries are listed programs. Returns allow_list_invalid
  /// naming the entry ("programs[2]", "program_dirs[0]", "max_args"); nullopt when usable.
  /// Reads the file system (scans program_dirs).
  std::optional<error> check() const;
};

/// Checks `spec` against `allow`. Returns the first violation as an error whose subject
/// names the field ("argv[0]", "argv[3]", "target", "args", "env[1]", "cwd", "user",
/// "group", "stdin_path", "stdout_path", "stderr_path", "rlimits", "name", "stop_signal",
/// "stop_timeout_ms", "ready_timeout_ms", "notify_fd", "new_process_group", "kill_group")
/// and whose reason says why; nullopt when the spec may run. The rules: argv non-empty, no
/// fork-server target or args; new_process_group and kill_group both true; a name of
/// letters, digits, '_', '.' and '-' (not starting with '.' or '-'), non-empty, within
/// max_name_bytes (the agent must still prefix it: see remote_child_spec); no NUL
/// anywhere; the caps; stop_signal a signal, stop and ready timeouts within [0, cap],
/// notify_fd -1 or above 2 and not with notify_socket; argv[0] and cwd absolute without
/// ".", ".." or empty components, not under /proc or /dev, as spelled a listed program /
/// inside an allowed directory, and only then existing and equal to their realpath
/// (spec_path_not_canonical); stdout and stderr only "", "null" or "capture", stdin only
/// "" or "null" (spec_output_refused: no file of the node's crosses); user, group
/// and env names listed; argv[1..] one of the program's pinned vectors if it has any
/// (spec_args_not_allowed, "argv"); rlimits only if allowed, each a known resource, once, soft <= hard.
/// What the file system said (errno text, a link's target) is in the error's `detail`,
/// never in what error::peer_message() gives a remote peer; paths outside the lists are
/// never looked up. Thread-safe; reads the file system (realpath), nothing else.
std::optional<error> validate(const pkit::actors::process_spec& spec, const allow_list& allow);

/// validate() as if the agent ran with effective uid `agent_euid` (validate() passes
/// geteuid()): with 0, an empty user without allow.default_user is refused ("user",
/// spec_credentials_not_allowed) unless allow.agent_credentials_allowed.
std::optional<error> validate(const pkit::actors::process_spec& spec, const allow_list& allow,
                              unsigned agent_euid);

/// The spec the agent spawns for a validated remote `spec`: default_user / default_group
/// in an empty user / group, stdin /dev/null ("null": never the agent's own), clear_env set, and env = allow.base_env followed by the
/// spec's entries (so the child never sees the agent's environment). The agent must also
/// give the child a name of its own (e.g. prefixed with the controller's), since the name
/// keys output_capture: a remote child must not land in a local program's log. Pure.
pkit::actors::process_spec remote_child_spec(pkit::actors::process_spec spec,
                                             const allow_list& allow);

}  // namespace pkit::net
