#include <pkit/net/allow_list.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <iterator>
#include <tuple>

namespace pkit::net {

namespace {

namespace fs = std::filesystem;

error refuse(errc code, std::string field, std::string reason) {
  return {make_error_code(code), std::move(field), std::move(reason)};
}

std::string indexed(const char* field, std::size_t i) {
  return std::string{field} + "[" + std::to_string(i) + "]";
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

/// `s` for a message: quoted, bytes outside printable ASCII as \xNN, cut after 200 bytes —
/// the values come from a peer that may be hostile, and messages end up in logs.
std::string printable(std::string_view s) {
  constexpr std::size_t limit = 200;
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (s.size() > limit)
    out += "...";
  return out + "'";
}

/// Absolute, and no empty ("//", trailing '/'), "." or ".." component: the spelling must
/// already be the path, so that what is checked is what the reader sees.
bool is_plain_absolute(std::string_view p) {
  if (p == "/")
    return true;
  if (p.size() < 2 || p.front() != '/' || p.back() == '/')
    return false;
  std::size_t start = 1;
  while (start <= p.size()) {
    std::size_t end = std::min(p.find('/', start), p.size());
    std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..")
      return false;
    start = end + 1;
  }
  return true;
}

/// realpath(3): the path with every link, "." and ".." resolved; nullopt (errno kept)
/// when it does not exist or cannot be searched.
std::optional<fs::path> resolve(const fs::path& p) {
  std::unique_ptr<char, decltype(&::free)> r{::realpath(p.c_str(), nullptr), &::free};
  if (!r)
    return std::nullopt;
  return fs::path{r.get()};
}

/// `p` is below `dir` (or, unless `strictly`, `dir` itself), component by component:
/// /opt/app2 is not in /opt/app.
bool is_within(const fs::path& p, const fs::path& dir, bool strictly) {
  auto [dir_end, p_end] = std::mismatch(dir.begin(), dir.end(), p.begin(), p.end());
  return dir_end == dir.end() && (!strictly || p_end != p.end());
}

bool listed(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

/// Under /proc or /dev: magic links there (/proc/self/cwd, /proc/<pid>/root, /dev/fd/N)
/// name different files in the agent and in the child (which runs after its own chdir).
bool is_magic(std::string_view p) {
  for (std::string_view dir : {"/proc", "/dev"})
    if (p == dir || (p.starts_with(dir) && p[dir.size()] == '/'))
      return true;
  return false;
}

/// A program or cwd path: plainly absolute, not under /proc or /dev, as spelled either one
/// of `exact` or within one of `dirs` (below it for a program, since a directory is no
/// program, or the directory itself for a cwd) — compared as spelled, since the spelling is
/// what the child execs (and what argv[0] tells a multi-call program such as pkill ->
/// pgrep or busybox) — and then existing and its own resolved path (no symbolic link
/// anywhere in it). The list is consulted before the file system, so that a peer learns
/// nothing about paths outside it; what the file system said goes to the error's detail.
std::optional<error> check_path(const std::string& value, std::string field, errc not_allowed,
                                const std::vector<fs::path>& exact,
                                const std::vector<fs::path>& dirs) {
  const bool strictly = not_allowed == errc::spec_program_not_allowed;
  if (!is_plain_absolute(value))
    return refuse(errc::spec_path_not_absolute, std::move(field),
                  printable(value) + " must be absolute, without '.', '..' or empty components");
  if (is_magic(value))
    return refuse(errc::spec_path_not_canonical, std::move(field),
                  printable(value) + ": nothing under /proc or /dev may be named");
  const fs::path spelled{value};
  const bool listed =
    std::find(exact.begin(), exact.end(), spelled) != exact.end() ||
    std::any_of(dirs.begin(), dirs.end(),
                [&](const fs::path& dir) { return is_within(spelled, dir, strictly); });
  const std::string not_here = printable(value) + " is not allowed on this node";
  if (!listed)
    return refuse(not_allowed, std::move(field), not_here);
  auto real = resolve(value);
  if (!real) {
    auto refused = refuse(not_allowed, std::move(field), not_here);
    refused.detail = std::strerror(errno);
    return refused;
  }
  if (real->string() != value) {
    auto refused = refuse(errc::spec_path_not_canonical, std::move(field),
                          printable(value) + " passes through a symbolic link; name the "
                                             "file itself");
    refused.detail = "resolves to " + printable(real->string());
    return refused;
  }
  return std::nullopt;
}

/// Programs that run whatever their arguments say (shells, interpreters, exec and
/// privilege wrappers, multi-call binaries), by file name; a name starting with one of
/// `prefixes` counts too (python3.11, perl5.36).
bool runs_anything(const fs::path& program) {
  static constexpr std::string_view names[] = {
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "env",
    "find", "xargs", "awk", "gawk", "mawk", "sed", "vi", "vim", "ed", "sudo", "su", "doas",
    "runuser", "setpriv", "nice", "nohup", "timeout", "setsid", "stdbuf", "chroot", "unshare",
    "nsenter", "flock", "watch", "script", "ssh", "make", "gdb", "tclsh", "wish", "expect",
    "pkit", "systemd-run", "capsh", "ionice", "taskset", "chrt", "strace", "ltrace",
    "time", "parallel", "at", "batch", "crontab", "socat", "nc", "ncat", "tar", "rsync"};
  static constexpr std::string_view prefixes[] = {"python", "perl", "ruby", "php", "lua",
                                                  "node", "java", "jshell", "guile", "Rscript",
                                                  "osascript", "pwsh", "tcl"};
  const std::string name = program.filename().string();
  for (auto n : names)
    if (name == n)
      return true;
  for (auto p : prefixes)
    if (name.starts_with(p))
      return true;
  return false;
}

/// argv[1..] is one of the program's pinned vectors, when it has any.
std::optional<error> check_pinned(const actors::process_spec& spec, const allow_list& allow) {
  bool has_pin = false;
  for (const auto& pin : allow.pinned) {
    if (pin.program != fs::path{spec.argv[0]})
      continue;
    has_pin = true;
    if (std::equal(spec.argv.begin() + 1, spec.argv.end(), pin.args.begin(), pin.args.end()))
      return std::nullopt;
  }
  if (has_pin)
    return refuse(errc::spec_args_not_allowed, "argv",
                  "this node runs " + printable(spec.argv[0]) + " with fixed arguments only");
  return std::nullopt;
}

/// No NUL, and the caps on argv and env sizes.
std::optional<error> check_sizes(const actors::process_spec& spec, const allow_list& allow) {
  if (spec.name.size() > allow.max_name_bytes)
    return refuse(errc::spec_too_large, "name",
                  std::to_string(spec.name.size()) + " bytes, at most " +
                    std::to_string(allow.max_name_bytes));
  if (has_nul(spec.name))
    return refuse(errc::spec_malformed, "name", "holds a NUL byte");
  // The name keys output_capture and ends up in logs and tails: the rule of a tree file's
  // names, so that no control character, newline or '/' gets there.
  if (spec.name.empty())
    return refuse(errc::spec_malformed, "name", "empty: a remote child needs a name");
  if (spec.name.front() == '.' || spec.name.front() == '-')
    return refuse(errc::spec_malformed, "name",
                  printable(spec.name) + " starts with '.' or '-'");
  for (char c : spec.name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return refuse(errc::spec_malformed, "name",
                    printable(spec.name) + ": only letters, digits, '_', '.' and '-'");
  if (spec.argv.size() > allow.max_args)
    return refuse(errc::spec_too_large, "argv",
                  std::to_string(spec.argv.size()) + " arguments, at most " +
                    std::to_string(allow.max_args));
  std::size_t total = 0;
  for (auto [list, field] : {std::pair{&spec.argv, "argv"}, std::pair{&spec.env, "env"}}) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string& s = (*list)[i];
      if (s.size() > allow.max_arg_bytes)
        return refuse(errc::spec_too_large, indexed(field, i),
                      std::to_string(s.size()) + " bytes, at most " +
                        std::to_string(allow.max_arg_bytes));
      if (has_nul(s))
        return refuse(errc::spec_malformed, indexed(field, i), "holds a NUL byte");
      total += s.size() + 1;
    }
  }
  if (total > allow.max_total_bytes)
    return refuse(errc::spec_too_large, "argv",
                  "argv and env take " + std::to_string(total) + " bytes, at most " +
                    std::to_string(allow.max_total_bytes));
  return std::nullopt;
}

std::optional<error> check_numbers(const actors::process_spec& spec, const allow_list& allow) {
  if (spec.stop_signal <= 0 || spec.stop_signal >= NSIG)
    return refuse(errc::spec_out_of_range, "stop_signal",
                  std::to_string(spec.stop_signal) + " is not a signal number");
  for (auto [value, cap, field] :
       {std::tuple{spec.stop_timeout_ms, allow.max_stop_timeout_ms, "stop_timeout_ms"},
        std::tuple{spec.ready_timeout_ms, allow.max_ready_timeout_ms, "ready_timeout_ms"}})
    if (value < 0 || value > cap)
      return refuse(errc::spec_out_of_range, field,
                    std::to_string(value) + " ms, must be within [0, " + std::to_string(cap) +
                      "] on this node");
  // 0, 1 and 2 are the child's stdio: a readiness pipe there would replace them.
  if (spec.notify_fd != -1 && spec.notify_fd < 3)
    return refuse(errc::spec_out_of_range, "notify_fd",
                  std::to_string(spec.notify_fd) + ", must be -1 or above 2");
  if (spec.notify_fd >= 0 && spec.notify_socket)
    return refuse(errc::spec_malformed, "notify_fd", "combines with no notify_socket");
  return std::nullopt;
}

/// The child leads a process group of its own and is stopped with it: otherwise its
/// descendants outlive a stop (or the controller's loss), and a child in the agent's group
/// would reach the agent itself with kill(0, ...).
std::optional<error> check_group(const actors::process_spec& spec) {
  if (!spec.new_process_group)
    return refuse(errc::spec_process_group_required, "new_process_group",
                  "a remote child must lead a process group of its own");
  if (!spec.kill_group)
    return refuse(errc::spec_process_group_required, "kill_group",
                  "a remote child is stopped with its whole process group");
  return std::nullopt;
}

std::optional<error> check_env(const actors::process_spec& spec, const allow_list& allow) {
  for (std::size_t i = 0; i < spec.env.size(); ++i) {
    const std::string& entry = spec.env[i];
    std::string name = entry.substr(0, entry.find('='));
    if (name.empty())
      return refuse(errc::spec_malformed, indexed("env", i), "no variable name");
    if (!listed(allow.env_names, name))
      return refuse(errc::spec_env_not_allowed, indexed("env", i),
                    printable(name) + " is not allowed on this node");
  }
  return std::nullopt;
}

std::optional<error> check_strings(const actors::process_spec& spec, const allow_list& allow) {
  for (auto [value, field] : {std::pair{&spec.stdout_path, "stdout_path"},
                              std::pair{&spec.stderr_path, "stderr_path"}})
    if (!value->empty() && *value != "null" && *value != "capture")
      return refuse(errc::spec_output_refused, field,
                    printable(*value) + ": only \"\", \"null\" or \"capture\" (no files)");
  // No file of the node's as stdin (a remote peer would read it through the child); the
  // node gives /dev/null whatever was asked (remote_child_spec).
  if (!spec.stdin_path.empty() && spec.stdin_path != "null")
    return refuse(errc::spec_output_refused, "stdin_path",
                  printable(spec.stdin_path) + ": only \"\" or \"null\" (no files)");
  for (auto [value, list, field] : {std::tuple{&spec.user, &allow.users, "user"},
                                    std::tuple{&spec.group, &allow.groups, "group"}}) {
    if (has_nul(*value))
      return refuse(errc::spec_malformed, field, "holds a NUL byte");
    if (!value->empty() && !listed(*list, *value))
      return refuse(errc::spec_credentials_not_allowed, field,
                    printable(*value) + " is not allowed on this node");
  }
  if (!spec.rlimits.empty() && !allow.rlimits_allowed)
    return refuse(errc::spec_rlimits_refused, "rlimits",
                  "resource limits are not allowed on this node");
  // Each resource at most once, so at most RLIM_NLIMITS entries; ids CAF's peer chose.
  if (spec.rlimits.size() > RLIM_NLIMITS)
    return refuse(errc::spec_too_large, "rlimits",
                  std::to_string(spec.rlimits.size()) + " entries, at most " +
                    std::to_string(RLIM_NLIMITS));
  for (std::size_t i = 0; i < spec.rlimits.size(); ++i) {
    const auto& r = spec.rlimits[i];
    if (r.resource < 0 || r.resource >= RLIM_NLIMITS)
      return refuse(errc::spec_out_of_range, indexed("rlimits", i),
                    std::to_string(r.resource) + " is not a resource number");
    if (r.soft > r.hard)
      return refuse(errc::spec_out_of_range, indexed("rlimits", i), "soft limit above hard");
    for (std::size_t j = 0; j < i; ++j)
      if (spec.rlimits[j].resource == r.resource)
        return refuse(errc::spec_malformed, indexed("rlimits", i), "resource given twice");
  }
  return std::nullopt;
}

bool is_pinned(const allow_list& allow, const fs::path& program) {
  return std::any_of(allow.pinned.begin(), allow.pinned.end(),
                     [&](const fixed_args& pin) { return pin.program == program; });
}

/// check()'s rule on programs that run whatever their arguments say: refused unless
/// pinned (programs) or interpreters_allowed; a directory holding one (at any depth, links
/// not followed) refused unless interpreters_allowed. Pinned programs must be allowed.
std::optional<error> check_runs_anything(const allow_list& allow) {
  auto bad = [](std::string field, std::string why) {
    return refuse(errc::allow_list_invalid, std::move(field), std::move(why));
  };
  const std::string why = " runs whatever its arguments say: allowing it is remote code "
                          "execution; pin its arguments (pinned) or set interpreters_allowed";
  for (std::size_t i = 0; i < allow.pinned.size(); ++i)
    if (std::find(allow.programs.begin(), allow.programs.end(), allow.pinned[i].program) ==
        allow.programs.end())
      return bad(indexed("pinned", i), printable(allow.pinned[i].program.string()) +
                                         " is not one of programs");
  if (allow.interpreters_allowed)
    return std::nullopt;
  for (std::size_t i = 0; i < allow.programs.size(); ++i)
    if (runs_anything(allow.programs[i]) && !is_pinned(allow, allow.programs[i]))
      return bad(indexed("programs", i), printable(allow.programs[i].string()) + why);
  for (std::size_t i = 0; i < allow.program_dirs.size(); ++i) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it{
           allow.program_dirs[i], fs::directory_options::skip_permission_denied, ec},
         end;
         !ec && it != end; it.increment(ec))
      if (!it->is_directory(ec) && runs_anything(it->path()))
        return bad(indexed("program_dirs", i),
                   "holds " + printable(it->path().string()) + ", which" + why);
  }
  return std::nullopt;
}

}  // namespace

