#include <pkit/actors/process_actor.hpp>

#include <pkit/actors/error.hpp>
#include <pkit/actors/output_capture.hpp>
#include <pkit/process.hpp>

#include "launcher.hpp"
#include "lookup_job.hpp"
#include "send_from.hpp"
#include "timer_relay.hpp"

#include <caf/actor_cast.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

namespace pkit::actors {
namespace {

// The actor's internal messages. Private types of this file, not serializable: only code
// here can make them, and no remote node can send them (see the public interface's doc).
/// pkit's reaper thread: run `run` of the child ended with `status`.
struct exit_report {
  std::uint64_t run;
  exit_status status;
};
/// pkit's reaper thread: run `run` became ready (`err` empty) or failed to.
struct ready_report {
  std::uint64_t run;
  caf::error err;
};
/// A delayed message to self: run `run` is not ready by its readiness deadline.
struct deadline_report {
  std::uint64_t run;
};
/// A launcher thread of pkit's: launch number `launch` (a fork-server target's start) is
/// done; the process comes back with it (launcher.hpp).
struct launch_report {
  std::uint64_t launch;
  std::shared_ptr<detail::process_parcel> parcel;
  pid_t pid;
  std::error_code ec;
};
/// A launcher thread of pkit's: launch number `launch`'s lookup of the user and group the
/// program runs as is done (launcher.hpp).
struct lookup_report {
  std::uint64_t launch;
  identity who;
};
/// A delayed message to self: launch `launch`'s lookup is not done by its deadline.
struct lookup_deadline {
  std::uint64_t launch;
};

}  // namespace
}  // namespace pkit::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::actors::exit_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::actors::ready_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::actors::deadline_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::actors::launch_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::actors::lookup_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pkit::actors::lookup_deadline)

namespace pkit::actors {
namespace {

/// The handle the actor is spawned as: the public interface plus the internal reports.
/// Only this file holds it; everyone else gets the `process_actor` it converts to.
using private_process_actor = process_actor::extend<caf::reacts_to<exit_report>,
                                                    caf::reacts_to<ready_report>,
                                                    caf::reacts_to<deadline_report>,
                                                    caf::reacts_to<launch_report>,
                                                    caf::reacts_to<lookup_report>,
                                                    caf::reacts_to<lookup_deadline>>;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

stop_policy policy_of(const process_spec& spec) {
  stop_policy p;
  p.signal = spec.stop_signal;
  p.kill_group = spec.kill_group;
  p.timeout = spec.stop_timeout_ms < 0 ? stop_policy::infinite
                                       : std::chrono::milliseconds(spec.stop_timeout_ms);
  return p;
}

const std::string& program_of(const process_spec& spec) {
  return spec.argv.empty() ? spec.target : spec.argv.front();
}

stdio stream_of(const std::string& path) {
  if (path.empty()) return stdio::inherit();
  if (path == "null") return stdio::null();
  if (path == capture_stream) return stdio::pipe();
  return stdio::file(path, true);
}

stdio input_of(const std::string& path) {
  if (path.empty()) return stdio::inherit();
  if (path == "null") return stdio::null();
  return stdio::file(path);  // read-only for stdin
}

bool captures_output(const process_spec& spec) {
  return spec.stdout_path == capture_stream || spec.stderr_path == capture_stream;
}

// The structured context of a start_failed error: libpkit's spawn_failure when there is
// one (stage, errno), else the bare error code.
start_failure failure_of(const std::string& name, const std::string& program, const process& p,
                         std::error_code ec) {
  start_failure out;
  out.name = name;
  out.program = program;
  std::error_code code = ec;
  if (auto f = p.last_failure()) {
    if (!f->program.empty()) out.program = f->program;
    out.stage = f->stage;
    code = f->error;
    out.text = f->to_string();
  } else {
    out.text = "cannot start '" + out.program + "': " + ec.message();
  }
  if (code.category() == std::system_category() || code.category() == std::generic_category())
    out.errno_value = code.value();
  return out;
}

caf::error spec_error(const std::string& what) { return caf::make_error(error::invalid_spec, what); }

struct process_actor_state {
  static inline const char* name = "pkit.process";

