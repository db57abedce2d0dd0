// The daemon's control requests (control_handler): status, start/stop/restart/signal,
// add/remove, reload, shutdown, the events stream; and the status table.

#include <pkit/tool/control_protocol.hpp>
#include <pkit/tool/daemon.hpp>
#include "daemon_detail.hpp"
#include "tree_paths.hpp"

#include <caf/scoped_actor.hpp>

#include <toml++/toml.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace pkit::tool {

using namespace std::chrono;
using namespace pkit::actors;
using namespace pkit::tool::detail;

namespace {

constexpr auto query_timeout = seconds(10);
constexpr auto change_timeout = minutes(5);  // a stop honours the child's own timeout

// Runs one request on `sup` and returns "" or the error text.
template <class Reply, class... Ts>
std::string ask_into(Reply& reply, caf::actor_system& sys, const supervisor_actor& sup, caf::timespan timeout,
                     Ts&&... xs) {
  caf::scoped_actor self{sys};
  std::string err;
  self->request(sup, timeout, std::forward<Ts>(xs)...)
      .receive([&](Reply& r) { reply = std::move(r); }, [&](caf::error& e) { err = sys.render(e); });
  return err;
}

template <class Reply, class... Ts>
std::string ask(caf::actor_system& sys, const supervisor_actor& sup, caf::timespan timeout, Ts&&... xs) {
  Reply ignored{};
  return ask_into(ignored, sys, sup, timeout, std::forward<Ts>(xs)...);
}

// status NAME…: the rows of those programs (of every program below a named group), in
// tree order; an unknown name is unknown_program.
// The rows of `all` the request's `names` ask for, resolved against the tree `root`
// (unknown_program for a name it does not have).
control_reply filter_status(const group_config& root, const nlohmann::json& args, nlohmann::json all) {
  if (!args.is_object() || !args.contains("names") || args["names"].is_null()) return control_reply::success(all);
  if (!args["names"].is_array()) return control_reply::failure("bad_request", "'names' must be an array of names");
  std::vector<std::string> keys;
  for (const auto& n : args["names"]) {
    if (!n.is_string()) return control_reply::failure("bad_request", "'names' must hold strings");
    auto found = resolve(root, n.get<std::string>());
    if (found.empty())
      return control_reply::failure("unknown_program", "no program named \"" + n.get<std::string>() + "\"");
    for (const auto& t : found) keys.push_back(t.key());
  }
  nlohmann::json rows = nlohmann::json::array();
  for (auto& r : all["programs"]) {
    // A row's group is "a/b" today; PROTOCOL.md's ["a","b"] is taken too.
    const auto& g = r["group"];
    const std::string group = g.is_array()    ? join(g.get<std::vector<std::string>>())
                              : g.is_string() ? g.get<std::string>()
                                              : std::string();
    const std::string name = r.value("name", std::string());
    const std::string key = group.empty() ? name : group + "/" + name;
    auto named = [&](const std::string& k) { return key == k || key.rfind(k + "/", 0) == 0; };
    if (std::any_of(keys.begin(), keys.end(), named))
      rows.push_back(std::move(r));
  }
  return control_reply::success({{"programs", rows}});
}

// Starts `children` in order on `sup` (their ids into `started`). On a failure stops and
// deletes what it started and the failed child, and returns "ID: why"; else "".
// Starts `children` in `sup`, all or none. On failure: "ID: error", and `failed` = ID.
std::string start_children(caf::actor_system& sys, const supervisor_actor& sup, const std::vector<child_spec>& children,
                           std::vector<std::string>& started, std::string& failed, const std::string& before = {}) {
  for (const auto& c : children) {
    auto err = before.empty() ? ask<child_info>(sys, sup, change_timeout, start_child_atom_v, c)
                              : ask<child_info>(sys, sup, change_timeout, start_child_atom_v, c, before);
    // The sibling it was to go before is gone meanwhile (a temporary program that ended):
    // last, rather than not at all.
    if (!before.empty() && err.find("start_child before") != std::string::npos)
      err = ask<child_info>(sys, sup, change_timeout, start_child_atom_v, c);
    if (err.empty()) {
      started.push_back(c.id);
      continue;
    }
    started.push_back(c.id);  // a failed start may leave the child in the supervisor
    for (const auto& id : started) {
      ask<caf::ok_atom>(sys, sup, change_timeout, terminate_child_atom_v, id);
      ask<caf::ok_atom>(sys, sup, query_timeout, delete_child_atom_v, id);
    }
    started.clear();
    failed = c.id;
    return c.id + ": " + err;
  }
  return {};
}

// Where `specs` (the children of one change, in group `path` of `next_spec`) go among the
// children `sup` has now: right after the nearest sibling that precedes them in the new
// file and runs — before that sibling's successor in the running order ("" = last) —, or
// first when none precedes them. Anchored on what precedes, not on what follows: a
// sibling that follows in the file may run earlier (a program moved in the file keeps
// its running place), and inserting before it would put the change ahead of siblings
// the file puts first. A changed program thus keeps its place, an added one takes the
// place the file gives it (start_child alone would append both).
std::string place_of(caf::actor_system& sys, const supervisor_actor& sup, const supervisor_spec& next_spec,
                     const std::vector<std::string>& path, const std::vector<child_spec>& specs) {
  const auto* group = spec_at(next_spec, path);
  if (group == nullptr || specs.empty()) return {};
  std::vector<std::string> running;  // in start order
  caf::scoped_actor self{sys};
  self->request(sup, query_timeout, which_children_atom_v)
      .receive([&](std::vector<child_info>& now) { for (auto& c : now) running.push_back(std::move(c.id)); },
               [](caf::error&) {});
  if (running.empty()) return {};
  auto first = std::find_if(group->children.begin(), group->children.end(),
                            [&](const child_spec& c) { return c.id == specs.front().id; });
  for (auto it = first; it != group->children.begin();) {
    --it;
    auto at = std::find(running.begin(), running.end(), it->id);
    if (at != running.end()) return std::next(at) == running.end() ? std::string() : *std::next(at);
  }
  return running.front();
}

// "FILE:LINE:COLUMN: " of the program or group of `g` that child `id` was made from (a
// program's instances are NAME.i), "" when none is or its position is unknown: an error
// the actor layer finds in an add or a reload points at the lines that caused it.
std::string where_of(const std::string& file, const group_config* g, const std::string& id) {
  if (g == nullptr) return {};
  // The child of that name, else the program whose instance it is (NAME.i: names may
  // contain '.', so "web.x" is program web.x's, never an instance of web).
  auto instance_of = [&id](const std::string& name) {
    if (!id.starts_with(name + ".") || id.size() == name.size() + 1) return false;
    return std::all_of(id.begin() + static_cast<std::ptrdiff_t>(name.size() + 1), id.end(),
                       [](char ch) { return ch >= '0' && ch <= '9'; });
  };
  const child_config* found = nullptr;
  for (const auto& c : g->children)
    if (c.name() == id) found = &c;
  for (const auto& c : g->children)
    if (found == nullptr && c.program && instance_of(c.name())) found = &c;
  if (found == nullptr) return {};
  const source_position w = found->is_group() ? found->group.front().where : found->program->where;
  return w.line == 0 ? std::string{} : config_error{file, w, {}, {}}.to_string();
}

// Loads an add's snippet (args "toml", "file"): [[program]]/[[group]] tables only, as
// PROTOCOL.md says ([pkit] and the root's settings belong to the tree file).
load_result load_snippet(const nlohmann::json& args, const tree_config& tree, const group_config& into) {
  const std::string text = args["toml"].get<std::string>();
  const std::string file =
      args.contains("file") && args["file"].is_string() ? args["file"].get<std::string>() : "<ctl add>";
  load_result refused;
  try {
    const auto table = toml::parse(text, std::string_view(file));
    for (const auto& [key, node] : table)
      if (key.str() != "program" && key.str() != "group")
        refused.errors.push_back({file,
                                  {key.source().begin.line, key.source().begin.column},
                                  std::string(key.str()),
                                  "not allowed in an added snippet: only [[program]] and [[group]] tables ([pkit] "
                                  "and the root's settings belong to the tree file)"});
  } catch (const toml::parse_error&) {
    // load_string reports it, with its position
  }
  if (!refused.errors.empty()) return refused;
  // Its programs log into the running tree's log_dir and are placed on the tree's nodes:
  // said in tables put after the snippet's own lines, so that their positions in
  // messages stay right. What does not name its nodes runs where the group it is added
  // to places its programs, as it would in the file.
  return load_string(text + "\n" + detail::link_settings_toml(tree), file, tree.file.parent_path(), into.nodes);
}

// Whether child `id` of `sup` runs or is starting (a start leaves it alone then).
bool is_active(caf::actor_system& sys, const supervisor_actor& sup, const std::string& id) {
  caf::scoped_actor self{sys};
  bool active = false;
  self->request(sup, query_timeout, which_children_atom_v)
      .receive(
          [&](std::vector<child_info>& all) {
            for (const auto& c : all)
              if (c.id == id) active = c.state == child_state::running || c.state == child_state::starting;
          },
          [](caf::error&) {});
  return active;
}

}  // namespace

