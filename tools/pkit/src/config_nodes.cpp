// The tree file's distribution keys (issue 11): the nodes ([nodes.NAME] address), the
// links' settings ([pkit] tls, heartbeat, node_timeout), where a program or group runs
// (`node` / `nodes`), and what a program placed on a node may say. A program on a node
// is checked by that node (its allow-list), not here: nothing of it is looked up on this
// machine (PATH, cwd, users), but what no node would ever accept is refused now.

#include "config_reader.hpp"

// Compiled twice: with pkit::net (PKIT_HAVE_NODE: pkit_tool, `pkit-net`) and without it
// (`pkit`, which links no network code and runs `pkit-net` for a file that declares
// nodes or a control listener, so that only a reload or `ctl add` of a tree started
// without them meets the refusals of no_network() below).
#ifdef PKIT_HAVE_NODE
#include <pkit/net/listen_policy.hpp>
#endif

#include <algorithm>
#include <charconv>
#include <set>

namespace pkit::tool::detail {

std::string parse_host_port(const std::string& text, std::string& out_host, std::uint16_t& out_port,
                            bool allow_any_port) {
  std::string host;
  std::string port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return "expected \"[IPv6]:PORT\", got \"" + text + "\"";
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return "expected \"HOST:PORT\" (e.g. \"10.0.0.5:7100\"), got \"" + text + "\"";
    host = text.substr(0, colon);
    if (host.find(':') != std::string::npos) return "an IPv6 address goes in brackets: \"[" + host + "]:PORT\"";
    port = text.substr(colon + 1);
  }
  if (host.empty()) return "no host before the port in \"" + text + "\"";
  if (host.find_first_of(" \t\0/", 0, 4) != std::string::npos) return "\"" + host + "\" is not a host name or address";
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || (value == 0 && !allow_any_port) ||
      value > 65535)
    return std::string("the port must be a number from ") + (allow_any_port ? "0" : "1") + " to 65535, got \"" + port +
           "\"";
  out_host = host;
  out_port = static_cast<std::uint16_t>(value);
  return {};
}

namespace {

#ifndef PKIT_HAVE_NODE
// What `pkit` says of a network key it cannot serve (reload: the links and the listener
// are made once, at start, by `pkit-net`).
std::string no_network(const std::string& what) {
  return what + " needs pkit's network module, which this pkit run has not loaded (it was started for a tree "
                "without nodes nor control_listen, and runs without pkit-net): restart pkit run with this file";
}
#endif

std::string parse_address(const std::string& text, node_address& out) {
  return parse_host_port(text, out.host, out.port, false);
}

/// A TLS set `{ cert, key, ca }` under `key` of `r`: all three or an error each missing.
std::optional<tls_paths> read_tls(table_reader& r, std::string_view key, const std::filesystem::path& base_dir) {
  const toml::table* t = r.subtable(key);
  if (t == nullptr) return std::nullopt;
  table_reader tr(*t, r.path_of(key), r.sink());
  tls_paths tls;
  bool complete = true;
  for (auto [name, field] : {std::pair{"cert", &tls.cert}, {"key", &tls.key}, {"ca", &tls.ca}}) {
    if (auto v = tr.string(name)) *field = resolve_path(base_dir, *v);
    if (field->empty()) {
      complete = false;
      if (!t->contains(name)) tr.error(name, std::string("the TLS set needs ") + name + " (cert, key and ca, all three)");
    }
  }
  tr.finish();
  if (!complete) return std::nullopt;
  return tls;
}

// Remote control (`pkit ctl --host`): where, and with which certificates. Beyond
// loopback only with its own TLS set — the same rule as `pkit node`'s --listen
// (check_listen) — and never with [pkit] tls, which trusts the nodes' CA: a node's
// certificate must not control its controller (FORMAT.md, "Remote control").
void read_control_listen(table_reader& r, run_settings& s, const std::filesystem::path& base_dir) {
  s.control_tls = read_tls(r, "control_tls", base_dir);
  const toml::node* at = r.node("control_listen");
  auto text = r.string("control_listen");
  if (!text) {
    if (s.control_tls && at == nullptr)
      r.error("control_tls", "control_tls without control_listen: say where to listen (control_listen = \"HOST:PORT\")");
    return;
  }
  control_endpoint e;
  e.where = position_of(at->source());
  if (auto why = parse_host_port(*text, e.host, e.port, true); !why.empty()) return r.error("control_listen", why);
  if (!s.control_tls && r.table().contains("control_tls")) return;  // its own errors said why
#ifndef PKIT_HAVE_NODE
  return r.error("control_listen", no_network("control_listen"));
#else
  const pkit::net::tls_files files{s.control_tls ? s.control_tls->cert : std::filesystem::path(),
                                   s.control_tls ? s.control_tls->key : std::filesystem::path(),
                                   s.control_tls ? s.control_tls->ca : std::filesystem::path(), {}, {}};
  if (s.control_tls && s.tls && s.control_tls->ca == s.tls->ca)
    return r.error("control_tls", "control_tls trusts the CA of tls (" + s.tls->ca.string() +
                                      ", the nodes'): any node's certificate could control this pkit run — trust "
                                      "the controllers' CA (FORMAT.md, Remote control)");
  if (pkit::net::check_listen(e.host, s.control_tls ? &files : nullptr))
    return r.error("control_listen", "\"" + e.host +
                                         "\" is beyond loopback: remote control needs mutual TLS — set [pkit] "
                                         "control_tls = { cert = ..., key = ..., ca = ... } (FORMAT.md, Remote control)");
  // On loopback too: plain BASP would let every local user control this pkit run (`add`
  // runs programs as pkit run's user, root included). Local control has the control
  // socket, whose permissions and peer check keep other users out.
  if (!s.control_tls)
    return r.error("control_listen", "remote control needs mutual TLS, on loopback too (plain, any local user could "
                                     "control this pkit run; local control is the control socket): set [pkit] "
                                     "control_tls = { cert = ..., key = ..., ca = ... }");
  s.control_listen = std::move(e);
#endif
}

}  // namespace