  process_spec spec;
  const fork_server* server = nullptr;
  // The observer by address (a supervisor holds a strong handle to us: a strong one back
  // would be a cycle that keeps both, and the actor system, alive once released).
  struct {
    caf::actor_addr actor;
    std::string id;
    std::function<void(pid_t)> on_started;
  } observer;

  std::unique_ptr<process> proc;
  caf::actor timers;  // see timer_relay.hpp
  process_state state = process_state::idle;
  std::uint64_t incarnation = 0;
  std::int32_t pid = 0;
  std::int64_t started_at_ns = 0;
  std::optional<exit_status> last;
  bool stop_requested = false;
  // A start that may wait on something outside the program (launcher.hpp) has a part on
  // a launcher thread of pkit's: a fork-server target's whole start — the launcher has the
  // process meanwhile (`proc` is empty) —, or the lookup of the user and group a program
  // runs as — then the spawn follows here. Requests made during a start's launch are
  // applied once it is done; reports of the new run that overtake the launch report are
  // held until then. A stop during a lookup ends the start at once: nothing was spawned.
  struct launch_state {
    bool active = false;
    bool lookup = false;                       // the launch is a lookup: `proc` stays here
    std::uint64_t number = 0;                  // launches so far: names the current one
    process_state state_before = process_state::idle;
    enum class pending : std::uint8_t { none, stop, kill } then = pending::none;
    detail::cancel_flag cancelled;             // tells the job that its actor no longer wants it
    // A lookup's deadline, which is the start's readiness deadline too: the lookup counts
    // toward ready_timeout_ms, the readiness wait gets what is left of it.
    std::optional<std::chrono::steady_clock::time_point> deadline;
    std::vector<ready_report> ready;
    std::vector<exit_report> exits;
  } launch;
  // The last lookup posted, which the next start adopts while it is still in flight: one
  // lookup per actor in the name service, however often a hung one makes it restart.
  std::shared_ptr<detail::lookup_job> lookup;
  std::vector<caf::typed_response_promise<std::int32_t>> start_waiters;
  std::vector<caf::typed_response_promise<exit_status>> exit_waiters;

  // True while a run is starting (including its launch), running or being stopped.
  bool in_progress() const {
    return state == process_state::starting || state == process_state::running ||
           state == process_state::stopping;
  }

  // The one stop algorithm is libpkit's (process::stop_async): it sends each signal once
  // per run — a stop already under way is not begun again —, escalates at the deadline
  // on pkit's reaper thread, and with kill_group collects the child only once the rest of
  // its process group is gone. The actor never waits for any of it.
  void begin_stop() noexcept {
    std::error_code ec;
    if (proc) proc->stop_async(policy_of(spec), ec);
    // No memory for the deadline's timer: SIGKILL now (that needs none) rather than never.
    if (ec == std::errc::not_enough_memory) kill_now();
  }

  // SIGKILL now — to the group only with kill_group —, joining a stop under way.
  void kill_now() noexcept {
    stop_policy now = policy_of(spec);
    now.timeout = std::chrono::milliseconds(0);
    std::error_code ignored;
    if (proc) proc->stop_async(now, ignored);
  }