std::optional<error> allow_list::check() const {
  auto bad = [](std::string field, std::string why) {
    return refuse(errc::allow_list_invalid, std::move(field), std::move(why));
  };
  for (auto [list, name] : {std::pair{&programs, "programs"},
                            std::pair{&program_dirs, "program_dirs"},
                            std::pair{&cwd_dirs, "cwd_dirs"}}) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string p = (*list)[i].string();
      if (!is_plain_absolute(p))
        return bad(indexed(name, i), printable(p) + " must be absolute, without '.', '..' or "
                                                    "empty components");
      auto real = resolve(p);
      if (!real)
        return bad(indexed(name, i), printable(p) + ": " + std::strerror(errno));
      // Specs are matched as spelled and must spell their own resolved path: an entry
      // through a link could never match (and would hide where the link leads).
      if (real->string() != p)
        return bad(indexed(name, i), printable(p) + " resolves to " +
                                       printable(real->string()) + "; list that path");
      if (is_magic(p))
        return bad(indexed(name, i), printable(p) + ": nothing under /proc or /dev");
    }
  }
  if (auto e = check_runs_anything(*this))
    return e;
  for (auto [cap, name] : {std::pair{max_args, "max_args"},
                           std::pair{max_arg_bytes, "max_arg_bytes"},
                           std::pair{max_total_bytes, "max_total_bytes"},
                           std::pair{max_name_bytes, "max_name_bytes"}})
    if (cap == 0)
      return bad(name, "must be positive");
  for (std::size_t i = 0; i < base_env.size(); ++i) {
    const auto eq = base_env[i].find('=');
    if (eq == 0 || eq == std::string::npos || has_nul(base_env[i]))
      return bad(indexed("base_env", i), printable(base_env[i]) + ": needs NAME=value");
  }
  for (auto [value, name] : {std::pair{&default_user, "default_user"},
                             std::pair{&default_group, "default_group"}})
    if (has_nul(*value))
      return bad(name, "holds a NUL byte");
  if (max_stop_timeout_ms < 0 || max_ready_timeout_ms < 0)
    return bad(max_stop_timeout_ms < 0 ? "max_stop_timeout_ms" : "max_ready_timeout_ms",
               "must not be negative");
  return std::nullopt;
}

