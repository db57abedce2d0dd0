// The daemon's life: actor system, start, events, the main loop (signals, --for,
// watchdog), orderly and forced stops. Control requests are in daemon_control.cpp.

#include <pkit/tool/daemon.hpp>
#include <pkit/tool/ctl_format.hpp>
#include "daemon_detail.hpp"
#include "line_writer.hpp"
#include "systemd_notify.hpp"

#include <pkit/actors/error.hpp>
#include <pkit/actors/scheduler.hpp>

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

namespace pkit::tool {

using namespace std::chrono;
using namespace pkit::actors;

namespace {

// The signal waiting on `fd` (a signalfd), or 0 when none is there (no wait).
int pending_signal(int fd) {
  if (fd < 0) return 0;
  pollfd p{fd, POLLIN, 0};
  signalfd_siginfo si{};
  if (::poll(&p, 1, 0) == 1 && ::read(fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si))
    return static_cast<int>(si.ssi_signo);
  return 0;
}

// What the event actor calls back; a plain struct so that the actor holds no daemon
// reference beyond these (the daemon outlives the actor: it exits it first).
struct hooks {
  std::function<void(const supervisor_event&)> event;
  std::function<void(const std::string&)> down;  // the root's exit reason, rendered ("normal": none)
  std::function<void(bool, std::string)> stopped;
};

// Receives every event of the tree, watches the root and runs the orderly stop request
// (asynchronously, so the main loop stays free to see a second signal).
caf::behavior event_actor(caf::event_based_actor* self, std::shared_ptr<hooks> h) {
  // Rendered here, with the actor's own system: the daemon's system_ pointer is already
  // null while ~daemon destroys the system, and the root's down may come then.
  self->set_down_handler(
      [self, h](caf::down_msg& m) { h->down(m.reason ? self->system().render(m.reason) : std::string("normal")); });
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
    // A program on a node starts from that node's clean environment, never ours (and
    // the node refuses variables its allow-list does not name).
    if (c.process.notify_socket || !c.nodes.empty()) continue;
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

}  // namespace detail

daemon::daemon(tree_config tree, daemon_options options, guardian* keeper)
    : tree_(std::move(tree)),
      root_name_(tree_.settings.name),
      options_(options),
      keeper_(keeper),
      shutdown_timeout_ms_(tree_.settings.shutdown_timeout_ms) {
  publish_tree();  // before any request can come
  out_ = detail::line_writer::start(options_.event_fd);
  cfg_ = std::make_unique<caf::actor_system_config>();
  if (!tree_.nodes.empty()) {
    links_ = detail::open_node_links(tree_, *cfg_, setup_error_);
    // start() reports a refusal and starts nothing; the system is then a plain one (the
    // refused configuration may have loaded CAF's modules already).
    if (setup_error_) cfg_ = std::make_unique<caf::actor_system_config>();
  }
  const bool links = !tree_.nodes.empty() && !setup_error_;
  if (!links) actors::init(*cfg_);  // prepare_links registered pkit's types itself
  actors::use_pkit_scheduler(*cfg_);
  system_ = std::make_unique<caf::actor_system>(*cfg_);
  if (links) setup_error_ = links_->start(*system_, tree_);
  capture_ = std::make_shared<log_capture>();
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  auto h = std::make_shared<hooks>();
  h->event = [this](const supervisor_event& e) { on_event(e); };
  h->down = [this](const std::string& why) { on_root_down(why); };
  h->stopped = [this](bool ok, std::string why) { on_stopped(ok, why); };
  // Detached: the sinks of `ctl events` run under mutex_ in it; that must not hold one
  // of the CAF workers the supervisors run on.
  events_ = system_->spawn<caf::detached>(event_actor, h);
  reload_thread_ = std::thread([this] { reload_loop(); });
}

daemon::~daemon() {
  {
    std::lock_guard lock(reload_mutex_);
    reload_quit_ = true;
  }
  reload_wake_.notify_one();
  reload_thread_.join();  // a reload under way ends: the tree is stopped (or _exit came)
  if (root_) caf::anon_send_exit(root_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(events_, caf::exit_reason::user_shutdown);
  root_ = nullptr;
  events_ = nullptr;
  // Supervisors hold the directory by pointer and may run until the system is gone (a
  // start cancelled or timed out leaves root_ empty): its actor ends now, the object
  // only after the system.
  if (links_) links_->shutdown();
  // The capture is keyed by the system: removed before it ends (a start racing this
  // fails at stage "capture"), drained once every program is gone.
  actors::set_output_capture(*system_, nullptr);
  system_.reset();  // waits for every actor, hence for the processes' stops
  links_.reset();
  capture_->stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  out_->flush(seconds(1));  // the last lines, unless nobody reads them
  out_->close();
}

void daemon::say(std::string line) noexcept { out_->write(std::move(line)); }

void daemon::flush_events(milliseconds grace) noexcept { out_->flush(grace); }

std::optional<std::string> daemon::start(int signal_fd, bool& forced) {
  forced = false;
  if (setup_error_) return *setup_error_;
  try {
    configure_outputs(tree_.root);
  } catch (const std::exception& e) {
    return std::string("cannot open a log file: ") + e.what();
  }
  actors::set_output_capture(*system_, capture_);
  warn_of_terminal_stdin(tree_);
  detail::notify("STATUS=starting " + tree_.settings.name);
  // start_supervisor's wait, here, so that signals are seen during the start: the
  // waiter is the supervisor's parent for the start (told child_ready once it is up).
  caf::scoped_actor waiter{*system_};
  supervisor_options options;
  options.place = links_ ? links_->place() : nullptr;
  options.observer = process_observer{caf::actor_cast<caf::actor>(waiter), "pkit run"};
  options.subscribers = {{events_, all_events, true}};
  auto sup = spawn_supervisor(*system_, detail::spec_of(tree_), std::move(options));
  waiter->monitor(sup);
  if (auto why = await_start(waiter, sup, signal_fd, forced)) return why;
  waiter->demonitor(sup.address());
  root_ = sup;
  started_ = true;
  caf::anon_send(events_, subscribe_atom_v, caf::actor_cast<caf::actor>(root_));
  if (tree_.settings.watchdog_ms > 0) watchdog_period_ = milliseconds(tree_.settings.watchdog_ms);
  else watchdog_period_ = duration_cast<milliseconds>(detail::systemd_watchdog());
  next_watchdog_ = steady_clock::now();
  detail::notify("READY=1\nSTATUS=running " + tree_.settings.name);
  // The SIGHUP that came during the start, last: the reload thread writes tree_ (under
  // control_, which this thread does not hold), and its RELOADING=1 must follow READY=1.
  if (reload_after_start_) on_signal(SIGHUP);
  return std::nullopt;
}

// A program that shares pkit run's stdin where that is pkit run's controlling terminal
// runs in a process group of its own, never the terminal's foreground one: its first read
// stops it (SIGTTIN) for good. Said, not refused: a program may inherit stdin and never
// read it. Only the controlling terminal of pkit run's session stops a reader: another
// terminal does not, nor a pty master (whose tcgetpgrp answers the slave's group).
void daemon::warn_of_terminal_stdin(const tree_config& tree, const std::function<bool(const program_ref&)>& which) {
  const pid_t session = ::tcgetsid(STDIN_FILENO);
  if (session == -1 || session != ::getsid(0) || ::isatty(STDIN_FILENO) != 1) return;
  for (const program_ref& r : programs_of(tree))
    if (r.program->stdin_mode == program_config::input::inherit && (!which || which(r)))
      say("pkit: warning: '" + r.program->name + "' has stdin = \"inherit\" and pkit run's stdin is its controlling "
          "terminal: in a process group of its own, the program is stopped (SIGTTIN) when it reads");
}

std::optional<std::string> daemon::await_start(caf::scoped_actor& waiter, const supervisor_actor& sup, int signal_fd,
                                               bool& forced) {
  auto deadline = steady_clock::now() + options_.start_timeout;
  std::string cancelled;  // the signal that cancelled the start
  for (;;) {
    bool ready = false;
    caf::error failure;
    waiter->receive([&](child_ready_atom, std::string&, std::uint64_t, std::int32_t) { ready = true; },
                    [&](caf::down_msg& dm) {
                      failure = dm.reason ? std::move(dm.reason)
                                          : caf::make_error(error::start_failed, "the supervisor ended during its start");
                    },
                    caf::after(milliseconds(50)) >> [] {});
    if (ready && cancelled.empty()) return std::nullopt;
    if (failure && !cancelled.empty()) return "the start was cancelled by SIG" + cancelled;
    if (failure) {
      if (auto f = start_failure_of(failure)) return f->text;
      return system_->render(failure);
    }
    int sig = pending_signal(signal_fd);
    bool stop_signal = sig == SIGTERM || sig == SIGINT;
    if (stop_signal && !cancelled.empty()) {
      caf::anon_send_exit(sup, caf::exit_reason::kill);
      force_stop();
      forced = true;
      return "the start was cancelled, then forced by SIG" + std::string(::sigabbrev_np(sig));
    }
    if (stop_signal) {
      // Stops what started, in order, as a stop request would (the supervisor's parent
      // for the start is the waiter: its exit message is obeyed).
      cancelled = ::sigabbrev_np(sig);
      say("pkit: start cancelled by SIG" + cancelled + ": stopping what started (signal again to force)");
      caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
      const std::int64_t limit = shutdown_timeout_ms_;
      deadline = limit >= 0 ? steady_clock::now() + milliseconds(limit) : steady_clock::time_point::max();
    } else if (sig == SIGHUP && !reload_after_start_ && cancelled.empty()) {
      // Kept, not dropped: the file may have been edited during a slow start, and a
      // reload asked for must not be lost (systemd queues one behind a start too).
      reload_after_start_ = true;
      say("pkit: SIGHUP during the start: reloading once the tree is up");
    }
    if (steady_clock::now() < deadline) continue;
    // OTP's start_link with a timeout: the supervisor is killed (its children with it).
    caf::anon_send_exit(sup, caf::exit_reason::kill);
    if (cancelled.empty()) return system_->render(caf::make_error(caf::sec::request_timeout));
    force_stop();
    forced = true;
    return std::string("the cancelled start outlasted the shutdown timeout");
  }
}

std::string daemon::group_of(const std::string& supervisor) const {
  return supervisor == root_name_ ? std::string() : supervisor;
}

void daemon::on_event(const supervisor_event& e) {
  auto now = system_clock::now();
  std::string group = group_of(e.supervisor);
  auto j = event_to_json(e, group, now);
  say(options_.format == log_format::json ? json_line(j) : event_to_human(e, group, now, options_.colour));
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
      r.node = e.node;
      r.started = steady_clock::now();
      r.is_group = e.pid == 0;
      // A remote run's pid is its node's: never a process group of this machine to kill
      // when pkit run dies or forces its stop (its node stops it when we are gone).
      if (e.pid > 0 && e.node.empty()) {
        live_groups_.insert(e.pid);
        if (keeper_ != nullptr) keeper_->watch(e.pid);
      }
      break;
    case event_kind::exited:
    case event_kind::stopped:
      if (e.has_status) r.last_exit = status_to_json(e.status);
      if (e.kind == event_kind::stopped && stopping_ && e.reason.starts_with(actors::stop_timeout_reason))
        killed_at_stop_.push_back(key);
      if (r.pid > 0 && r.node.empty()) {
        live_groups_.erase(r.pid);
        if (keeper_ != nullptr) keeper_->unwatch(r.pid);
      }
      r.pid = 0;
      break;
    case event_kind::restarting: ++r.restarts; break;
    default: break;
  }
  // An end says why it happened, or that nothing special did (no stale reason stays).
  if (e.kind == event_kind::exited || e.kind == event_kind::stopped) r.reason = e.reason;
  else if (!e.reason.empty()) r.reason = e.reason;
  for (auto s = sinks_.begin(); s != sinks_.end();) s = s->second(j) ? std::next(s) : sinks_.erase(s);
}

void daemon::wake() noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void daemon::on_root_down(const std::string& reason) {
  if (stopped_) return;
  {
    std::lock_guard lock(mutex_);
    down_reason_ = reason;
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
  const std::int64_t limit = shutdown_timeout_ms_;
  if (limit >= 0) stop_deadline_ = steady_clock::now() + milliseconds(limit);
  detail::notify("STOPPING=1\nSTATUS=stopping");
  say(std::string("pkit: shutting down (") + why + "; signal again to force)");
  caf::anon_send(events_, stop_atom_v, caf::actor_cast<caf::actor>(root_));
}

void daemon::force_stop() {
  {
    std::lock_guard lock(mutex_);
    for (pid_t g : live_groups_) ::kill(-g, SIGKILL);
  }
  say("pkit: forced stop: killing every process of the tree");  // after: saying may wait
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
    // Never here: a reload takes control_, which a control request may hold for long.
    if (stopping_) return false;
    {
      std::lock_guard lock(reload_mutex_);
      reload_pending_ = true;  // several SIGHUPs before it runs: one reload
    }
    reload_wake_.notify_one();
    return false;
  }
  if (stopping_) {  // the second SIGTERM/SIGINT
    force_stop();
    return true;
  }
  begin_stop(::sigabbrev_np(signo));
  return false;
}

void daemon::reload_loop() {
  std::unique_lock lock(reload_mutex_);
  for (;;) {
    reload_wake_.wait(lock, [this] { return reload_pending_ || reload_quit_; });
    if (reload_quit_) return;
    reload_pending_ = false;
    lock.unlock();
    {
      std::lock_guard control(control_);
      if (!stopping_) {
        auto r = reload();
        say("pkit: reload: " + (r.ok ? r.result.dump() : r.code + ": " + printable(r.message, true)));
      }
    }
    lock.lock();
  }
}

std::optional<int> daemon::outcome() {
  std::lock_guard lock(mutex_);
  if (stopped_) {
    if (!stop_ok_) say("pkit: the stop failed: " + printable(down_reason_));
    if (stop_ok_ && !killed_at_stop_.empty()) {
      // Every program is gone, but not all went as asked: the stop had to be forced.
      std::string names;
      for (const auto& n : killed_at_stop_) names += (names.empty() ? "" : ", ") + n;
      say("pkit: the stop had to kill what outlived its stop_timeout: " + names);
      return exit_killed_at_stop;
    }
    return stop_ok_ ? exit_clean : exit_failed;
  }
  if (root_down_ && !stopping_) {
    say("pkit: the root supervisor ended: " + printable(down_reason_));
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
      say("pkit: the stop outlasted the shutdown timeout");
      force_stop();
      forced = true;
      return exit_failed;
    }
    if (!stopping_) watchdog_tick();
  }
}

}  // namespace pkit::tool