// -- status -----------------------------------------------------------------------------

void daemon::publish_tree() {
  auto next = std::make_shared<const tree_snapshot>(tree_snapshot{tree_, detail::spec_of(tree_)});
  std::lock_guard lock(mutex_);
  snapshot_ = std::move(next);
}

std::shared_ptr<const daemon::tree_snapshot> daemon::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

nlohmann::json daemon::walk(const supervisor_actor& sup, const std::string& path, const supervisor_spec& spec) {
  nlohmann::json rows = nlohmann::json::array();
  caf::scoped_actor self{*system_};
  std::vector<child_info> children;
  self->request(sup, query_timeout, which_children_atom_v)
      .receive([&](std::vector<child_info>& all) { children = std::move(all); }, [](caf::error&) {});
  for (const auto& [live, id] : in_tree_order(children, spec_at(spec, split(path)))) {
    if (live == nullptr) {  // a temporary program that ended: what its events said
      std::lock_guard lock(mutex_);
      auto it = rows_.find(path.empty() ? id : path + "/" + id);
      if (it != rows_.end() && !it->second.is_group)
        rows.push_back({{"name", it->second.name}, {"group", path}, {"state", "stopped"}, {"node", it->second.node}, {"pid", nullptr},
                        {"uptime_ms", nullptr}, {"restarts", it->second.restarts + it->second.manual_restarts}, {"last_exit", it->second.last_exit},
                        {"reason", it->second.reason}});
      continue;
    }
    const child_info& c = *live;
    std::string sub = path.empty() ? c.id : path + "/" + c.id;
    if (c.is_supervisor) {
      if (auto nested = nested_supervisor_of(c))
        for (auto& r : walk(nested, sub, spec)) rows.push_back(std::move(r));
      continue;
    }
    std::int64_t uptime = 0;
    {
      std::lock_guard lock(mutex_);
      auto it = rows_.find(sub);
      if (it != rows_.end() && c.pid > 0)
        uptime = duration_cast<milliseconds>(steady_clock::now() - it->second.started).count();
    }
    rows.push_back({{"name", c.id},
                    {"group", path},
                    {"state", to_string(c.state)},
                    {"node", c.node},  // "" : here
                    {"pid", c.pid > 0 ? nlohmann::json(c.pid) : nlohmann::json(nullptr)},  // null: no process (a node's pid otherwise)
                    {"uptime_ms", c.pid > 0 ? nlohmann::json(uptime) : nlohmann::json(nullptr)},
                    {"restarts", c.automatic_restarts + c.manual_restarts},
                    {"last_exit", c.has_last_exit ? status_to_json(c.last_exit) : nlohmann::json(nullptr)},
                    {"reason", c.last_reason},
                    {"end", end_to_json(c.last_end)}});
  }
  return rows;
}