  ~process_actor_state() {
    // A launch job not yet begun starts nothing for an actor that is gone.
    if (launch.active && launch.cancelled) launch.cancelled->store(true);
    try {
      // The relay ends with us, while the system runs: left to die when CAF's clock drops
      // its pending messages at shutdown, many relays at once deadlock that clock.
      if (timers) caf::anon_send_exit(timers, caf::exit_reason::user_shutdown);
      // Nobody waits forever for an actor that is gone.
      for (auto& rp : start_waiters) rp.deliver(caf::make_error(error::shutting_down, spec.name));
      for (auto& rp : exit_waiters) rp.deliver(caf::make_error(error::shutting_down, spec.name));
    } catch (...) {
      // Out of memory: the waiters' requests end with their own timeouts.
    }
    // The child must not outlive its actor, and the actor must not wait for its stop:
    // libpkit stops it with the spec's policy (unless a stop is under way already) and
    // destroys the process on its reaper thread once the run is collected.
    process::release(std::move(proc));
  }
};

using self_pointer = private_process_actor::stateful_pointer<process_actor_state>;

bool ready_at_start(const process_spec& spec) {
  return !spec.argv.empty() && spec.notify_fd < 0 && !spec.notify_socket;
}

// Builds the libpkit process on first start. Its callbacks run on pkit's reaper thread and
// only send messages; they hold a weak reference, so the process does not keep the actor.
caf::error make_process(self_pointer self) {
  auto& st = self->state;
  const process_spec& spec = st.spec;
  // What a supervisor would refuse of this spec (a lone actor's spec comes unchecked).
  if (auto invalid = check_process_spec(spec)) return invalid;
  process_options o;
  o.name = spec.name;
  o.in = input_of(spec.stdin_path);
  o.out = stream_of(spec.stdout_path);
  o.err = stream_of(spec.stderr_path);
  o.new_process_group = spec.new_process_group;
  // Started on a CAF worker, which lives until the actor system ends — after its
  // process actors, and so their children, are gone.
  o.spawn_on_calling_thread = true;
  if (spec.notify_fd >= 0) o.notify_fd = spec.notify_fd;
  o.notify_socket = spec.notify_socket;
  o.user = spec.user;
  o.group = spec.group;
  for (const rlimit_spec& l : spec.rlimits)  // rlimit_spec::unlimited is RLIM_INFINITY
    o.rlimits.push_back({l.resource, static_cast<rlim_t>(l.soft), static_cast<rlim_t>(l.hard)});
  o.stop = policy_of(spec);
  caf::actor_addr addr = self->address();
  // Also runs for a process released by a dead actor: then the address leads nowhere.
  o.on_exit = [addr](process& p) {
    if (auto h = caf::actor_cast<private_process_actor>(addr))
      caf::anon_send(h, exit_report{p.runs(), p.status().value_or(exit_status::lost())});
  };
  // A program without notify_fd / notify_socket is ready once start() returns (it has exec'd: an exec
  // failure is start()'s error), so only the other kinds wait for an on_ready report —
  // two thread hand-offs fewer on every (re)start of a plain program.
  if (!ready_at_start(spec)) o.on_ready = [addr, name = spec.name, program = program_of(spec)](
                                               process& p, std::error_code ec) {
    caf::error err;
    if (ec == pkit::errc::died_before_ready) {
      auto f = p.last_failure();
      err = caf::make_error(error::died_before_ready, f ? f->to_string() : ec.message());
    } else if (ec) {
      err = caf::make_error(error::start_failed, failure_of(name, program, p, ec));
    }
    if (auto h = caf::actor_cast<private_process_actor>(addr))
      caf::anon_send(h, ready_report{p.runs(), std::move(err)});
  };

  if (!spec.argv.empty()) {
    command cmd{spec.argv};
    cmd.env = spec.env;
    cmd.clear_env = spec.clear_env;
    cmd.cwd = spec.cwd;
    st.proc = std::make_unique<process>(std::move(cmd), std::move(o));
  } else {
    if (st.server == nullptr) return caf::make_error(error::no_fork_server, spec.target);
    try {
      st.proc = std::make_unique<process>(st.server->target(spec.target, spec.args), std::move(o));
    } catch (const std::system_error& e) {
      return spec_error(e.what());
    }
  }
  return caf::none;
}

// Created on first use: most process actors never need a timer.
const caf::actor& timers_of(self_pointer self) {
  if (!self->state.timers) self->state.timers = detail::make_timer_relay(self->system());
  return self->state.timers;
}

template <class Promises, class Value>
void deliver_all(Promises& promises, const Value& v) {
  for (auto& rp : promises) rp.deliver(v);
  promises.clear();
}

void notify_observer_ready(self_pointer self) {
  auto& st = self->state;
  if (st.observer.actor)
    detail::send_from(self, caf::actor_cast<caf::actor>(st.observer.actor), child_ready_atom_v, st.observer.id, st.incarnation, st.pid);
}


void notify_observer(self_pointer self, child_started_atom, std::uint64_t inc, std::int32_t pid) {
  auto& st = self->state;
  if (st.observer.actor)
    detail::send_from(self, caf::actor_cast<caf::actor>(st.observer.actor), child_started_atom_v, st.observer.id, inc, pid);
}

// Captured streams: the run's pipes go to the output capture at once — also when the
// child has died already (what it wrote is in the pipe), and before a later start could
// close them. Without a capture (removed since the start was accepted) they are closed.
void attach_captured_output(self_pointer self) {
  auto& st = self->state;
  if (!captures_output(st.spec)) return;
  auto capture = output_capture_of(self->system());
  if (st.spec.stdout_path == capture_stream) {
    auto fd = st.proc->take_stdout_pipe();
    if (capture && fd) capture->attach(st.spec.name, 1, st.incarnation, std::move(fd));
  }
  if (st.spec.stderr_path == capture_stream) {
    auto fd = st.proc->take_stderr_pipe();
    if (capture && fd) capture->attach(st.spec.name, 2, st.incarnation, std::move(fd));
  }
}

// Run `pid` has been started (by a program's start here, or a target's launch): the
// actor's state follows it, the observer learns of it, and a child that is ready at once
// gets its start reply.
void run_started(self_pointer self, pid_t pid) {
  auto& st = self->state;
  st.incarnation = st.proc->runs();
  attach_captured_output(self);
  st.pid = pid;
  st.state = process_state::starting;
  st.started_at_ns = now_ns();
  if (st.observer.on_started) {
    try {
      st.observer.on_started(pid);
    } catch (...) {  // process_observer::on_started: dropped
    }
  }
  notify_observer(self, child_started_atom_v, st.incarnation, st.pid);
  if (ready_at_start(st.spec)) {
    // The reply goes out before child_ready, as it does for a child that reports
    // readiness later: a supervisor learns the incarnation from child_ready.
    st.state = process_state::running;
    deliver_all(st.start_waiters, pid);
    notify_observer_ready(self);
    return;
  }
  // A program without notify_fd is ready once it has exec'd, a forked target once its
  // start-up record arrives: no deadline needed. A notify_fd / notify_socket child may
  // never notify.
  // After a lookup, what is left of the deadline the lookup counted toward.
  const auto deadline = std::exchange(st.launch.deadline, std::nullopt);
  if ((st.spec.notify_fd >= 0 || st.spec.notify_socket) && st.spec.ready_timeout_ms >= 0) {
    std::chrono::milliseconds left(st.spec.ready_timeout_ms);
    if (deadline)
      left = std::max(std::chrono::milliseconds(0),
                      std::chrono::ceil<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now()));
    detail::delayed_weak_send(timers_of(self), self->address(), left, deadline_report{st.incarnation});
  }
}

void on_ready_report(self_pointer self, ready_report& report) {
  auto& st = self->state;
  if (st.launch.active) {
    st.launch.ready.push_back(std::move(report));
    return;
  }
  if (report.run != st.incarnation || st.state != process_state::starting) return;
  if (report.err) {
    // libpkit has killed the child; its exit follows.
    st.state = process_state::stopping;
    deliver_all(st.start_waiters, report.err);
    return;
  }
  st.state = process_state::running;
  deliver_all(st.start_waiters, st.pid);
  notify_observer_ready(self);
}

void on_exit_report(self_pointer self, const exit_report& report) {
  auto& st = self->state;
  if (st.launch.active) {
    st.launch.exits.push_back(report);
    return;
  }
  const std::uint64_t inc = report.run;
  const exit_status status = report.status;
  if (inc != st.incarnation || !st.in_progress()) return;
  st.last = status;
  st.pid = 0;
  st.state = st.stop_requested ? process_state::idle : process_state::exited;
  if (!st.start_waiters.empty())
    deliver_all(st.start_waiters,
                caf::make_error(error::died_before_ready, st.spec.name + " " + status.to_string()));
  deliver_all(st.exit_waiters, status);
  if (st.observer.actor)
    detail::send_from(self, caf::actor_cast<caf::actor>(st.observer.actor), child_exited_atom_v, st.observer.id, inc, status);
}

// What a start waits on outside the program, if anything (launcher.hpp): a fork-server
// target's round trip to its server, or the name-service lookup of a user or group (numeric
// ids are looked up too: their entry gives the supplementary groups). A target with a user
// is refused by libpkit before any lookup: it goes to the fork-server lane.
std::optional<detail::launcher_lane> lane_of(const process_spec& spec) {
  if (!spec.target.empty()) return detail::launcher_lane::fork_server;
  if (!spec.user.empty() || !spec.group.empty()) return detail::launcher_lane::name_service;
  return std::nullopt;
}

// The launch part of a start is posted: the actor is `starting` with no pid until its
// report, and its start request waits for it.
caf::result<std::int32_t> begin_launch(self_pointer self, std::uint64_t number, bool lookup,
                                       detail::cancel_flag cancelled) {
  auto& st = self->state;
  auto rp = self->make_response_promise<std::int32_t>();
  st.launch.active = true;
  st.launch.lookup = lookup;
  st.launch.number = number;
  st.launch.cancelled = std::move(cancelled);
  st.launch.deadline.reset();
  st.launch.state_before = st.state;
  st.launch.then = process_actor_state::launch_state::pending::none;
  st.state = process_state::starting;
  st.pid = 0;
  st.stop_requested = false;
  st.start_waiters.push_back(rp);
  return rp;
}

// A launch that made no run — failed, cancelled by a stop, past its deadline: the start
// fails with `start_error`, and stop/kill/join made meanwhile get what they get on an
// actor with no run in progress — except after a stop that cancelled it: not_started, not
// the previous run's status, which a supervisor would take for this stop's outcome. A job
// not yet begun is told to do nothing.
void end_launch_without_run(self_pointer self, const caf::error& start_error, bool by_stop = false) {
  auto& st = self->state;
  if (st.launch.cancelled) st.launch.cancelled->store(true);
  st.launch.active = false;
  st.launch.cancelled.reset();
  st.state = st.launch.state_before;
  deliver_all(st.start_waiters, start_error);
  if (st.last && !by_stop) {
    deliver_all(st.exit_waiters, *st.last);
  } else {
    deliver_all(st.exit_waiters, caf::make_error(error::not_started, st.spec.name));
  }
}

caf::error cancelled_start(const process_spec& spec) {
  const std::string& program = program_of(spec);
  return caf::make_error(error::start_failed,
                         start_failure{spec.name, program, "", ECANCELED,
                                       "cannot start '" + program + "': stopped before it was spawned"});
}

// A fork-server target's start goes whole to the fork-server lane, the process with it.
// The reply comes with the launch report.
caf::result<std::int32_t> launch(self_pointer self) {
  auto& st = self->state;
  std::shared_ptr<detail::process_parcel> parcel;
  detail::cancel_flag cancelled;
  const std::uint64_t number = st.launch.number + 1;
  try {
    cancelled = std::make_shared<std::atomic<bool>>(false);
    parcel = std::make_shared<detail::process_parcel>(std::move(st.proc));
    detail::launcher::instance(detail::launcher_lane::fork_server)
        .post([addr = self->address(), number, parcel, cancelled] {
          // Skipped when not wanted any more; the report still brings the process back.
          std::error_code ec = std::make_error_code(std::errc::operation_canceled);
          const pid_t pid = cancelled->load() ? -1 : parcel->proc->start(ec);
          // A dead actor's parcel is dropped here (or with its mailbox): released.
          detail::launcher::report_until_made([&] {
            if (auto h = caf::actor_cast<private_process_actor>(addr))
              caf::anon_send(h, launch_report{number, parcel, pid, ec});
          });
        });
  } catch (const std::exception& e) {
    if (parcel) st.proc = std::move(parcel->proc);
    return caf::make_error(error::os_error, std::string("cannot hand the start to pkit's launcher: ") + e.what());
  }
  return begin_launch(self, number, false, std::move(cancelled));
}

// A program run as another user or group: its lookup goes to the name-service lane, the
// spawn follows here once it is done. The lookup is bounded by the readiness deadline
// (a start does not wait longer on the name service than it would on the child).
// A lookup still in flight from an earlier start is adopted (lookup_job.hpp).
caf::result<std::int32_t> look_up(self_pointer self) {
  auto& st = self->state;
  const std::uint64_t number = st.launch.number + 1;
  try {
    st.lookup = detail::lookup_job::look_up(st.lookup, number, st.spec.user, st.spec.group,
                                            [addr = self->address()](std::uint64_t launch, const identity& who) {
                                              if (auto h = caf::actor_cast<private_process_actor>(addr))
                                                caf::anon_send(h, lookup_report{launch, who});
                                            });
  } catch (const std::exception& e) {
    return caf::make_error(error::os_error, std::string("cannot hand the lookup to pkit's launcher: ") + e.what());
  }
  auto result = begin_launch(self, number, true, st.lookup->cancelled());
  if (st.spec.ready_timeout_ms > 0) {
    const std::chrono::milliseconds limit(st.spec.ready_timeout_ms);
    st.launch.deadline = std::chrono::steady_clock::now() + limit;
    detail::delayed_weak_send(timers_of(self), self->address(), limit, lookup_deadline{number});
  }
  return result;
}

// The held reports of the new run, in the order the reaper thread sent them: readiness
// (if any) before the exit.
void replay_held_reports(self_pointer self) {
  auto& st = self->state;
  auto ready = std::move(st.launch.ready);
  auto exits = std::move(st.launch.exits);
  st.launch.ready.clear();
  st.launch.exits.clear();
  for (auto& r : ready) on_ready_report(self, r);
  for (auto& r : exits) on_exit_report(self, r);
}

void on_launch_report(self_pointer self, launch_report& report) {
  auto& st = self->state;
  using pending = process_actor_state::launch_state::pending;
  if (!st.launch.active || st.launch.lookup || report.launch != st.launch.number || !report.parcel) return;
  st.proc = std::move(report.parcel->proc);
  if (report.ec) {
    const bool stopped = report.ec == std::errc::operation_canceled;
    end_launch_without_run(self,
                           stopped ? cancelled_start(st.spec)
                                   : caf::make_error(error::start_failed, failure_of(st.spec.name, program_of(st.spec),
                                                                                     *st.proc, report.ec)),
                           stopped);
    return;
  }
  st.launch.active = false;
  st.launch.cancelled.reset();
  run_started(self, report.pid);
  if (st.launch.then != pending::none) {
    st.stop_requested = true;
    st.state = process_state::stopping;
    if (st.launch.then == pending::kill) {
      st.kill_now();
    } else {
      st.begin_stop();
    }
  }
  replay_held_reports(self);
}

void on_lookup_report(self_pointer self, const lookup_report& report) {
  auto& st = self->state;
  if (!st.launch.active || !st.launch.lookup || report.launch != st.launch.number) return;
  std::error_code ec;
  const pid_t pid = st.proc->start(report.who, ec);
  if (ec) {
    end_launch_without_run(
        self, caf::make_error(error::start_failed, failure_of(st.spec.name, program_of(st.spec), *st.proc, ec)));
    return;
  }
  st.launch.active = false;
  st.launch.cancelled.reset();
  run_started(self, pid);
  replay_held_reports(self);
}

void on_lookup_deadline(self_pointer self, const lookup_deadline& deadline) {
  auto& st = self->state;
  if (!st.launch.active || !st.launch.lookup || deadline.launch != st.launch.number) return;
  const std::string& program = program_of(st.spec);
  const char* stage = st.spec.user.empty() ? "group" : "user";
  end_launch_without_run(
      self, caf::make_error(error::start_failed,
                            start_failure{st.spec.name, program, stage, ETIMEDOUT,
                                          "cannot start '" + program + "': " + stage +
                                              ": the name service did not answer within " +
                                              std::to_string(st.spec.ready_timeout_ms) + " ms"}));
}

// stop / kill: `then` is what to do; during a fork-server launch it is done once the
// launch is (a job not yet begun is skipped). A lookup spawned nothing yet: the start ends
// here, and the stop is answered as on an actor with no run.
caf::result<exit_status> stop_or_kill(self_pointer self, bool kill) {
  auto& st = self->state;
  if (st.launch.active && st.launch.lookup) {
    end_launch_without_run(self, cancelled_start(st.spec), true);
    return caf::make_error(error::not_started, st.spec.name + ": stopped before it was spawned");
  }
  if (!st.in_progress()) {
    if (st.last) return *st.last;
    return caf::make_error(error::not_started, st.spec.name);
  }
  auto rp = self->make_response_promise<exit_status>();
  st.exit_waiters.push_back(rp);
  st.stop_requested = true;
  st.state = process_state::stopping;
  if (st.launch.active) {
    using pending = process_actor_state::launch_state::pending;
    if (kill || st.launch.then == pending::none) st.launch.then = kill ? pending::kill : pending::stop;
    if (st.launch.cancelled) st.launch.cancelled->store(true);
  } else if (kill) {
    st.kill_now();
  } else {
    st.begin_stop();
  }
  return rp;
}

private_process_actor::behavior_type process_actor_impl(self_pointer self, process_spec spec,
                                                const fork_server* server, process_observer observer) {
  auto& st = self->state;
  if (spec.name.empty()) spec.name = !spec.argv.empty() ? spec.argv.front() : spec.target;
  st.spec = std::move(spec);
  st.server = server;
  st.observer.actor = observer.actor.address();
  st.observer.id = std::move(observer.id);
  st.observer.on_started = std::move(observer.on_started);
  return {
      [self](start_atom) -> caf::result<std::int32_t> {
        auto& st = self->state;
        if (st.in_progress()) return caf::make_error(error::already_running, st.spec.name);
        if (captures_output(st.spec) && !output_capture_of(self->system())) {
          start_failure f{st.spec.name, program_of(st.spec), "capture", 0,
                          "cannot start '" + program_of(st.spec) +
                              "': capture: its output is to be captured, but no output capture "
                              "is installed in the actor system"};
          return caf::make_error(error::start_failed, std::move(f));
        }
        if (!st.proc) {
          if (auto err = make_process(self)) return err;
        }
        if (auto lane = lane_of(st.spec))
          return *lane == detail::launcher_lane::fork_server ? launch(self) : look_up(self);
        // A program's start is a clone and exec on this worker: nothing outside to wait for.
        std::error_code ec;
        const pid_t pid = st.proc->start(ec);
        if (ec) return caf::make_error(error::start_failed, failure_of(st.spec.name, program_of(st.spec), *st.proc, ec));
        st.stop_requested = false;
        auto rp = self->make_response_promise<std::int32_t>();
        st.start_waiters.push_back(rp);
        run_started(self, pid);
        return rp;
      },
      [self](ready_report& report) { on_ready_report(self, report); },
      [self](const deadline_report& report) {
        auto& st = self->state;
        if (st.launch.active || report.run != st.incarnation || st.state != process_state::starting) return;
        st.kill_now();
        st.state = process_state::stopping;
        deliver_all(st.start_waiters,
                    caf::make_error(error::ready_timeout, st.spec.name + " not ready within " +
                                                              std::to_string(st.spec.ready_timeout_ms) +
                                                              " ms"));
      },
      [self](const exit_report& report) { on_exit_report(self, report); },
      [self](launch_report& report) { on_launch_report(self, report); },
      [self](const lookup_report& report) { on_lookup_report(self, report); },
      [self](const lookup_deadline& deadline) { on_lookup_deadline(self, deadline); },
      [self](stop_atom) -> caf::result<exit_status> { return stop_or_kill(self, false); },
      [self](kill_atom) -> caf::result<exit_status> { return stop_or_kill(self, true); },
      [self](signal_atom, std::int32_t signo) -> caf::result<caf::ok_atom> {
        auto& st = self->state;
        // During a launch there is no child to signal yet: like a run not yet begun.
        if (st.launch.active) return caf::make_error(error::not_started, st.spec.name + " is being started");
        if (!st.proc || st.incarnation == 0) return caf::make_error(error::not_started, st.spec.name);
        std::error_code ec;
        st.proc->signal(signo, ec);
        if (ec) return caf::make_error(error::os_error, ec.message());
        return caf::ok_atom_v;
      },
      [self](join_atom) -> caf::result<exit_status> {
        auto& st = self->state;
        if (!st.in_progress()) {
          if (st.last) return *st.last;
          return caf::make_error(error::not_started, st.spec.name);
        }
        auto rp = self->make_response_promise<exit_status>();
        st.exit_waiters.push_back(rp);
        return rp;
      },
      [self](status_atom) -> process_info {
        auto& st = self->state;
        process_info info;
        info.name = st.spec.name;
        info.state = st.state;
        info.pid = st.in_progress() ? st.pid : 0;
        info.incarnation = st.incarnation;
        info.started_at_ns = st.started_at_ns;
        info.has_last_exit = st.last.has_value();
        if (st.last) info.last_exit = *st.last;
        return info;
      },
  };
}

}  // namespace

process_actor spawn_process(caf::actor_system& system, process_spec spec, const fork_server* server,
                            process_observer observer) {
  // Converted to the public interface: the private one stays in this file.
  private_process_actor handle = system.spawn(process_actor_impl, std::move(spec), server, std::move(observer));
  return handle;
}

}  // namespace pkit::actors
