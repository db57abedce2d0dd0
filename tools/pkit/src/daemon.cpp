// The daemon's life: actor system, start, events, the main loop (signals, --for,
// watchdog), orderly and forced stops. Control requests are in daemon_control.cpp.

#include <pkit/tool/daemon.hpp>
#include "daemon_detail.hpp"

#include <pkit/actors/error.hpp>
#include <pkit/actors/scheduler.hpp>

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <systemd/sd-daemon.h>

#include <cerrno>
#include <csignal>
#include <cstdio>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace pkit::tool {

using namespace std::chrono;
using namespace pkit::actors;

namespace {

// Writes one line with one write(2), so that lines from several threads never mix.
void write_line(int fd, std::string line) {
  line += '\n';
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// What the event actor calls back; a plain struct so that the actor holds no daemon
// reference beyond these (the daemon outlives the actor: it exits it first).
struct hooks {
  std::function<void(const supervisor_event&)> event;
  std::function<void(const caf::error&)> down;
  std::function<void(bool, std::string)> stopped;
};

// Receives every event of the tree, watches the root and runs the orderly stop request
// (asynchronously, so the main loop stays free to see a second signal).
caf::behavior event_actor(caf::event_based_actor* self, std::shared_ptr<hooks> h) {
  self->set_down_handler([h](caf::down_msg& m) { h->down(m.reason); });
  return {
      [h](supervisor_event& e) { h->event(e); },
      [self](subscribe_atom, caf::actor root) { self->monitor(root); },
      [self, h](stop_atom, caf::actor root) {
        self->request(caf::actor_cast<supervisor_actor>(root), caf::infinite, stop_atom_v)
            .then([h](caf::ok_atom) { h->stopped(true, ""); },
                  [h](caf::error& err) { h->stopped(false, caf::to_string(err)); });
      },
  };
}

}  // namespace

namespace detail {

void name_supervisors_by_path(supervisor_spec& spec, const std::string& path) {
  for (auto& c : spec.children) {
    if (c.supervisor.empty()) continue;
    std::string sub = path.empty() ? c.id : path + "/" + c.id;
    c.supervisor.front().name = sub;
    name_supervisors_by_path(c.supervisor.front(), sub);
  }
}

// systemd's variables are pkit run's, not its programs': a program that speaks sd_notify
// must not pass for pkit (a program with `readiness = "notify"` gets a socket of its own
// from libpkit). A value the file sets explicitly is kept.
void keep_systemd_variables_to_pkit(supervisor_spec& spec) {
  static const char* const names[] = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};
  for (auto& c : spec.children) {
    if (!c.supervisor.empty()) {
      keep_systemd_variables_to_pkit(c.supervisor.front());
      continue;
    }
    if (c.process.notify_socket) continue;
    for (const char* name : names) {
      std::string prefix = std::string(name) + "=";
      bool set = false;
      for (const auto& e : c.process.env) set = set || e.rfind(prefix, 0) == 0 || e == name;
      if (!set) c.process.env.emplace_back(name);  // "NAME" removes it
    }
  }
}

supervisor_spec spec_of(const tree_config& tree) {
  auto spec = to_supervisor_spec(tree);
  spec.name = tree.settings.name;  // the daemon keeps the first one: see root_name_
  name_supervisors_by_path(spec, "");
  keep_systemd_variables_to_pkit(spec);
  return spec;
}

void notify(const std::string& state) { ::sd_notify(0, state.c_str()); }

}  // namespace detail

daemon::daemon(tree_config tree, daemon_options options, guardian* keeper)
    : tree_(std::move(tree)), root_name_(tree_.settings.name), options_(options), keeper_(keeper) {
  cfg_ = std::make_unique<caf::actor_system_config>();
  actors::init(*cfg_);
  actors::use_pkit_scheduler(*cfg_);
  system_ = std::make_unique<caf::actor_system>(*cfg_);
  capture_ = std::make_shared<log_capture>();
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  auto h = std::make_shared<hooks>();
  h->event = [this](const supervisor_event& e) { on_event(e); };
  h->down = [this](const caf::error& r) { on_root_down(r); };
  h->stopped = [this](bool ok, std::string why) { on_stopped(ok, why); };
  // Detached: its writes to stderr may block (a full pipe, a stopped terminal) without
  // holding one of the CAF workers the supervisors run on.
  events_ = system_->spawn<caf::detached>(event_actor, h);
}