nlohmann::json daemon::status() {
  const auto now = snapshot();
  return {{"programs", walk(root_, "", now->spec)}};
}

control_reply daemon::status_of(const nlohmann::json& args) {
  // Each name: a program, an instance, its path as the table shows it, or a group (every
  // program below it) — resolved against the tree, as the other commands resolve them.
  const auto now = snapshot();
  return filter_status(now->tree.root, args, {{"programs", walk(root_, "", now->spec)}});
}

void daemon::note_manual_restarts(const std::string& key, std::uint32_t count) {
  std::lock_guard lock(mutex_);
  auto it = rows_.find(key);
  if (it != rows_.end()) it->second.manual_restarts = count;
}

nlohmann::json daemon::recorded_status() const {
  std::lock_guard lock(mutex_);
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& key : row_order_) {
    const row& r = rows_.at(key);
    if (r.is_group) continue;
    // Once the tree is gone nothing runs: a child whose restart the stop cancelled (it
    // gets no `stopped` event) is stopped too, not "restarting" forever.
    const bool gone = stopped_ || root_down_;
    const std::string state = gone && r.state != "fatal" ? "stopped" : r.state;
    rows.push_back({{"name", r.name}, {"group", r.group}, {"state", state}, {"node", r.node}, {"pid", gone ? 0 : r.pid},
                    {"uptime_ms", 0}, {"restarts", r.restarts + r.manual_restarts}, {"last_exit", r.last_exit}, {"reason", r.reason}});
  }
  return {{"programs", rows}};
}

