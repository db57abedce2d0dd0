// One [[program]] table of the tree file: its keys, their values, and the checks that
// need the table's positions (the system checks are in config_checks.cpp).

#include "config_reader.hpp"

#include <pkit/tool/signals.hpp>

#include <sys/resource.h>

#include <unistd.h>

#include <csignal>
#include <limits>

namespace pkit::tool::detail {
namespace {

using actors::rlimit_spec;
using actors::restart_type;

void read_command(table_reader& r, program_config& p) {
  const toml::node* command = r.node("command");
  const toml::node* shell = r.node("shell");
  if (command != nullptr && shell != nullptr) {
    r.error("shell", "give either command (an argv list) or shell (a command line), not both");
    return;
  }
  if (shell != nullptr) {
    if (auto s = r.string("shell")) {
      if (s->empty()) r.error("shell", "an empty command line");
      else {
        p.argv = {"/bin/sh", "-c", *s};
        p.shell = true;
      }
    }
    return;
  }
  if (command == nullptr) {
    r.error("command", "a program needs command (an argv list) or shell (a command line for /bin/sh -c)");
    return;
  }
  const toml::array* a = command->as_array();
  if (a == nullptr) {
    if (command->is_string())
      r.error("command", "expected an array of strings (command = [\"prog\", \"arg\"]), got a string; for a "
                         "command line, write shell = \"...\"");
    else
      r.type_error("command", *command, "an array of strings");
    return;
  }
  if (a->empty()) {
    r.error("command", "an empty command: give at least the program");
    return;
  }
  std::vector<std::string> argv;
  for (std::size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    const std::string path = r.path_of("command") + "[" + std::to_string(i) + "]";
    if (!e.is_string()) {
      r.sink().add(position_of(e.source()), path, "expected a string, got " + type_name(e.type()));
      return;
    }
    const std::string& s = e.as_string()->get();
    if (s.find('\0') != std::string::npos || (i == 0 && s.empty())) {
      r.sink().add(position_of(e.source()), path, s.empty() ? "an empty program name" : "contains a NUL character");
      return;
    }
    argv.push_back(s);
  }
  p.argv = std::move(argv);
}

void read_environment(table_reader& r, program_config& p) {
  const toml::table* t = r.subtable("environment");
  if (t == nullptr) return;
  table_reader er(*t, r.path_of("environment"), r.sink());
  for (auto&& [k, v] : *t) {
    const std::string key(k.str());
    if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos)
      r.sink().add(position_of(k.source()), er.path_of(key), "not a variable name");
    else if (auto value = er.string(key))
      p.environment[key] = *value;
  }
  // Every key was asked for: nothing unknown to report (er.finish() not needed).
}

output_spec read_output(table_reader& r, std::string_view key, const std::string& file, const load_context& ctx) {
  output_spec out;
  const toml::node* n = r.node(key);
  if (n == nullptr) return out;
  if (n->is_string()) {
    if (auto m = r.choice<output_spec::kind>(key, {{"inherit", output_spec::kind::inherit},
                                                  {"null", output_spec::kind::null},
                                                  {"log", output_spec::kind::log}}))
      out.mode = *m;
    if (out.mode == output_spec::kind::log) out.path = ctx.settings.log_dir / file;
    return out;
  }
  if (!n->is_table()) {
    r.type_error(key, *n, "\"inherit\", \"null\", \"log\" or a table { file, max_size, keep }");
    return out;
  }
  const toml::table* t = r.subtable(key);
  table_reader tr(*t, r.path_of(key), r.sink());
  out.mode = output_spec::kind::log;
  out.path = ctx.settings.log_dir / file;
  if (auto f = tr.string("file")) {
    if (f->empty()) tr.error("file", "an empty file name");
    else out.path = resolve_path(ctx.settings.log_dir, *f);  // an absolute *f replaces log_dir
  }
  if (auto s = tr.size("max_size")) {
    if (*s < 1024) tr.error("max_size", "must be at least 1KiB");
    else out.max_bytes = *s;
  }
  if (auto k = tr.integer("keep", 0, 1000)) out.keep = static_cast<std::uint32_t>(*k);
  tr.finish();
  return out;
}

void read_readiness(table_reader& r, program_config& p) {
  const toml::node* n = r.node("readiness");
  if (n != nullptr && n->is_string()) {
    if (auto m = r.choice<readiness_spec::kind>("readiness", {{"none", readiness_spec::kind::none},
                                                             {"notify", readiness_spec::kind::notify_socket}}))
      p.readiness.mode = *m;
  } else if (n != nullptr && !n->is_table()) {
    r.type_error("readiness", *n, "\"none\", \"notify\" or { fd = N }");
  } else if (const toml::table* t = n != nullptr ? r.subtable("readiness") : nullptr) {
    table_reader tr(*t, r.path_of("readiness"), r.sink());
    if (auto fd = tr.integer("fd", std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max())) {
      if (*fd < 3 || *fd > 1023)
        tr.error("fd", "must be between 3 and 1023 (0, 1 and 2 are the standard streams)");
      else {
        p.readiness.mode = readiness_spec::kind::fd;
        p.readiness.fd = static_cast<int>(*fd);
      }
    } else if (!t->contains("fd")) {
      tr.error("fd", "readiness = { fd = N } needs the descriptor the program writes to");
    }
    tr.finish();
  }
  if (auto d = r.duration("ready_timeout")) {
    if (*d == 0) r.error("ready_timeout", "must be longer than 0s");
    else p.readiness.timeout_ms = *d;
  }
}

const std::vector<std::pair<std::string, int>>& limit_names() {
  static const std::vector<std::pair<std::string, int>> names = {
      {"as", RLIMIT_AS},       {"core", RLIMIT_CORE},           {"cpu", RLIMIT_CPU},
      {"data", RLIMIT_DATA},   {"fsize", RLIMIT_FSIZE},         {"locks", RLIMIT_LOCKS},
      {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
      {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},       {"rss", RLIMIT_RSS},
      {"rtprio", RLIMIT_RTPRIO}, {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
      {"stack", RLIMIT_STACK}};
  return names;
}

// One limit value: an integer, "unlimited", or a size string.
std::optional<std::uint64_t> limit_value(const toml::node& n, const std::string& path, error_sink& sink) {
  if (n.is_string() && n.as_string()->get() == "unlimited") return rlimit_spec::unlimited;
  if (n.is_integer() && n.as_integer()->get() >= 0) return static_cast<std::uint64_t>(n.as_integer()->get());
  if (n.is_string()) {
    auto v = parse_size(n.as_string()->get());
    if (auto* s = std::get_if<std::uint64_t>(&v)) return *s;
    sink.add(position_of(n.source()), path, std::get<std::string>(v) + ", nor \"unlimited\"");
    return std::nullopt;
  }
  sink.add(position_of(n.source()), path,
           n.is_integer() ? "must not be negative"
                          : "expected an integer, \"unlimited\" or [soft, hard], got " + type_name(n.type()));
  return std::nullopt;
}

void read_limits(table_reader& r, program_config& p) {
  const toml::table* t = r.subtable("limits");
  if (t == nullptr) return;
  table_reader lr(*t, r.path_of("limits"), r.sink());
  for (const auto& [key, resource] : limit_names()) {
    const toml::node* n = lr.node(key);
    if (n == nullptr) continue;
    rlimit_spec l{resource, rlimit_spec::unlimited, rlimit_spec::unlimited};
    const std::string path = lr.path_of(key);
    if (const toml::array* a = n->as_array()) {
      if (a->size() != 2) {
        lr.error(key, "[soft, hard] has two values, not " + std::to_string(a->size()));
        continue;
      }
      auto soft = limit_value(*a->get(0), path + "[0]", r.sink());
      auto hard = limit_value(*a->get(1), path + "[1]", r.sink());
      if (!soft || !hard) continue;
      if (*soft > *hard) {
        lr.error(key, "the soft limit is above the hard limit");
        continue;
      }
      l.soft = *soft;
      l.hard = *hard;
    } else if (auto v = limit_value(*n, path, r.sink())) {
      l.soft = l.hard = *v;
    } else {
      continue;
    }
    p.limits.push_back(l);
  }
  lr.finish();
}

void read_stop(table_reader& r, program_config& p) {
  if (const toml::node* n = r.node("stop_signal")) {
    if (n->is_integer()) {
      if (auto s = r.integer("stop_signal", 1, NSIG - 1)) p.stop_signal = static_cast<std::int32_t>(*s);
    } else if (auto s = r.string("stop_signal")) {
      if (auto sig = parse_signal(*s)) p.stop_signal = *sig;
      else r.error("stop_signal", "unknown signal \"" + *s + "\" (write \"TERM\", \"SIGINT\", \"RTMIN+1\" or a number 1-64)");
    }
  }
  if (auto d = r.duration("stop_timeout", true)) p.stop_timeout_ms = *d;
  if (auto b = r.boolean("kill_group")) p.kill_group = *b;
}

void read_name(table_reader& r, program_config& p, const std::string& path, load_context& ctx) {
  auto name = r.string("name");
  if (!name) {
    if (!r.table().contains("name")) r.error("name", "every program needs a name");
    return;
  }
  if (auto why = name_problem(*name); !why.empty()) {
    r.error("name", why);
    return;
  }
  p.name = *name;
  const source_position at = position_of(r.table().get("name")->source());
  ctx.claim_name(p.name, {path, p.where, ""}, at, r.path_of("name"));
}

// What exec would refuse with E2BIG, refused here with the key that is too long: one
// string above the kernel's MAX_ARG_STRLEN, or argv and environment above ARG_MAX.
void check_exec_sizes(table_reader& r, const program_config& p) {
  constexpr std::size_t max_arg_strlen = 32 * 4096;  // Linux: 32 pages
  std::size_t total = 0;
  for (std::size_t i = 0; i < p.argv.size(); ++i) {
    total += p.argv[i].size() + 1 + sizeof(char*);
    if (p.argv[i].size() >= max_arg_strlen)
      r.error(p.shell ? "shell" : "command", (p.shell ? std::string("the command line") : "argument " + std::to_string(i)) +
                                                 " is longer than exec allows (128KiB)");
  }
  for (const auto& [k, v] : p.environment) {
    total += k.size() + v.size() + 2 + sizeof(char*);
    if (k.size() + v.size() + 1 >= max_arg_strlen)
      r.error("environment", "variable " + k + " is longer than exec allows (128KiB)");
  }
  const long arg_max = ::sysconf(_SC_ARG_MAX);
  // Half of ARG_MAX: the environment pkit passes on (unless clear_env) needs room too.
  if (arg_max > 0 && total > static_cast<std::size_t>(arg_max) / 2)
    r.error(p.shell ? "shell" : "command", "the command and environment take " + std::to_string(total) +
                                                " bytes, more than exec allows here (" + std::to_string(arg_max / 2) + ")");
}

}  // namespace

std::optional<program_config> read_program(const toml::table& t, const std::string& path, load_context& ctx) {
  table_reader r(t, path, ctx.sink);
  program_config p;
  p.where = r.where();
  read_name(r, p, path, ctx);
  const bool placed = r.table().contains("node") || r.table().contains("nodes");
  if (auto nodes = read_placement(r, ctx)) p.nodes = std::move(*nodes);
  else if (!placed) p.nodes = ctx.placement;
  read_command(r, p);
  read_environment(r, p);
  if (auto b = r.boolean("clear_env")) p.clear_env = *b;
  if (auto c = r.string("cwd")) {
    if (c->empty()) r.error("cwd", "an empty directory");
    else if (placed || !p.nodes.empty()) p.cwd = *c;  // the node's directory, checked there
    else p.cwd = resolve_path(ctx.base_dir, *c).string();
  }
  if (auto u = r.string("user")) p.user = *u;
  if (auto g = r.string("group")) p.group = *g;
  p.stdout_spec = read_output(r, "stdout", p.name + ".out.log", ctx);
  p.stderr_spec = read_output(r, "stderr", p.name + ".err.log", ctx);
  if (auto in = r.choice<program_config::input>("stdin", {{"null", program_config::input::null},
                                                        {"inherit", program_config::input::inherit}}))
    p.stdin_mode = *in;
  read_stop(r, p);
  if (auto rt = r.choice<restart_type>("restart", {{"permanent", restart_type::permanent},
                                                   {"transient", restart_type::transient},
                                                   {"temporary", restart_type::temporary}}))
    p.restart = *rt;
  if (auto s = r.boolean("significant")) {
    if (*s && p.restart == restart_type::permanent)
      r.error("significant", "a significant program must be restart = \"transient\" or \"temporary\" (OTP's rule)");
    else p.significant = *s;
  }
  if (auto n = r.integer("instances", 1, 10000)) p.instances = static_cast<std::uint32_t>(*n);
  read_readiness(r, p);
  read_limits(r, p);
  r.finish();
  const bool within_cap = ctx.children <= load_context::max_children;
  ctx.children += p.instances;
  if (within_cap && ctx.children > load_context::max_children)
    r.error("instances", std::to_string(p.instances) + " more children make " + std::to_string(ctx.children) +
                             " in the file; at most " + std::to_string(load_context::max_children) + " in all");
  // Past the cap, instance names are not claimed: that map is what cost the memory.
  if (p.instances > 1 && !p.name.empty() && ctx.children <= load_context::max_children) {
    const source_position at = position_of(r.table().get("instances")->source());
    for (std::uint32_t i = 1; i <= p.instances; ++i)
      ctx.claim_name(p.instance_name(i), {path, p.where, p.name}, at, r.path_of("instances"));
  }
  check_exec_sizes(r, p);
  if (placed || !p.nodes.empty()) {
    // It runs elsewhere: its node checks it against its own files and users.
    if (!p.nodes.empty()) check_remote_program(p, r);
    return p;
  }
  if (!p.argv.empty()) check_command(p, r, ctx);
  check_cwd(p, r);
  check_credentials(p, r);
  return p;
}

}  // namespace pkit::tool::detail
