// The daemon's side of log capture: every program whose stdout/stderr is "log" has its
// stream routed to its file (configure_outputs, before any run of it starts), and
// `ctl tail NAME` follows a program's captured lines (open_tail).

#include <pkit/tool/daemon.hpp>
#include "daemon_detail.hpp"
#include "tree_paths.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pkit::tool {

using detail::process_names;

namespace {

void configure_group(log_capture& capture, const group_config& g) {
  for (const auto& c : g.children) {
    if (c.is_group()) {
      configure_group(capture, c.group.front());
      continue;
    }
    for (const auto& name : process_names(*c.program)) {
      capture.configure(name, 1, c.program->stdout_spec);
      capture.configure(name, 2, c.program->stderr_spec);
    }
  }
}

// The program `name` names: a program, or one instance of one; either by its name or by
// its path as status shows it ("g/c", "g/w.2").
const program_config* find_program(const tree_config& tree, const std::string& path, std::vector<std::string>& procs) {
  const auto slash = path.rfind('/');
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  for (const auto& ref : programs_of(tree)) {
    if (slash != std::string::npos) {
      std::string groups;
      for (const auto& g : ref.groups) groups += (groups.empty() ? "" : "/") + g;
      if (groups != path.substr(0, slash)) continue;
    }
    for (const auto& proc : process_names(*ref.program)) {
      if (ref.program->name == name) {
        procs = process_names(*ref.program);
        return ref.program;
      }
      if (proc == name) {
        procs = {proc};
        return ref.program;
      }
    }
  }
  return nullptr;
}

}  // namespace

void daemon::configure_outputs(const group_config& root) { configure_group(*capture_, root); }

/// A tail's sink, shared by its listeners (the capture's reader thread) and the daemon,
/// which ends it when its program goes: one lock, so that the sink is never called
/// concurrently and nothing follows the end.
struct daemon::tail_sink {
  std::string name;                // as asked: a program, an instance, a path ("g/w.2")
  std::vector<std::string> procs;  // the processes it follows
  int only = 0;                    // 1: stdout, 2: stderr, 0: both
  std::mutex m;
  bool ended = false;
  sink to;
  bool send(const nlohmann::json& item) {
    std::lock_guard lock(m);
    return !ended && to(item);
  }
  void end() {
    std::lock_guard lock(m);
    if (ended) return;
    ended = true;
    to(nullptr);
  }
  // The stream is gone: the sink (the server's) is never called again.
  void drop() {
    std::lock_guard lock(m);
    ended = true;
    to = nullptr;
  }
};

/// A `tail` stream: one listener per process of the program. Destroying it unhooks them
/// and drops the sink (a pending end, see end_gone_tails, then does nothing).
class daemon::tail_stream final : public control_stream {
public:
  ~tail_stream() override {
    handles.clear();
    if (out) out->drop();
  }
  std::shared_ptr<tail_sink> out;
  std::vector<log_capture::listener_handle> handles;
};

namespace {

bool logs(const program_config& p, int only) {
  const bool out = p.stdout_spec.mode == output_spec::kind::log;
  const bool err = p.stderr_spec.mode == output_spec::kind::log;
  return only == 1 ? out : only == 2 ? err : out || err;
}

}  // namespace

void daemon::end_gone_tails() {
  std::lock_guard lock(tails_mutex_);
  for (auto it = tails_.begin(); it != tails_.end();) {
    auto t = it->lock();
    if (!t) {
      it = tails_.erase(it);
      continue;
    }
    // Still the same processes, still logging what it shows: it goes on. (A program
    // whose instances changed is another set of processes: its tail ends.)
    std::vector<std::string> now;
    const program_config* p = find_program(tree_, t->name, now);
    if (p != nullptr && now == t->procs && logs(*p, t->only)) {
      ++it;
      continue;
    }
    // Ended after the last output of every process it followed, not before it.
    auto left = std::make_shared<std::atomic<std::size_t>>(t->procs.size());
    for (const auto& proc : t->procs)
      capture_->when_closed(proc, [t, left] {
        if (left->fetch_sub(1) == 1) t->end();
      });
    it = tails_.erase(it);
  }
}

std::unique_ptr<control_stream> daemon::open_tail(const nlohmann::json& args, sink to, control_reply& error) {
  if (!args.is_object() || !args.contains("name") || !args["name"].is_string()) {
    error = control_reply::failure("bad_request", "'name' must be a program name");
    return nullptr;
  }
  const std::string name = args["name"].get<std::string>();
  const std::string which = args.value("stream", std::string("both"));
  if (which != "stdout" && which != "stderr" && which != "both") {
    error = control_reply::failure("bad_request", "'stream' must be \"stdout\", \"stderr\" or \"both\"");
    return nullptr;
  }
  const auto lines = args.value("lines", 10);
  std::vector<std::string> procs;
  std::lock_guard lock(control_);  // tree_ is replaced by reloads, under this lock
  const program_config* p = find_program(tree_, name, procs);
  if (p == nullptr) {
    error = control_reply::failure("unknown_program", "no program named '" + name + "'");
    return nullptr;
  }
  const bool out_logged = p->stdout_spec.mode == output_spec::kind::log;
  const bool err_logged = p->stderr_spec.mode == output_spec::kind::log;
  if ((which == "stdout" && !out_logged) || (which == "stderr" && !err_logged) || (!out_logged && !err_logged)) {
    error = control_reply::failure("not_captured", "'" + name + "' does not log " +
                                                       (which == "both" ? std::string("its output") : which) +
                                                       " (it goes to pkit's own or to /dev/null): set " +
                                                       (which == "stderr" ? "stderr" : "stdout") +
                                                       " = \"log\" in the file to tail it");
    return nullptr;
  }
  const int only = which == "stdout" ? 1 : which == "stderr" ? 2 : 0;
  auto item = [only](const std::string& proc, const captured_line& l) -> std::optional<nlohmann::json> {
    if (only != 0 && l.stream != only) return std::nullopt;
    return nlohmann::json{{"program", proc},
                          {"stream", l.stream == 1 ? "stdout" : "stderr"},
                          {"run", l.run},
                          {"line", l.text},
                          {"continued", l.continued}};
  };
  auto s = std::make_unique<tail_stream>();
  s->out = std::make_shared<tail_sink>();
  s->out->name = name;
  s->out->procs = procs;
  s->out->only = only;
  s->out->to = std::move(to);
  {
    std::lock_guard tails(tails_mutex_);
    std::erase_if(tails_, [](const auto& w) { return w.expired(); });  // tails that ended
    tails_.push_back(s->out);
  }
  for (const auto& proc : procs) {
    // The last `lines` lines first, handed over inside add_listener: no live line of
    // this process can come before or among them.
    const std::size_t keep = lines < 0 ? 0 : static_cast<std::size_t>(lines);
    s->handles.push_back(capture_->add_listener(
        proc,
        [proc, out = s->out, item](const captured_line& l) {
          if (auto j = item(proc, l)) out->send(*j);
        },
        [&](const std::vector<captured_line>& history) {
          std::vector<nlohmann::json> wanted;
          for (auto it = history.rbegin(); it != history.rend() && wanted.size() < keep; ++it)
            if (auto j = item(proc, *it)) wanted.push_back(std::move(*j));
          for (auto it = wanted.rbegin(); it != wanted.rend(); ++it) s->out->send(*it);
        }));
  }
  return s;
}

}  // namespace pkit::tool