// -- finding supervisors ----------------------------------------------------------------

supervisor_actor daemon::supervisor_at(const std::vector<std::string>& path) {
  supervisor_actor sup = root_;
  caf::scoped_actor self{*system_};
  for (const auto& id : path) {
    supervisor_actor next;
    self->request(sup, query_timeout, which_children_atom_v)
        .receive(
            [&](std::vector<child_info>& all) {
              for (auto& c : all)
                if (c.id == id && c.is_supervisor) next = nested_supervisor_of(c);
            },
            [](caf::error&) {});
    if (!next) return {};
    sup = next;
  }
  return sup;
}

// -- requests ---------------------------------------------------------------------------

control_reply daemon::handle(const std::string& command, const nlohmann::json& args) {
  if (!started_) return control_reply::failure("starting", "the tree is still starting");
  if (stopping_) return control_reply::failure("shutting_down", "pkit run is shutting down");
  // Read-only, from the supervisors and the tree's snapshot: never behind a stop that
  // holds control_ for minutes, names or not.
  if (command == "status") return status_of(args);
  // A flag and a wake-up for the main loop: never behind a stop either (a shutdown asked
  // during one waited for it, and its client gave up).
  if (command == "shutdown") {
    request_shutdown();
    return control_reply::success();
  }
  std::lock_guard lock(control_);
  if (stopping_) return control_reply::failure("shutting_down", "pkit run is shutting down");
  if (command == "reload") return reload();  // publishes the tree it leaves
  if (command == "add") {
    auto reply = add(args);
    publish_tree();
    return reply;
  }
  if (command == "start" || command == "stop" || command == "restart" || command == "signal" || command == "remove") {
    auto reply = on_children(command, args);
    if (command == "remove") publish_tree();
    return reply;
  }
  return control_reply::failure("unknown_command", "unknown command '" + command + "'");
}

