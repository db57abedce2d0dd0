// The daemon's control requests (control_handler): status, start/stop/restart/signal,
// add/remove, reload, shutdown, the events stream; and the status table.

#include <pkit/tool/daemon.hpp>
#include "daemon_detail.hpp"

#include <caf/scoped_actor.hpp>

#include <fmt/format.h>

#include <cstring>
#include <sstream>

namespace pkit::tool {

using namespace std::chrono;
using namespace pkit::actors;

namespace {

constexpr auto query_timeout = seconds(10);
constexpr auto change_timeout = minutes(5);  // a stop honours the child's own timeout

std::string join(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& p : path) out += (out.empty() ? "" : "/") + p;
  return out;
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream in(path);
  for (std::string part; std::getline(in, part, '/');)
    if (!part.empty()) out.push_back(part);
  return out;
}

// `id` is `name` or one of its instances, NAME.N.
bool is_instance_of(const std::string& id, const std::string& name) {
  if (id == name) return true;
  if (id.size() <= name.size() + 1 || id.compare(0, name.size(), name) != 0 || id[name.size()] != '.') return false;
  return id.find_first_not_of("0123456789", name.size() + 1) == std::string::npos;
}

const supervisor_spec* spec_at(const supervisor_spec& root, const std::vector<std::string>& path) {
  const supervisor_spec* s = &root;
  for (const auto& id : path) {
    const supervisor_spec* next = nullptr;
    for (const auto& c : s->children)
      if (c.id == id && !c.supervisor.empty()) next = &c.supervisor.front();
    if (next == nullptr) return nullptr;
    s = next;
  }
  return s;
}

std::vector<child_spec> children_named(const supervisor_spec& root, const std::vector<std::string>& path,
                                       const std::string& name) {
  std::vector<child_spec> out;
  if (const auto* s = spec_at(root, path))
    for (const auto& c : s->children)
      if (is_instance_of(c.id, name)) out.push_back(c);
  return out;
}

// Where a named child is: every (group path, child id) it stands for.
struct target {
  std::vector<std::string> path;
  std::string id;
};

void find_targets(const supervisor_spec& s, std::vector<std::string>& path, const std::string& name,
                  std::vector<target>& out) {
  for (const auto& c : s.children) {
    if (is_instance_of(c.id, name)) out.push_back({path, c.id});
    if (!c.supervisor.empty()) {
      path.push_back(c.id);
      find_targets(c.supervisor.front(), path, name, out);
      path.pop_back();
    }
  }
}

std::optional<int> parse_signal(const nlohmann::json& j) {
  if (j.is_number_integer()) {
    int n = j.get<int>();
    return n > 0 && n < NSIG ? std::optional<int>(n) : std::nullopt;
  }
  if (!j.is_string()) return std::nullopt;
  std::string s = j.get<std::string>();
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  for (int n = 1; n < NSIG; ++n)
    if (const char* a = ::sigabbrev_np(n); a != nullptr && s == a) return n;
  return std::nullopt;
}

group_config* group_at(group_config& root, const std::vector<std::string>& path) {
  group_config* g = &root;
  for (const auto& id : path) {
    group_config* next = nullptr;
    for (auto& c : g->children)
      if (c.is_group() && c.name() == id) next = &c.group.front();
    if (next == nullptr) return nullptr;
    g = next;
  }
  return g;
}

// Runs one request on `sup` and returns "" or the error text.
template <class Reply, class... Ts>
std::string ask(caf::actor_system& sys, const supervisor_actor& sup, caf::timespan timeout, Ts&&... xs) {
  caf::scoped_actor self{sys};
  std::string err;
  self->request(sup, timeout, std::forward<Ts>(xs)...)
      .receive([](Reply&) {}, [&](caf::error& e) { err = sys.render(e); });
  return err;
}

}  // namespace

// -- status -----------------------------------------------------------------------------