void read_nodes(table_reader& root, load_context& ctx, std::vector<node_address>& out) {
  const toml::table* t = root.subtable("nodes");
  if (t == nullptr) return;
#ifndef PKIT_HAVE_NODE
  if (!t->empty()) return root.error("nodes", no_network("[nodes]"));
#endif
  for (auto&& [k, v] : *t) {
    const std::string name(k.str());
    const std::string path = "nodes." + name;
    if (auto why = name_problem(name); !why.empty()) {
      ctx.sink.add(position_of(k.source()), path, why);
      continue;
    }
    const toml::table* nt = v.as_table();
    if (nt == nullptr) {
      ctx.sink.add(position_of(v.source()), path, "expected a table ([nodes." + name + "] address = \"HOST:PORT\"), got " +
                                                      type_name(v.type()));
      continue;
    }
    table_reader r(*nt, path, ctx.sink);
    node_address node;
    node.name = name;
    node.where = r.where();
    if (auto a = r.string("address")) {
      auto same = [&](const node_address& o) { return o.host == node.host && o.port == node.port; };
      if (auto why = parse_address(*a, node); !why.empty()) {
        r.error("address", why);
      } else if (auto twin = std::find_if(out.begin(), out.end(), same); twin != out.end()) {
        // Failover to "another" node that is the same agent would fail over to nothing.
        r.error("address", "node '" + twin->name + "' (line " + std::to_string(twin->where.line) +
                               ") has this address already: two names for one node");
        out.push_back(std::move(node));  // declared all the same: no "unknown node" where it is named
      } else {
        out.push_back(std::move(node));
      }
    } else if (!nt->contains("address")) {
      r.error("address", "every node needs an address (\"HOST:PORT\" where its `pkit node` listens)");
    }
    r.finish();
  }
}

void read_link_settings(table_reader& r, run_settings& s, const std::filesystem::path& base_dir) {
  s.tls = read_tls(r, "tls", base_dir);
  read_control_listen(r, s, base_dir);
  if (auto d = r.duration("heartbeat")) {
    if (*d <= 0) r.error("heartbeat", "must be longer than 0s");
    else s.heartbeat_ms = *d;
  }
  if (auto d = r.duration("node_timeout")) s.node_timeout_ms = *d;
  if (r.table().contains("node_timeout") && s.node_timeout_ms <= s.heartbeat_ms)
    r.error("node_timeout", "must be longer than heartbeat (" + format_duration(s.heartbeat_ms) +
                                "): a node is lost only after it missed heartbeats");
}