control_reply daemon::on_children(const std::string& command, const nlohmann::json& args) {
  if (!args.is_object() || !args.contains("names") || !args["names"].is_array() || args["names"].empty())
    return control_reply::failure("bad_request", "'names' must be a non-empty array of program names");
  std::optional<int> sig;
  if (command == "signal" && !(sig = parse_signal(args.value("signal", nlohmann::json()))))
    return control_reply::failure("bad_request", "'signal' must be a signal name (\"TERM\") or number");
  std::vector<target> targets;
  for (const auto& n : args["names"]) {
    if (!n.is_string()) return control_reply::failure("bad_request", "'names' must hold strings");
    auto found = resolve(tree_.root, n.get<std::string>());
    if (found.empty())
      return control_reply::failure("unknown_program", "no program or group named '" + n.get<std::string>() + "'");
    targets.insert(targets.end(), found.begin(), found.end());
  }
  nlohmann::json done = nlohmann::json::array();
  for (const auto& t : targets) {
    auto sup = supervisor_at(t.path);
    if (!sup) return control_reply::failure("unknown_program", "the group of '" + t.id + "' is not running");
    std::string err;
    if (command == "stop") err = ask<caf::ok_atom>(*system_, sup, change_timeout, terminate_child_atom_v, t.id);
    else if (command == "start" && is_active(*system_, sup, t.id)) err.clear();  // start never restarts what runs
    else if (command == "restart" || command == "start") {
      child_info now;
      err = ask_into(now, *system_, sup, change_timeout, restart_child_atom_v, t.id);
      // The final table is made from events, and a manual restart emits none of its
      // own: keep the supervisor's count, so that table agrees with `ctl status`.
      if (err.empty()) note_manual_restarts(t.key(), now.manual_restarts);
    }
    else if (command == "remove") {
      err = ask<caf::ok_atom>(*system_, sup, change_timeout, terminate_child_atom_v, t.id);
      if (err.empty()) err = ask<caf::ok_atom>(*system_, sup, query_timeout, delete_child_atom_v, t.id);
      if (err.empty())
        if (auto* g = group_at(tree_.root, t.path))
          std::erase_if(g->children, [&](const child_config& c) {
            auto ids = child_ids(c);
            return std::find(ids.begin(), ids.end(), t.id) != ids.end();
          });
    } else {  // signal
      caf::scoped_actor self{*system_};
      caf::actor handle;
      self->request(sup, query_timeout, which_children_atom_v)
          .receive([&](std::vector<child_info>& all) {
                     for (auto& c : all)
                       if (c.id == t.id && !c.is_supervisor) handle = c.handle;
                   },
                   [](caf::error&) {});
      if (!handle) err = "not running";
      else
        self->request(caf::actor_cast<process_actor>(handle), query_timeout, signal_atom_v, std::int32_t{*sig})
            .receive([](caf::ok_atom) {}, [&](caf::error& e) { err = system_->render(e); });
    }
    if (!err.empty() && !(command == "start" && err.find("running") != std::string::npos)) {
      if (command == "remove") end_gone_tails();  // of what was removed before this one
      return control_reply::failure("failed", command + " " + join(t.path) + (t.path.empty() ? "" : "/") + t.id +
                                                  ": " + err);
    }
    done.push_back(t.key());
  }
  if (command == "remove") end_gone_tails();
  return control_reply::success({{command == "remove" ? "removed" : "done", done}});
}

control_reply daemon::add(const nlohmann::json& args) {
  if (!args.is_object() || !args.contains("toml") || !args["toml"].is_string())
    return control_reply::failure("bad_request", "'toml' must be a string holding [[program]]/[[group]] tables");
  // `group` is the path as an array ("add --group a/b" sends ["a","b"]); a string "a/b"
  // is taken too.
  std::vector<std::string> path;
  if (args.contains("group") && args["group"].is_array()) {
    for (const auto& p : args["group"]) {
      if (!p.is_string()) return control_reply::failure("bad_request", "'group' must be an array of group names");
      path.push_back(p.get<std::string>());
    }
  } else if (args.contains("group") && args["group"].is_string()) {
    path = split(args["group"].get<std::string>());
  } else if (args.contains("group") && !args["group"].is_null()) {
    return control_reply::failure("bad_request", "'group' must be an array of group names");
  }
  group_config* g = group_at(tree_.root, path);
  auto sup = supervisor_at(path);
  if (g == nullptr || !sup) return control_reply::failure("unknown_group", "no group '" + join(path) + "'");
  auto loaded = load_snippet(args, tree_, *g);
  if (!loaded) {
    std::string msg;
    for (const auto& e : loaded.errors) msg += (msg.empty() ? "" : "\n") + e.to_string();
    return control_reply::failure("invalid_config", msg);
  }
  std::set<std::string> taken;
  for (const auto& p : programs_of(tree_)) taken.insert(p.program->name);
  const std::string file = loaded.tree->file.string();
  for (const auto& c : loaded.tree->root.children)
    if (taken.count(c.name()) != 0 || !ids_named(*g, c.name()).empty())
      return control_reply::failure("already_present", where_of(file, &loaded.tree->root, c.name()) + "'" +
                                                           c.name() + "' exists already");
  try {
    configure_outputs(loaded.tree->root);
  } catch (const std::exception& e) {
    return control_reply::failure("invalid_config", std::string("cannot open a log file: ") + e.what());
  }
  auto spec = to_supervisor_spec(loaded.tree->root);
  detail::name_supervisors_by_path(spec, join(path));
  detail::keep_systemd_variables_to_pkit(spec);
  nlohmann::json added = nlohmann::json::array();
  std::vector<std::string> started;
  // All or nothing: what started before a failure is stopped and taken out again, so no
  // running child is left that the tree (and so every ctl command) does not know.
  std::string failed;
  if (auto err = start_children(*system_, sup, spec.children, started, failed); !err.empty())
    return control_reply::failure("start_failed",
                                  where_of(file, &loaded.tree->root, failed) + err + " (nothing was added)");
  for (const auto& id : started) added.push_back(id);
  warn_of_terminal_stdin(*loaded.tree);  // of what did start
  for (auto& c : loaded.tree->root.children) g->children.push_back(std::move(c));
  return control_reply::success({{"added", added}});
}

