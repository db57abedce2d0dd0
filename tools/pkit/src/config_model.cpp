// The tree model's plain operations: rendering an error, comparing configs (reload's
// diff needs "the same program"), walking the programs.

#include <pkit/tool/config.hpp>

#include <tuple>

namespace pkit::tool {
namespace {

auto tie_output(const output_spec& o) { return std::tie(o.mode, o.path, o.max_bytes, o.keep); }
auto tie_readiness(const readiness_spec& r) { return std::tie(r.mode, r.fd, r.timeout_ms); }

bool same_limits(const std::vector<actors::rlimit_spec>& a, const std::vector<actors::rlimit_spec>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tie(a[i].resource, a[i].soft, a[i].hard) != std::tie(b[i].resource, b[i].soft, b[i].hard)) return false;
  return true;
}

void collect(const group_config& g, std::vector<std::string>& groups, std::vector<program_ref>& out) {
  for (const child_config& c : g.children) {
    if (c.program) {
      out.push_back({&*c.program, groups});
    } else {
      groups.push_back(c.group.front().name);
      collect(c.group.front(), groups, out);
      groups.pop_back();
    }
  }
}

}  // namespace

std::string config_error::to_string() const {
  std::string out = file;
  if (where.line != 0) out += ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
  out += ": ";
  if (!key_path.empty()) out += key_path + ": ";
  return out + message;
}

bool program_config::operator==(const program_config& o) const {
  return std::tie(name, argv, shell, environment, clear_env, cwd, user, group, stdin_mode, stop_signal, stop_timeout_ms,
                  kill_group, restart, significant, instances, nodes) ==
             std::tie(o.name, o.argv, o.shell, o.environment, o.clear_env, o.cwd, o.user, o.group, o.stdin_mode,
                      o.stop_signal, o.stop_timeout_ms, o.kill_group, o.restart, o.significant, o.instances, o.nodes) &&
         tie_output(stdout_spec) == tie_output(o.stdout_spec) && tie_output(stderr_spec) == tie_output(o.stderr_spec) &&
         tie_readiness(readiness) == tie_readiness(o.readiness) && same_limits(limits, o.limits);
}

const std::string& child_config::name() const { return is_group() ? group.front().name : program->name; }

bool child_config::operator==(const child_config& o) const { return program == o.program && group == o.group; }

bool same_flags(const actors::supervisor_flags& a, const actors::supervisor_flags& b) {
  const auto& x = a.backoff;
  const auto& y = b.backoff;
  return std::tie(a.strategy, a.intensity, a.period_ms, a.shutdown, a.min_uptime_ms, a.max_failed_starts,
                  a.start_concurrency, a.report, a.registered_name, x.initial_ms, x.max_ms, x.multiplier, x.jitter,
                  x.reset_after_ms) == std::tie(b.strategy, b.intensity, b.period_ms, b.shutdown, b.min_uptime_ms,
                                                b.max_failed_starts, b.start_concurrency, b.report, b.registered_name,
                                                y.initial_ms, y.max_ms, y.multiplier, y.jitter, y.reset_after_ms);
}

bool group_config::operator==(const group_config& o) const {
  return name == o.name && same_flags(flags, o.flags) && children == o.children;
}

std::vector<program_ref> programs_of(const tree_config& tree) {
  std::vector<program_ref> out;
  std::vector<std::string> groups;
  collect(tree.root, groups, out);
  return out;
}

}  // namespace pkit::tool