std::optional<std::vector<std::string>> read_placement(table_reader& r, const load_context& ctx) {
  const toml::node* one = r.node("node");
  const toml::node* many = r.node("nodes");
  if (one == nullptr && many == nullptr) return std::nullopt;
  if (one != nullptr && many != nullptr) {
    r.error("nodes", "give either node (one) or nodes (a list to choose from, in order), not both");
    return std::nullopt;
  }
  const std::string key = one != nullptr ? "node" : "nodes";
  std::vector<std::pair<std::string, const toml::node*>> names;
  if (one != nullptr) {
    if (auto s = r.string("node")) names.emplace_back(*s, one);
    else return std::nullopt;
  } else if (const toml::array* a = many->as_array()) {
    if (a->empty()) r.error("nodes", "an empty list: name at least one node (or leave nodes out to run here)");
    for (std::size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      if (!e.is_string()) {
        r.sink().add(position_of(e.source()), r.path_of("nodes") + "[" + std::to_string(i) + "]",
                     "expected a node's name, got " + type_name(e.type()));
        return std::nullopt;
      }
      names.emplace_back(e.as_string()->get(), &e);
    }
  } else {
    r.type_error("nodes", *many, "an array of node names");
    return std::nullopt;
  }
  std::vector<std::string> known;
  for (const auto& n : ctx.nodes) known.push_back(n.name);
  std::vector<std::string> out;
  for (const auto& [name, at] : names) {
    const bool declared = std::find(known.begin(), known.end(), name) != known.end();
    std::string why;
    if (!declared) {
      why = "unknown node '" + name + "'";
      if (auto near = closest(name, known); !near.empty()) why += "; did you mean '" + near + "'?";
      else why += " (declare it: [nodes." + name + "] address = \"HOST:PORT\")";
    } else if (std::find(out.begin(), out.end(), name) != out.end()) {
      why = "node '" + name + "' is listed twice";
    }
    if (!why.empty()) r.sink().add(position_of(at->source()), r.path_of(key), why);
    else out.push_back(name);
  }
  if (out.size() != names.size()) return std::nullopt;
  return out;
}

void check_remote_program(const program_config& p, table_reader& r) {
  const std::string where = "'" + p.nodes.front() + "'" + (p.nodes.size() > 1 ? " (or another of its nodes)" : "");
  if (!p.argv.empty() && !p.argv.front().starts_with('/')) {
    // At the program's name, as check_command's errors are (a shell's is /bin/sh).
    const toml::node* command = r.table().get("command");
    const toml::array* a = command != nullptr ? command->as_array() : nullptr;
    if (a != nullptr && !a->empty())
      r.sink().add(position_of(a->get(0)->source()), r.path_of("command") + "[0]",
                   "a program on a node runs on " + where +
                       ", whose allow-list names programs by absolute path: write it in full (\"/usr/bin/" +
                       p.argv.front() + "\", say)");
  }
  if (!p.cwd.empty() && !std::filesystem::path(p.cwd).is_absolute()) r.error("cwd", "must be absolute on a node");
  for (const auto* o : {&p.stdout_spec, &p.stderr_spec})
    if (o->mode == output_spec::kind::log)
      r.error(o == &p.stdout_spec ? "stdout" : "stderr",
              "a program on a node cannot log to pkit run's files (its output stays on the node): use \"inherit\" "
              "(the node's own output) or \"null\"");
  if (p.stdin_mode == program_config::input::inherit)
    r.error("stdin", "a program on a node cannot read pkit run's stdin: a node gives its programs /dev/null "
                     "(leave stdin out)");
  if (!p.kill_group)
    r.error("kill_group", "a program on a node always runs in its own process group, stopped as a whole "
                          "(the node refuses kill_group = false)");
  if (p.stop_timeout_ms < 0)
    r.error("stop_timeout", "a node must be able to stop what it runs when its controller is lost: give a "
                            "finite stop_timeout");
}

void check_node_links(const tree_config& tree, error_sink& sink) {
#ifndef PKIT_HAVE_NODE
  // No nodes here (read_nodes refused them): nothing is linked, nothing to check.
  (void)tree;
  (void)sink;
#else
  if (tree.settings.tls) return;
  std::set<std::string> used;
  for (const auto& ref : programs_of(tree)) used.insert(ref.program->nodes.begin(), ref.program->nodes.end());
  for (const auto& n : tree.nodes)
    if (used.count(n.name) && !pkit::net::is_loopback_address(n.host))
      sink.add(n.where, "nodes." + n.name + ".address",
               "node '" + n.name + "' is beyond loopback (" + n.host +
                   "): its link needs mutual TLS — set [pkit] tls = { cert = ..., key = ..., ca = ... } "
                   "(tools/make-certs.sh makes a set)");
#endif
}

}  // namespace pkit::tool::detail