// -- reload -----------------------------------------------------------------------------

namespace {
// Whether the reload starts `r` (a program of the new file) anew: it, or a group above
// it, is added or changed.
bool started_anew(const reload_plan& plan, const program_ref& r) {
  auto under = [&](const reload_plan::change& c) {
    if (!c.is_group) return c.group == r.groups && c.name == r.program->name;
    const std::size_t depth = c.group.size();
    return r.groups.size() > depth && std::equal(c.group.begin(), c.group.end(), r.groups.begin()) &&
           r.groups[depth] == c.name;
  };
  return std::any_of(plan.added.begin(), plan.added.end(), under) ||
         std::any_of(plan.changed.begin(), plan.changed.end(), under);
}
}  // namespace

control_reply daemon::reload() {
  detail::notify("RELOADING=1\nSTATUS=reloading");
  auto loaded = tree_.file.empty() || tree_.file == "<built-in default>"
                    ? load_string(default_tree_text(), "<built-in default>", {})
                    : load_file(tree_.file);
  control_reply reply;
  if (!loaded) {
    std::string msg;
    for (const auto& e : loaded.errors) msg += (msg.empty() ? "" : "\n") + e.to_string();
    reply = control_reply::failure("invalid_config", "the new file was rejected, nothing changed:\n" + msg);
  } else if (auto plan = diff(tree_, *loaded.tree); plan.root_changed) {
    reply = control_reply::failure("root_changed",
                                   "the root group's own settings changed: restart pkit run to apply them");
  } else {
    // Runs of added and changed programs log where the new file says (runs already
    // attached keep their files).
    try {
      configure_outputs(loaded.tree->root);
      reply = apply(*loaded.tree, plan);
      if (reply.ok)  // of what did start anew
        warn_of_terminal_stdin(*loaded.tree, [&plan](const program_ref& r) { return started_anew(plan, r); });
    } catch (const std::exception& e) {
      reply = control_reply::failure("invalid_config", std::string("cannot open a log file: ") + e.what());
    }
  }
  publish_tree();
  end_gone_tails();  // a removed program's tail ends; so does one that stopped logging
  detail::notify("READY=1\nSTATUS=running " + tree_.settings.name);
  return reply;
}

