// Checks of a program against the system it will run on: its program file, working
// directory, credentials and log directory — so that a file naming a missing program is
// refused before anything starts, not discovered at the first exec.

#include "config_reader.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace pkit::tool::detail {
namespace {

// "" when `file` is a regular executable file, else why not.
std::string executable_problem(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return "'" + file.string() + "': " + std::strerror(errno);
  if (S_ISDIR(st.st_mode)) return "'" + file.string() + "' is a directory";
  if (!S_ISREG(st.st_mode)) return "'" + file.string() + "' is not a regular file";
  if (::access(file.c_str(), X_OK) != 0) return "'" + file.string() + "' is not executable";
  return {};
}

bool is_number(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The uid of `user` (a name or a number); nullopt with `why` set when there is none.
std::optional<uid_t> uid_of(const std::string& user, std::string& why) {
  if (is_number(user)) return static_cast<uid_t>(std::stoul(user));
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  const int rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (found == nullptr) {
    why = rc == 0 ? "no user '" + user + "' on this system" : "cannot look up user '" + user + "': " + std::strerror(rc);
    return std::nullopt;
  }
  return pw.pw_uid;
}

std::optional<gid_t> gid_of(const std::string& group, std::string& why) {
  if (is_number(group)) return static_cast<gid_t>(std::stoul(group));
  std::vector<char> buf(65536);
  struct group gr {};
  struct group* found = nullptr;
  const int rc = ::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &found);
  if (found == nullptr) {
    why = rc == 0 ? "no group '" + group + "' on this system" : "cannot look up group '" + group + "': " + std::strerror(rc);
    return std::nullopt;
  }
  return gr.gr_gid;
}

bool in_our_groups(gid_t gid) {
  if (gid == ::getegid()) return true;
  const int n = ::getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  const int got = ::getgroups(n, groups.data());
  return got > 0 && std::find(groups.begin(), groups.begin() + got, gid) != groups.begin() + got;
}

bool uses_log(const group_config& g) {
  return std::any_of(g.children.begin(), g.children.end(), [](const child_config& c) {
    if (c.is_group()) return uses_log(c.group.front());
    return c.program->stdout_spec.mode == output_spec::kind::log ||
           c.program->stderr_spec.mode == output_spec::kind::log;
  });
}

}  // namespace

void check_command(program_config& p, table_reader& r, const load_context& ctx) {
  const bool shell = p.shell;
  const std::string key = shell ? "shell" : "command";
  const toml::node* n = r.table().get(key);
  const toml::node* at = shell ? n : n->as_array()->get(0);
  const std::string path = shell ? r.path_of("shell") : r.path_of("command") + "[0]";
  auto fail = [&](const std::string& why) { r.sink().add(position_of(at->source()), path, why); };
  const std::string& program = p.argv.front();
  if (program.find('/') != std::string::npos) {
    // A relative path is the program's working directory's (as exec would see it),
    // which itself defaults to the file's directory here: made absolute, so that the
    // daemon's own working directory never matters.
    std::filesystem::path file(program);
    if (file.is_relative()) file = (p.cwd.empty() ? ctx.base_dir : std::filesystem::path(p.cwd)) / file;
    file = file.lexically_normal();
    if (auto why = executable_problem(file); !why.empty()) return fail("cannot run the program: " + why);
    p.argv.front() = file.string();
    return;
  }
  auto env = p.environment.find("PATH");
  const char* ours = std::getenv("PATH");
  const std::string search = env != p.environment.end() ? env->second : ours != nullptr ? ours : "/usr/local/bin:/usr/bin:/bin";
  std::size_t begin = 0;
  while (begin <= search.size()) {
    std::size_t end = search.find(':', begin);
    if (end == std::string::npos) end = search.size();
    const std::string dir = end == begin ? "." : search.substr(begin, end - begin);
    if (executable_problem(std::filesystem::path(dir) / program).empty()) return;
    begin = end + 1;
  }
  fail("program '" + program + "' is not found on " + (env != p.environment.end() ? "the program's" : "pkit's") +
       " PATH (" + search + ")");
}

void check_cwd(const program_config& p, table_reader& r) {
  if (p.cwd.empty()) return;
  std::error_code ec;
  const auto st = std::filesystem::status(p.cwd, ec);
  if (!std::filesystem::exists(st)) r.error("cwd", "directory '" + p.cwd + "' does not exist");
  else if (!std::filesystem::is_directory(st)) r.error("cwd", "'" + p.cwd + "' is not a directory");
}

void check_credentials(const program_config& p, table_reader& r) {
  const bool root = ::geteuid() == 0;
  if (!p.user.empty()) {
    std::string why;
    if (auto uid = uid_of(p.user, why); !uid) r.error("user", why);
    else if (!root && *uid != ::geteuid())
      r.error("user", "running as user '" + p.user + "' needs root (pkit runs as uid " + std::to_string(::geteuid()) + ")");
  }
  if (!p.group.empty()) {
    std::string why;
    if (auto gid = gid_of(p.group, why); !gid) r.error("group", why);
    else if (!root && !in_our_groups(*gid))
      r.error("group", "running with group '" + p.group + "' needs root (pkit is not in that group)");
  }
}

void check_log_dir(const tree_config& tree, const toml::table& root, error_sink& sink) {
  if (!uses_log(tree.root)) return;
  // pkit run creates the directory (and missing parents): the nearest existing ancestor
  // must be a directory it can write to.
  std::filesystem::path dir = tree.settings.log_dir;
  std::error_code ec;
  while (!std::filesystem::exists(dir, ec) && dir.has_parent_path() && dir != dir.parent_path()) dir = dir.parent_path();
  std::string why;
  if (!std::filesystem::is_directory(dir, ec)) why = "'" + dir.string() + "' is not a directory";
  else if (::access(dir.c_str(), W_OK | X_OK) != 0) why = "'" + dir.string() + "' is not writable";
  if (why.empty()) return;
  const toml::node* n = root.at_path("pkit.log_dir").node();
  sink.add(n != nullptr ? position_of(n->source()) : source_position{}, "pkit.log_dir",
           "cannot create the log directory '" + tree.settings.log_dir.string() + "': " + why);
}

}  // namespace pkit::tool::detail