daemon::~daemon() {
  if (root_) caf::anon_send_exit(root_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(events_, caf::exit_reason::user_shutdown);
  root_ = nullptr;
  events_ = nullptr;
  // The capture is keyed by the system: removed before it ends (a start racing this
  // fails at stage "capture"), drained once every program is gone.
  actors::set_output_capture(*system_, nullptr);
  system_.reset();  // waits for every actor, hence for the processes' stops
  capture_->stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::optional<std::string> daemon::start() {
  try {
    configure_outputs(tree_.root);
  } catch (const std::exception& e) {
    return std::string("cannot open a log file: ") + e.what();
  }
  actors::set_output_capture(*system_, capture_);
  detail::notify("STATUS=starting " + tree_.settings.name);
  auto started = start_supervisor(*system_, detail::spec_of(tree_), duration_cast<milliseconds>(options_.start_timeout),
                                  nullptr, {{events_, all_events, true}});
  if (!started) {
    std::string why = system_->render(started.error());
    if (auto f = start_failure_of(started.error())) why = f->text;
    return why;
  }
  root_ = *started;
  started_ = true;
  caf::anon_send(events_, subscribe_atom_v, caf::actor_cast<caf::actor>(root_));
  std::uint64_t usec = 0;
  if (tree_.settings.watchdog_ms > 0) watchdog_period_ = milliseconds(tree_.settings.watchdog_ms);
  else if (::sd_watchdog_enabled(0, &usec) > 0) watchdog_period_ = duration_cast<milliseconds>(microseconds(usec));
  next_watchdog_ = steady_clock::now();
  detail::notify("READY=1\nSTATUS=running " + tree_.settings.name);
  return std::nullopt;
}

std::string daemon::group_of(const std::string& supervisor) const {
  return supervisor == root_name_ ? std::string() : supervisor;
}

void daemon::on_event(const supervisor_event& e) {
  auto now = system_clock::now();
  std::string group = group_of(e.supervisor);
  auto j = event_to_json(e, group, now);
  write_line(options_.event_fd,
             options_.format == log_format::json ? j.dump() : event_to_human(e, group, now, options_.colour));
  std::string key = group.empty() ? e.child : group + "/" + e.child;
  std::lock_guard lock(mutex_);
  auto [it, fresh] = rows_.try_emplace(key);
  row& r = it->second;
  if (fresh) {
    row_order_.push_back(key);
    r.name = e.child;
    r.group = group;
  }
  r.state = detail::state_after(e.kind, r.state);
  switch (e.kind) {
    case event_kind::started:
      r.pid = e.pid;
      r.started = steady_clock::now();
      r.is_group = e.pid == 0;
      if (e.pid > 0) {
        live_groups_.insert(e.pid);
        if (keeper_ != nullptr) keeper_->watch(e.pid);
      }
      break;
    case event_kind::exited:
    case event_kind::stopped:
      if (e.has_status) r.last_exit = status_to_json(e.status);
      if (r.pid > 0) {
        live_groups_.erase(r.pid);
        if (keeper_ != nullptr) keeper_->unwatch(r.pid);
      }
      r.pid = 0;
      break;
    case event_kind::restarting: ++r.restarts; break;
    default: break;
  }
  if (!e.reason.empty()) r.reason = e.reason;
  for (auto s = sinks_.begin(); s != sinks_.end();) s = s->second(j) ? std::next(s) : sinks_.erase(s);
}

void daemon::wake() noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void daemon::on_root_down(const caf::error& reason) {
  if (stopped_) return;
  {
    std::lock_guard lock(mutex_);
    down_reason_ = reason ? system_->render(reason) : "normal";
  }
  root_down_ = true;
  wake();
}

void daemon::on_stopped(bool ok, const std::string& why) {
  if (!ok) {
    std::lock_guard lock(mutex_);
    down_reason_ = why;
  }
  stop_ok_ = ok;
  stopped_ = true;
  wake();
}

void daemon::request_shutdown() noexcept {
  shutdown_requested_ = true;
  wake();
}

void daemon::begin_stop(const char* why) {
  if (stopping_) return;
  stopping_ = true;
  if (tree_.settings.shutdown_timeout_ms >= 0)
    stop_deadline_ = steady_clock::now() + milliseconds(tree_.settings.shutdown_timeout_ms);
  detail::notify("STOPPING=1\nSTATUS=stopping");
  write_line(options_.event_fd, std::string("pkit: shutting down (") + why + "; signal again to force)");
  caf::anon_send(events_, stop_atom_v, caf::actor_cast<caf::actor>(root_));
}

void daemon::force_stop() {
  write_line(options_.event_fd, "pkit: forced stop: killing every process of the tree");
  std::lock_guard lock(mutex_);
  for (pid_t g : live_groups_) ::kill(-g, SIGKILL);
}

void daemon::watchdog_tick() {
  if (watchdog_period_.count() <= 0 || steady_clock::now() < next_watchdog_) return;
  next_watchdog_ = steady_clock::now() + watchdog_period_ / 2;
  // Only while the root answers: a hung supervisor must let systemd's watchdog fire.
  caf::scoped_actor self{*system_};
  bool alive = false;
  self->request(root_, watchdog_period_ / 4, count_children_atom_v)
      .receive([&](child_counts&) { alive = true; }, [](caf::error&) {});
  if (alive) detail::notify("WATCHDOG=1");
}

bool daemon::on_signal(int signo) {
  if (signo == SIGHUP) {
    if (stopping_) return false;
    std::lock_guard lock(control_);
    auto r = reload();
    write_line(options_.event_fd, "pkit: reload: " + (r.ok ? r.result.dump() : r.code + ": " + r.message));
    return false;
  }
  if (stopping_) {  // the second SIGTERM/SIGINT
    force_stop();
    return true;
  }
  begin_stop(::sigabbrev_np(signo));
  return false;
}

std::optional<int> daemon::outcome() {
  std::lock_guard lock(mutex_);
  if (stopped_) {
    if (!stop_ok_) write_line(options_.event_fd, "pkit: the stop failed: " + down_reason_);
    return stop_ok_ ? exit_clean : exit_failed;
  }
  if (root_down_ && !stopping_) {
    write_line(options_.event_fd, "pkit: the root supervisor ended: " + down_reason_);
    return exit_failed;
  }
  return std::nullopt;
}

int daemon::run(int signal_fd, bool& forced) {
  forced = false;
  const auto never = steady_clock::time_point::max();
  auto deadline = options_.run_for ? steady_clock::now() + *options_.run_for : never;
  for (;;) {
    auto until = std::min(stopping_ ? stop_deadline_ : deadline, watchdog_period_.count() > 0 ? next_watchdog_ : never);
    int timeout = until == never ? -1
                                 : static_cast<int>(std::max<std::int64_t>(
                                       0, duration_cast<milliseconds>(until - steady_clock::now()).count() + 1));
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    int n = ::poll(fds, signal_fd >= 0 ? 2 : 1, timeout);
    if (n < 0 && errno != EINTR) return exit_failed;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      std::uint64_t v;
      [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
    }
    signalfd_siginfo si{};
    if (n > 0 && signal_fd >= 0 && (fds[1].revents & POLLIN) &&
        ::read(signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si) &&
        on_signal(static_cast<int>(si.ssi_signo))) {
      forced = true;
      return exit_failed;
    }
    if (auto code = outcome()) return *code;
    if (shutdown_requested_ && !stopping_) begin_stop("shutdown requested");
    if (!stopping_ && steady_clock::now() >= deadline) begin_stop("--for elapsed");
    if (stopping_ && steady_clock::now() >= stop_deadline_) {
      write_line(options_.event_fd, "pkit: the stop outlasted the shutdown timeout");
      force_stop();
      forced = true;
      return exit_failed;
    }
    if (!stopping_) watchdog_tick();
  }
}

}  // namespace pkit::tool