control_reply daemon::apply(const tree_config& next, const reload_plan& plan) {
  auto old_spec = detail::spec_of(tree_);
  auto new_spec = detail::spec_of(next);
  auto names = [](const std::vector<reload_plan::change>& cs) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : cs) out.push_back(c.group.empty() ? c.name : join(c.group) + "/" + c.name);
    return out;
  };
  auto stop_all = [&](const reload_plan::change& c) -> std::string {
    auto sup = supervisor_at(c.group);
    for (const auto& s : children_named(old_spec, tree_.root, c.group, c.name)) {
      auto err = ask<caf::ok_atom>(*system_, sup, change_timeout, terminate_child_atom_v, s.id);
      if (err.empty()) err = ask<caf::ok_atom>(*system_, sup, query_timeout, delete_child_atom_v, s.id);
      if (!err.empty()) return s.id + ": " + err;
    }
    return {};
  };
  auto start_all = [&](const reload_plan::change& c) -> std::string {
    std::vector<std::string> started;
    auto specs = children_named(new_spec, next.root, c.group, c.name);
    auto sup = supervisor_at(c.group);
    std::string failed;
    auto err = start_children(*system_, sup, specs, started, failed, place_of(*system_, sup, new_spec, c.group, specs));
    return err.empty() ? err : where_of(next.file.string(), group_at(next.root, c.group), failed) + err;
  };
  // `applied` is what runs: the old tree with every change that succeeded, so that a
  // program that could not start is not taken for running (the next reload retries it).
  tree_config applied = tree_;
  applied.settings = next.settings;
  std::string errors;
  for (const auto& c : plan.removed) {
    if (auto e = stop_all(c); !e.empty()) errors += e + "\n";
    else drop_child(applied.root, c);
  }
  for (const auto& c : plan.changed) {
    if (auto e = stop_all(c); !e.empty()) {
      errors += e + "\n";
    } else if (auto e2 = start_all(c); !e2.empty()) {
      errors += e2 + "\n";
      drop_child(applied.root, c);
    } else {
      put_child(applied.root, next, c);
    }
  }
  for (const auto& c : plan.added) {
    if (auto e = start_all(c); !e.empty()) errors += e + "\n";
    else put_child(applied.root, next, c);
  }
  // Without failures the new file's tree as it is (its order, its positions).
  tree_ = errors.empty() ? next : std::move(applied);
  shutdown_timeout_ms_ = tree_.settings.shutdown_timeout_ms;  // for the main loop, which never reads tree_
  nlohmann::json result{{"added", names(plan.added)},
                        {"removed", names(plan.removed)},
                        {"changed", names(plan.changed)},
                        {"unchanged", plan.unchanged}};
  if (!errors.empty())
    return control_reply::failure("reload_incomplete",
                                  errors + result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return control_reply::success(result);
}

// -- streams ----------------------------------------------------------------------------

class daemon::stream final : public control_stream {
public:
  stream(daemon* d, std::uint64_t id) : d_(d), id_(id) {}
  ~stream() override {
    std::lock_guard lock(d_->mutex_);  // held while sinks run: none runs after this
    d_->sinks_.erase(id_);
  }

private:
  daemon* d_;
  std::uint64_t id_;
};

std::unique_ptr<control_stream> daemon::open_stream(const std::string& command, const nlohmann::json& args, sink to,
                                                    control_reply& error) {
  if (command == "tail") return open_tail(args, std::move(to), error);
  if (command != "events") {
    error = control_reply::failure("unknown_stream", "no stream '" + command + "' (only 'events' and 'tail')");
    return nullptr;
  }
  // The child ids the names stand for now (resolved against the tree, which only
  // changes under control_); a name the tree lacks yet matches a child of that id.
  std::set<std::string> only;
  if (args.is_object() && args.contains("names") && args["names"].is_array()) {
    std::lock_guard tree_lock(control_);
    for (const auto& n : args["names"]) {
      if (!n.is_string()) continue;
      auto found = resolve(tree_.root, n.get<std::string>());
      if (found.empty()) only.insert(n.get<std::string>());
      for (const auto& t : found) only.insert(t.id);
    }
  }
  sink filtered = only.empty() ? std::move(to) : sink([only, to](const nlohmann::json& item) {
    return only.count(item.value("program", "")) == 0 || to(item);
  });
  std::lock_guard lock(mutex_);
  auto id = next_sink_++;
  sinks_.emplace(id, std::move(filtered));
  return std::make_unique<stream>(this, id);
}

}  // namespace pkit::tool
