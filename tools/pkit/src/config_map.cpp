// The tree as the actor layer's specs: groups become supervisor_specs, programs become
// workers (NAME.1 ... NAME.N for instances).

#include <pkit/tool/config.hpp>

namespace pkit::tool {
namespace {

std::string output_path(const output_spec& o) {
  switch (o.mode) {
    case output_spec::kind::inherit: return "";
    case output_spec::kind::null: return "null";
    case output_spec::kind::log: return "capture";  // the daemon's output_capture writes the file
  }
  return "";
}

void add_children(const group_config& g, std::vector<actors::child_spec>& out) {
  for (const child_config& c : g.children) {
    if (c.is_group()) {
      actors::child_spec s;
      s.id = c.group.front().name;
      s.supervisor.push_back(to_supervisor_spec(c.group.front()));
      out.push_back(std::move(s));
    } else if (c.program->instances <= 1) {
      out.push_back(to_child_spec(*c.program));
    } else {
      for (std::uint32_t i = 1; i <= c.program->instances; ++i) out.push_back(to_child_spec(*c.program, i));
    }
  }
}

}  // namespace

actors::child_spec to_child_spec(const program_config& p, std::uint32_t instance) {
  actors::child_spec c;
  c.id = p.instance_name(instance);
  c.nodes = p.nodes;
  actors::process_spec& s = c.process;
  s.name = c.id;
  s.argv = p.argv;
  for (const auto& [k, v] : p.environment) s.env.push_back(k + "=" + v);
  s.clear_env = p.clear_env;
  s.cwd = p.cwd;
  s.stdout_path = output_path(p.stdout_spec);
  s.stderr_path = output_path(p.stderr_spec);
  s.stdin_path = p.stdin_mode == program_config::input::inherit ? "" : "null";
  s.new_process_group = true;
  s.notify_fd = p.readiness.mode == readiness_spec::kind::fd ? p.readiness.fd : -1;
  s.notify_socket = p.readiness.mode == readiness_spec::kind::notify_socket;
  s.ready_timeout_ms = p.readiness.timeout_ms;
  s.stop_signal = p.stop_signal;
  s.stop_timeout_ms = p.stop_timeout_ms;
  s.kill_group = p.kill_group;
  s.user = p.user;
  s.group = p.group;
  s.rlimits = p.limits;
  c.restart = p.restart;
  c.shutdown_ms = p.stop_timeout_ms;  // OTP's shutdown is the stop timeout (-1: infinity)
  c.significant = p.significant;
  return c;
}

actors::supervisor_spec to_supervisor_spec(const group_config& g) {
  actors::supervisor_spec s;
  s.name = g.name;
  s.flags = g.flags;
  add_children(g, s.children);
  return s;
}

actors::supervisor_spec to_supervisor_spec(const tree_config& tree) {
  actors::supervisor_spec s = to_supervisor_spec(tree.root);
  s.name = tree.settings.name;
  return s;
}

}  // namespace pkit::tool