nlohmann::json daemon::walk(const supervisor_actor& sup, const std::string& path) {
  nlohmann::json rows = nlohmann::json::array();
  caf::scoped_actor self{*system_};
  std::vector<child_info> children;
  self->request(sup, query_timeout, which_children_atom_v)
      .receive([&](std::vector<child_info>& all) { children = std::move(all); }, [](caf::error&) {});
  for (const auto& c : children) {
    std::string sub = path.empty() ? c.id : path + "/" + c.id;
    if (c.is_supervisor) {
      if (c.handle)
        for (auto& r : walk(caf::actor_cast<supervisor_actor>(c.handle), sub)) rows.push_back(std::move(r));
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
                    {"pid", c.pid},
                    {"uptime_ms", uptime},
                    {"restarts", c.automatic_restarts + c.manual_restarts},
                    {"last_exit", c.has_last_exit ? status_to_json(c.last_exit) : nlohmann::json(nullptr)},
                    {"reason", c.last_reason}});
  }
  return rows;
}

nlohmann::json daemon::status() { return {{"programs", walk(root_, "")}}; }

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
    rows.push_back({{"name", r.name}, {"group", r.group}, {"state", state}, {"pid", gone ? 0 : r.pid},
                    {"uptime_ms", 0}, {"restarts", r.restarts}, {"last_exit", r.last_exit}, {"reason", r.reason}});
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
                if (c.id == id && c.is_supervisor) next = caf::actor_cast<supervisor_actor>(c.handle);
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
  // Read-only, from the supervisors: not behind a stop that holds control_ for minutes.
  if (command == "status") return control_reply::success(status());
  std::lock_guard lock(control_);
  if (stopping_) return control_reply::failure("shutting_down", "pkit run is shutting down");
  if (command == "reload") return reload();
  if (command == "shutdown") {
    request_shutdown();
    return control_reply::success();
  }
  if (command == "add") return add(args);
  if (command == "start" || command == "stop" || command == "restart" || command == "signal" || command == "remove")
    return on_children(command, args);
  return control_reply::failure("unknown_command", "unknown command '" + command + "'");
}

