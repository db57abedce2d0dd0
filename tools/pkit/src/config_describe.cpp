// describe(): what `pkit check` prints — the tree, one line per group and program. Tests
// compare it, so its layout changes only on purpose.

#include "config_reader.hpp"

#include <pkit/tool/signals.hpp>

#include <algorithm>

namespace pkit::tool {
namespace {

using detail::format_duration;

constexpr std::size_t max_command = 60;

std::string flags_text(const actors::supervisor_flags& f) {
  std::string s = "(" + actors::to_string(f.strategy) + ", intensity " + std::to_string(f.intensity) + " in " +
                  format_duration(f.period_ms);
  if (f.backoff.initial_ms > 0)
    s += ", backoff " + format_duration(f.backoff.initial_ms) + ".." + format_duration(f.backoff.max_ms);
  if (f.min_uptime_ms > 0) s += ", min uptime " + format_duration(f.min_uptime_ms);
  if (f.start_concurrency > 1) s += ", start concurrency " + std::to_string(f.start_concurrency);
  if (f.shutdown != actors::auto_shutdown::never) s += ", auto shutdown " + actors::to_string(f.shutdown);
  return s + ")";
}

std::string quoted(const std::string& arg) {
  if (!arg.empty() && arg.find_first_of(" \t\n'\"") == std::string::npos) return arg;
  return "'" + arg + "'";
}

std::string command_text(const program_config& p) {
  std::string s;
  if (p.shell) {
    // A multi-line script on one line: its non-empty lines joined with "; ".
    std::string script;
    std::size_t begin = 0;
    const std::string& text = p.argv.back();
    while (begin < text.size()) {
      std::size_t end = std::min(text.find('\n', begin), text.size());
      std::string line = text.substr(begin, end - begin);
      line.erase(0, line.find_first_not_of(" \t"));
      if (!line.empty()) script += (script.empty() ? "" : "; ") + line;
      begin = end + 1;
    }
    s = "sh -c '" + script + "'";
  } else {
    for (const auto& a : p.argv) s += (s.empty() ? "" : " ") + quoted(a);
  }
  if (s.size() > max_command) {
    std::size_t cut = max_command - 3;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
    s = s.substr(0, cut) + "...";
  }
  return s;
}

std::string output_text(const output_spec& o) {
  return o.mode == output_spec::kind::log ? "log" : o.mode == output_spec::kind::null ? "null" : "inherit";
}

std::string program_text(const program_config& p) {
  std::vector<std::string> attrs;
  if (!p.nodes.empty()) {
    std::string on = "on ";
    for (std::size_t i = 0; i < p.nodes.size(); ++i) on += (i == 0 ? "" : " | ") + p.nodes[i];
    attrs.push_back(on);
  }
  if (p.instances > 1) attrs.push_back("instances " + std::to_string(p.instances));
  if (p.restart != actors::restart_type::permanent) attrs.push_back("restart " + actors::to_string(p.restart));
  if (p.significant) attrs.push_back("significant");
  if (p.readiness.mode == readiness_spec::kind::fd) attrs.push_back("ready: fd " + std::to_string(p.readiness.fd));
  if (p.readiness.mode == readiness_spec::kind::notify_socket) attrs.push_back("ready: notify");
  attrs.push_back("stop: " + signal_name(p.stop_signal) + " " + format_duration(p.stop_timeout_ms));
  if (p.stdout_spec.mode != output_spec::kind::inherit) attrs.push_back("stdout: " + output_text(p.stdout_spec));
  if (p.stderr_spec.mode != output_spec::kind::inherit) attrs.push_back("stderr: " + output_text(p.stderr_spec));
  if (p.stdin_mode == program_config::input::inherit) attrs.push_back("stdin: inherit");
  if (!p.user.empty()) attrs.push_back("user " + p.user);
  if (!p.group.empty()) attrs.push_back("group " + p.group);
  std::string s = "[program] " + command_text(p) + "   ";
  for (std::size_t i = 0; i < attrs.size(); ++i) s += (i == 0 ? "" : ", ") + attrs[i];
  return s;
}

void describe_children(const group_config& g, const std::string& indent, std::string& out) {
  std::size_t width = 0;
  for (const auto& c : g.children) width = std::max(width, c.name().size());
  for (std::size_t i = 0; i < g.children.size(); ++i) {
    const child_config& c = g.children[i];
    const bool last = i + 1 == g.children.size();
    std::string name = c.name();
    name.resize(width + 2, ' ');
    out += indent + (last ? "└── " : "├── ") + name;
    if (c.is_group()) {
      out += flags_text(c.group.front().flags) + "\n";
      describe_children(c.group.front(), indent + (last ? "    " : "│   "), out);
    } else {
      out += program_text(*c.program) + "\n";
    }
  }
}

}  // namespace

std::string describe(const tree_config& tree) {
  std::string out = tree.settings.name + " " + flags_text(tree.root.flags) + "\n";
  for (const auto& n : tree.nodes) {
    const bool v6 = n.host.find(':') != std::string::npos;
    out += "node " + n.name + " at " + (v6 ? "[" + n.host + "]" : n.host) + ":" + std::to_string(n.port) +
           (tree.settings.tls ? " (TLS)" : "") + "\n";
  }
  // Who can control it from elsewhere is worth seeing before it runs.
  if (const auto& l = tree.settings.control_listen) {
    const bool v6 = l->host.find(':') != std::string::npos;
    out += "remote control at " + (v6 ? "[" + l->host + "]" : l->host) + ":" +
           (l->port == 0 ? std::string("any free port") : std::to_string(l->port)) +
           (tree.settings.control_tls ? " (TLS: controllers of " + tree.settings.control_tls->ca.string() + ")" : "") +
           "\n";
  }
  describe_children(tree.root, "", out);
  return out;
}

}  // namespace pkit::tool