std::optional<error> validate(const actors::process_spec& spec, const allow_list& allow) {
  return validate(spec, allow, static_cast<unsigned>(::geteuid()));
}

actors::process_spec remote_child_spec(actors::process_spec spec, const allow_list& allow) {
  if (spec.user.empty())
    spec.user = allow.default_user;
  if (spec.group.empty())
    spec.group = allow.default_group;
  // Never the node's own stdin: on a terminal a remote child could read what its
  // operator types (or be stopped by SIGTTIN), elsewhere share what the node reads.
  spec.stdin_path = "null";
  spec.clear_env = true;
  std::vector<std::string> env = allow.base_env;
  env.insert(env.end(), std::make_move_iterator(spec.env.begin()),
             std::make_move_iterator(spec.env.end()));
  spec.env = std::move(env);
  return spec;
}

std::optional<error> validate(const actors::process_spec& spec, const allow_list& allow,
                              unsigned agent_euid) {
  if (!spec.target.empty())
    return refuse(errc::spec_target_refused, "target", printable(spec.target));
  if (!spec.args.empty())
    return refuse(errc::spec_target_refused, "args", "arguments of a fork-server target");
  if (spec.argv.empty())
    return refuse(errc::spec_no_program, "argv", "empty");
  if (auto e = check_sizes(spec, allow))
    return e;
  if (auto e = check_strings(spec, allow))
    return e;
  if (spec.user.empty() && allow.default_user.empty() && agent_euid == 0 &&
      !allow.agent_credentials_allowed)
    return refuse(errc::spec_credentials_not_allowed, "user",
                  "this node runs as root and has no default user: a remote child needs a "
                  "listed user");
  if (auto e = check_numbers(spec, allow))
    return e;
  if (auto e = check_group(spec))
    return e;
  if (auto e = check_env(spec, allow))
    return e;
  if (auto e = check_path(spec.argv[0], "argv[0]", errc::spec_program_not_allowed,
                          allow.programs, allow.program_dirs))
    return e;
  // check()'s rule, again at each spawn: a directory may hold an interpreter now that it
  // did not hold when the list was checked (an upgrade, a program writing there).
  if (!allow.interpreters_allowed && runs_anything(spec.argv[0]) && !is_pinned(allow, spec.argv[0]))
    return refuse(errc::spec_program_not_allowed, "argv[0]",
                  printable(spec.argv[0]) + " runs whatever its arguments say, and this node does "
                                            "not allow interpreters");
  if (auto e = check_pinned(spec, allow))
    return e;
  if (has_nul(spec.cwd))
    return refuse(errc::spec_malformed, "cwd", "holds a NUL byte");
  if (!spec.cwd.empty())
    return check_path(spec.cwd, "cwd", errc::spec_cwd_not_allowed, {}, allow.cwd_dirs);
  return std::nullopt;
}

}  // namespace pkit::net