control_reply daemon::on_children(const std::string& command, const nlohmann::json& args) {
  if (!args.is_object() || !args.contains("names") || !args["names"].is_array() || args["names"].empty())
    return control_reply::failure("bad_request", "'names' must be a non-empty array of program names");
  std::optional<int> sig;
  if (command == "signal" && !(sig = parse_signal(args.value("signal", nlohmann::json()))))
    return control_reply::failure("bad_request", "'signal' must be a signal name (\"TERM\") or number");
  auto spec = detail::spec_of(tree_);
  std::vector<target> targets;
  for (const auto& n : args["names"]) {
    if (!n.is_string()) return control_reply::failure("bad_request", "'names' must hold strings");
    std::vector<std::string> path;
    std::size_t before = targets.size();
    find_targets(spec, path, n.get<std::string>(), targets);
    if (targets.size() == before)
      return control_reply::failure("unknown_program", "no program or group named '" + n.get<std::string>() + "'");
  }
  nlohmann::json done = nlohmann::json::array();
  for (const auto& t : targets) {
    auto sup = supervisor_at(t.path);
    if (!sup) return control_reply::failure("unknown_program", "the group of '" + t.id + "' is not running");
    std::string err;
    if (command == "stop") err = ask<caf::ok_atom>(*system_, sup, change_timeout, terminate_child_atom_v, t.id);
    else if (command == "restart" || command == "start") err = ask<child_info>(*system_, sup, change_timeout, restart_child_atom_v, t.id);
    else if (command == "remove") {
      err = ask<caf::ok_atom>(*system_, sup, change_timeout, terminate_child_atom_v, t.id);
      if (err.empty()) err = ask<caf::ok_atom>(*system_, sup, query_timeout, delete_child_atom_v, t.id);
      if (err.empty())
        if (auto* g = group_at(tree_.root, t.path))
          std::erase_if(g->children, [&](const child_config& c) { return is_instance_of(t.id, c.name()); });
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
    if (!err.empty() && !(command == "start" && err.find("running") != std::string::npos))
      return control_reply::failure("failed", command + " " + join(t.path) + (t.path.empty() ? "" : "/") + t.id +
                                                  ": " + err);
    done.push_back(t.path.empty() ? t.id : join(t.path) + "/" + t.id);
  }
  return control_reply::success({{"done", done}});
}

control_reply daemon::add(const nlohmann::json& args) {
  if (!args.is_object() || !args.contains("toml") || !args["toml"].is_string())
    return control_reply::failure("bad_request", "'toml' must be a string holding [[program]]/[[group]] tables");
  auto path = split(args.value("group", std::string()));
  auto loaded = load_string(args["toml"].get<std::string>(), "<ctl add>", tree_.file.parent_path());
  if (!loaded) {
    std::string msg;
    for (const auto& e : loaded.errors) msg += (msg.empty() ? "" : "\n") + e.to_string();
    return control_reply::failure("invalid_config", msg);
  }
  group_config* g = group_at(tree_.root, path);
  auto sup = supervisor_at(path);
  if (g == nullptr || !sup) return control_reply::failure("unknown_group", "no group '" + join(path) + "'");
  std::set<std::string> taken;
  for (const auto& p : programs_of(tree_)) taken.insert(p.program->name);
  for (const auto& c : loaded.tree->root.children)
    if (taken.count(c.name()) != 0 || children_named(detail::spec_of(tree_), path, c.name()).size() != 0)
      return control_reply::failure("already_present", "'" + c.name() + "' exists already");
  try {
    configure_outputs(loaded.tree->root);
  } catch (const std::exception& e) {
    return control_reply::failure("invalid_config", std::string("cannot open a log file: ") + e.what());
  }
  auto spec = to_supervisor_spec(loaded.tree->root);
  detail::name_supervisors_by_path(spec, join(path));
  detail::keep_systemd_variables_to_pkit(spec);
  nlohmann::json added = nlohmann::json::array();
  for (auto& c : spec.children) {
    if (auto err = ask<child_info>(*system_, sup, change_timeout, start_child_atom_v, c); !err.empty())
      return control_reply::failure("start_failed", c.id + ": " + err);
    added.push_back(c.id);
  }
  for (auto& c : loaded.tree->root.children) g->children.push_back(std::move(c));
  return control_reply::success({{"added", added}});
}

// -- reload -----------------------------------------------------------------------------

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
    } catch (const std::exception& e) {
      reply = control_reply::failure("invalid_config", std::string("cannot open a log file: ") + e.what());
    }
  }
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
    for (const auto& s : children_named(old_spec, c.group, c.name)) {
      auto err = ask<caf::ok_atom>(*system_, sup, change_timeout, terminate_child_atom_v, s.id);
      if (err.empty()) err = ask<caf::ok_atom>(*system_, sup, query_timeout, delete_child_atom_v, s.id);
      if (!err.empty()) return s.id + ": " + err;
    }
    return {};
  };
  auto start_all = [&](const reload_plan::change& c) -> std::string {
    auto sup = supervisor_at(c.group);
    for (auto& s : children_named(new_spec, c.group, c.name))
      if (auto err = ask<child_info>(*system_, sup, change_timeout, start_child_atom_v, s); !err.empty()) return s.id + ": " + err;
    return {};
  };
  std::string errors;
  for (const auto& c : plan.removed)
    if (auto e = stop_all(c); !e.empty()) errors += e + "\n";
  for (const auto& c : plan.changed) {
    if (auto e = stop_all(c); !e.empty()) errors += e + "\n";
    else if (auto e2 = start_all(c); !e2.empty()) errors += e2 + "\n";
  }
  for (const auto& c : plan.added)
    if (auto e = start_all(c); !e.empty()) errors += e + "\n";
  tree_ = next;  // what runs now is the new file's tree, failures included
  shutdown_timeout_ms_ = tree_.settings.shutdown_timeout_ms;  // for the main loop, which never reads tree_
  nlohmann::json result{{"added", names(plan.added)},
                        {"removed", names(plan.removed)},
                        {"changed", names(plan.changed)},
                        {"unchanged", plan.unchanged}};
  if (!errors.empty()) return control_reply::failure("reload_incomplete", errors + result.dump());
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
  std::set<std::string> only;
  if (args.is_object() && args.contains("names") && args["names"].is_array())
    for (const auto& n : args["names"])
      if (n.is_string()) only.insert(n.get<std::string>());
  sink filtered = only.empty() ? std::move(to) : sink([only, to](const nlohmann::json& item) {
    for (const auto& n : only)
      if (is_instance_of(item.value("program", ""), n)) return to(item);
    return true;
  });
  std::lock_guard lock(mutex_);
  auto id = next_sink_++;
  sinks_.emplace(id, std::move(filtered));
  return std::make_unique<stream>(this, id);
}

}  // namespace pkit::tool
