// pkit::process: the public API. The parts live in detail/: the shared state and the lock
// order (process_state.hpp), creating a child (launch), readiness (readiness), and what
// happens to a run once started — signals, the stop algorithm, exit collection
// (run_control).

#include <pkit/process.hpp>

#include <pkit/errc.hpp>

#include "detail/launch.hpp"
#include "detail/process_state.hpp"
#include "detail/readiness.hpp"
#include "detail/reaper.hpp"
#include "detail/run_control.hpp"
#include "detail/spawn_thread.hpp"

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pkit {
namespace detail {

namespace {

[[noreturn]] void throw_error(std::error_code ec, const char* what) {
  throw std::system_error(ec, what);
}

struct fork_child_context {
  process* self;
  int code = 0;  ///< the callable target's code, left here by the default run()
};

// Set only in a forked child, by run_owner, to its context's `code`: the default run()
// hands the target's exit code back through it instead of throwing exit_request. A throw
// allocates (__cxa_allocate_exception), and the child of a multithreaded parent must not
// allocate: an allocator without fork handlers (ASan's, TSan's) may have been locked by
// another thread at the fork, and the child then sleeps forever on that lock. In the
// parent it stays null, so a run() called there throws as documented.
int* child_exit_code = nullptr;

}  // namespace

// The accessor the process class uses to reach its run() and state.
struct process_access {
  static int run_owner(void* ctx) {
    auto* child = static_cast<fork_child_context*>(ctx);
    child_exit_code = &child->code;
    child->self->run();
    return child->code;
  }
  // `failed`: the failure this call recorded in the state (last_failure), for the throwing
  // overloads — not whatever the state holds, which may be another start's or a readiness
  // watch's. Unset for a start refused before it began (not_owner, already_running).
  static std::error_code start(process& p, std::shared_ptr<process_state> s, bool wait, pid_t& pid,
                               const identity* who, std::optional<spawn_failure>& failed);
};

namespace {

// The program named in a start failure: argv[0], the fork-server target, or the name.
std::string program_of(const process_state& s) {
  if (auto* c = std::get_if<command>(&s.what)) return c->argv.empty() ? std::string() : c->argv[0];
  if (auto* t = std::get_if<server_target>(&s.what)) return t->name;
  return s.name;
}

// Publishes a launched child as run `run` and watches its exit (`lock` holds `s.m`). If
// the watch cannot be set up, the child is killed and reaped here: a child nobody
// watches would hang every join and the destructor.
std::error_code publish(const std::shared_ptr<process_state>& sp, launched& made, prepared_io& io,
                        std::uint64_t& run) {
  process_state& s = *sp;
  run = ++s.runs;
  s.ph = process_state::phase::running;
  // Started by the run's own on_exit: that callback's blocking calls are about this run now.
  if (s.in_callbacks && s.callback_thread == std::this_thread::get_id()) s.started_in_delivery = true;
  s.exited = false;
  s.stopping.reset();
  s.pid = made.pid;
  s.pidfd = std::move(made.pidfd);
  s.leader = made.leader;
  s.server = std::move(made.server);
  s.cg = std::move(made.cg);
  s.watch = made.server_id;
  s.last.reset();
  for (int i = 0; i < 3; ++i) s.pipes[i] = std::move(io.parent_ends[i]);
  try {
    watch_run(sp, run);
    // Released while this run was being started: stop it like the run it replaced.
    if (s.released) (void)begin_stop(sp, s.opts.stop);
    // Destroyed meanwhile on the reaper thread — which the contract forbids (a start was
    // under way in a member), but a program target survives it: its destructor did not
    // wait for the start, and nobody else would stop this run. As that destructor does:
    // SIGKILL at once, for a grace period nobody could cut short.
    else if (s.dying)
      (void)begin_stop(sp, stop_policy{SIGKILL, std::chrono::milliseconds{0}, s.opts.stop.kill_group});
    return {};
  } catch (const std::system_error& e) {
    send_signal(s, SIGKILL, true);
    exit_status st = exit_status::killed(SIGKILL);
    if (!s.server) {
      siginfo_t info{};
      int r;
      do r = ::waitid(P_PIDFD, static_cast<id_t>(s.pidfd.get()), &info, WEXITED);
      while (r != 0 && errno == EINTR);
      st = r == 0 ? exit_status::from_siginfo(info.si_code, info.si_status) : exit_status::lost();
    }
    s.last = st;
    s.history[run % s.history.size()] = {run, st};
    s.become_idle();
    retire_cgroup(std::move(s.cg));
    for (auto& fd : s.pipes) fd.reset();
    s.collected = run;
    return e.code();
  }
}

// Under s.m, when a start that began in phase `before` has failed before it made a run.
// Puts the phase back — but a start begun while the last run's callbacks ran (`exiting`)
// whose delivery has ended meanwhile finds nobody left to end `exiting` (the delivery
// leaves a `starting` alone): the process is idle now. Returns an object handed over by
// process::release() meanwhile, for the caller to destroy with no lock held — unless
// callbacks still run on it, whose delivery then does it. Left in the state, it would be
// kept for ever (it holds the state, the state holds it).
[[nodiscard]] std::unique_ptr<process> end_failed_start(process_state& s, process_state::phase before) {
  s.ph = before;
  if (s.in_callbacks) return nullptr;
  if (before == process_state::phase::exiting) s.become_idle();
  if (s.ph != process_state::phase::idle) return nullptr;
  return std::move(s.released);
}

}  // namespace

// `sp` by value: the object (and its `state_` member) may be destroyed by another thread
// while this start runs; the state lives on until the start is over.
std::error_code process_access::start(process& p, std::shared_ptr<process_state> sp, bool wait,
                                      pid_t& started, const identity* who, std::optional<spawn_failure>& failed) {
  process_state& s = *sp;
  // Under s.m.
  auto record = [&s, &failed](spawn_failure f) {
    failed = f;
    s.failure = std::move(f);
  };
  if (!s.owned_here()) return errc::not_owner;
  // Declared before the lock, so destroyed after it is released (see end_failed_start).
  std::unique_ptr<process> doomed;
  std::unique_lock<std::mutex> lock(s.m);
  // Being destroyed, or handed over to pkit by release(): no new run.
  if (s.dying || s.released) return errc::not_owner;
  // The last run has ended and its callbacks are being called (`exiting`): a new run may
  // begin at once — from the callback itself, or from a thread that heard of the exit.
  // Waiting for the callback here would deadlock a thread that holds a lock the callback
  // needs; the callback's pid()/status() may then already describe the new run.
  if (s.ph != process_state::phase::idle && s.ph != process_state::phase::exiting)
    return errc::already_running;

  const process_state::phase before = s.ph;
  s.ph = process_state::phase::starting;
  s.failure.reset();
  lock.unlock();
  if (auto hook = launch_test_hooks::while_starting.load(std::memory_order_relaxed)) hook();

  prepared_io io;
  launched made;
  const char* stage = "validate";
  std::string program;
  // Opened here, on the caller's thread: an open that blocks (a FIFO without a reader)
  // must not hold up the spawn thread that other threads' starts go through.
  // With an on_ready callback, a start without wait still sets up the readiness pipes.
  const bool want_ready = wait || static_cast<bool>(s.opts.on_ready);
  std::error_code io_error = prepare_io(s, want_ready, io, stage, who);
  std::error_code ec;
  fork_child_context ctx{&p};
  auto do_launch = [&] { ec = launch(s, want_ready, {run_owner, &ctx}, made, io, stage, program); };
  if (io_error) {
    lock.lock();
    record(spawn_failure{program_of(s), stage, io_error});
    doomed = end_failed_start(s, before);
    s.cv.notify_all();
    return io_error;
  }
  // Created before the spawn: it undoes an inherited SIGCHLD=SIG_IGN, under which the
  // kernel would discard the exit status of a child that ends at once. Not before the
  // checks above: a start refused for a bad name or limit starts no thread either.
  // Inside the try: its creation can fail (no descriptor, no thread), and the start must
  // then leave its phase as it found it (a start left 'starting' wedged every later one).
  reaper* reaper_here = nullptr;
  // PR_SET_PDEATHSIG fires when the creating *thread* ends. Children made directly (not
  // by a fork server) on any thread but the main one are therefore made by the spawn
  // thread, which lasts as long as the program and runs no user code.
  try {
    reaper_here = &reaper::instance();
    if (s.opts.die_with_parent && !s.opts.spawn_on_calling_thread &&
        !std::holds_alternative<server_target>(s.what) && ::gettid() != ::getpid()) {
      spawn_thread::instance().run(do_launch);
    } else {
      do_launch();
    }
  } catch (...) {
    lock.lock();
    doomed = end_failed_start(s, before);
    s.cv.notify_all();
    throw;
  }
  // Close our copies of the child's descriptors now, so EOF on a pipe means the child
  // (or whoever it passed the pipe to) closed it.
  for (auto& fd : io.owned) fd.reset();
  io.notify_write.reset();

  lock.lock();
  if (ec) {
    record(spawn_failure{program, stage, ec});
    doomed = end_failed_start(s, before);
    s.cv.notify_all();
    return ec;
  }
  std::uint64_t run = 0;
  if ((ec = publish(sp, made, io, run))) {
    record(spawn_failure{program, "watch", ec});
    doomed = end_failed_start(s, process_state::phase::idle);  // publish made it idle
    s.cv.notify_all();
    return ec;
  }
  // Returned as made: by the time the caller looks, a quick child may be collected.
  started = s.pid;
  s.cv.notify_all();
  if (!wait) {
    if (s.opts.on_ready)
      s.ready_watch = watch_readiness(sp, run, std::move(made.status_read), std::move(io.notify_read),
                                      std::move(io.notify_sock));
    return {};
  }

  // Readiness: the start-up record (fork / fork server), then the notify line if any. The
  // pidfd of an own child is watched too (a fork-server child's is not ours to poll for
  // long: it is readable only once the server has seen the exit).
  // Our own copy of the pidfd: the run may be collected (and its pidfd closed) meanwhile.
  unique_fd pidfd{s.server ? -1 : ::fcntl(s.pidfd.get(), F_DUPFD_CLOEXEC, 3)};
  lock.unlock();
  if (auto hook = launch_test_hooks::awaiting_ready.load(std::memory_order_relaxed)) hook();
  child_failure f;
  const ready_result rr = await_ready(made.status_read.get(), io.notify_read.get(), io.notify_sock.get(),
                                      pidfd.get(), clock::now() + s.opts.ready_timeout, f);
  if (rr == ready_result::ready) return {};

  // Not ready: make sure the child is gone and collected, then report why.
  lock.lock();
  if (s.runs == run && s.ph == process_state::phase::running) send_signal(s, SIGKILL, true);
  if (!reaper_here->on_reaper_thread()) (void)join_run(sp, lock, run, stop_policy::infinite);
  switch (rr) {
    case ready_result::failed:
      ec.assign(f.error, std::system_category());
      stage = stage_name(f.stage);
      break;
    case ready_result::timeout:
      ec = errc::start_timeout;
      stage = "ready";
      break;
    default:
      ec = errc::died_before_ready;
      stage = "ready";
      break;
  }
  record(spawn_failure{program, stage, ec});
  return ec;
}

}  // namespace detail

using detail::process_access;
using detail::process_state;

namespace {

std::string default_name(const std::variant<std::monostate, callable_target, server_target, command>& w) {
  if (auto* c = std::get_if<command>(&w)) return c->argv.empty() ? "process" : c->argv[0];
  if (auto* t = std::get_if<server_target>(&w)) return t->name;
  return "process";
}

std::shared_ptr<process_state> make_state(process* owner, process_options&& o,
                                          decltype(process_state::what)&& what) {
  auto s = std::make_shared<process_state>();
  s->opts = std::move(o);
  s->what = std::move(what);
  s->name = s->opts.name.empty() ? default_name(s->what) : s->opts.name;
  s->owner = owner;
  return s;
}

// Every member begins here: a forked copy of the program owns none of the children.
void require_owner(const process_state& s, const char* what) {
  if (!s.owned_here()) throw std::system_error(make_error_code(errc::not_owner), what);
}

}  // namespace

process::process(process_options options)
    : state_(make_state(this, std::move(options), std::monostate{})) {}
process::process(callable_target target, process_options options)
    : state_(make_state(this, std::move(options), std::move(target))) {}
process::process(server_target target, process_options options)
    : state_(make_state(this, std::move(options), std::move(target))) {}
process::process(command cmd, process_options options)
    : state_(make_state(this, std::move(options), std::move(cmd))) {}

process::~process() {
  auto& s = *state_;
  // In a forked copy of the program the child is not ours: touch nothing (the copy's
  // descriptors close with the state; the original keeps its own).
  if (!s.owned_here()) return;
  // Not reaper::instance(): an object that never ran must not start the reaper thread.
  const bool on_reaper = detail::reaper::called_on_reaper_thread();
  std::shared_ptr<detail::readiness> abandoned;  // a killed run's pending readiness watch
  std::unique_lock<std::mutex> lock(s.m);
  s.dying = true;  // no new run from now on (an on_exit that restarts gets not_owner)
  // A start under way (an on_exit restarting the process on the reaper thread) publishes
  // its run in a moment; that run is then stopped below like any other.
  if (!on_reaper) s.cv.wait(lock, [&] { return s.ph != process_state::phase::starting; });
  if (s.ph == process_state::phase::running) {
    if (on_reaper) {
      // Destroyed from some on_exit callback: the reaper cannot report this exit while
      // we wait for it, so kill and collect the child right here.
      abandoned = detail::kill_and_collect_here(s, lock);
    } else {
      lock.unlock();
      try {
        stop();
      } catch (...) {
        // Nothing sensible to report from a destructor; the child was signalled.
      }
      lock.lock();
      s.cv.wait(lock, [&] { return s.ph != process_state::phase::running; });
    }
  }
  // Wait for callbacks that are still using this object (unless they are destroying it).
  s.cv.wait(lock, [&] {
    return !s.in_callbacks || s.callback_thread == std::this_thread::get_id();
  });
  s.owner = nullptr;
  // The state may outlive this object for a moment (an exit report in flight holds it);
  // the pipe ends are this object's and go with it.
  for (auto& fd : s.pipes) fd.reset();
  lock.unlock();
  // As an exit report would: its watches end, and with no owner nobody is told.
  if (abandoned) detail::settle_readiness_at_exit(abandoned, nullptr);
}

void process::run() {
  auto* t = std::get_if<callable_target>(&state_->what);
  if (t == nullptr || !*t) return;
  int code = (*t)();
  if (detail::child_exit_code != nullptr) *detail::child_exit_code = code;
  else if (code != 0) throw exit_request{code};
}

namespace {
pid_t guarded_start(process& p, std::shared_ptr<process_state> s, bool wait, std::error_code& ec,
                    const identity* who = nullptr, std::optional<spawn_failure>* failed = nullptr) noexcept {
  pid_t pid = -1;
  std::optional<spawn_failure> recorded;
  try {
    ec = process_access::start(p, std::move(s), wait, pid, who, recorded);
  } catch (const std::system_error& e) {
    ec = e.code();
  } catch (...) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  if (failed != nullptr) *failed = std::move(recorded);
  return ec ? -1 : pid;
}

// The throwing overloads: this start's own failure, with its stage when it recorded one.
// `s` by value: a process released during a failing start is destroyed by the start, and
// with it its `state_` member (read below for the name).
pid_t throwing_start(process& p, std::shared_ptr<process_state> s, bool wait, const identity* who) {
  std::error_code ec;
  std::optional<spawn_failure> failed;
  const pid_t pid = guarded_start(p, s, wait, ec, who, &failed);
  if (!ec) return pid;
  if (failed) throw spawn_error(std::move(*failed));
  throw spawn_error(spawn_failure{s->name, "start", ec});
}
}  // namespace

pid_t process::start(std::error_code& ec) noexcept { return guarded_start(*this, state_, false, ec); }
pid_t process::start(wait_t, std::error_code& ec) noexcept {
  return guarded_start(*this, state_, true, ec);
}
pid_t process::start() { return throwing_start(*this, state_, false, nullptr); }
pid_t process::start(wait_t) { return throwing_start(*this, state_, true, nullptr); }
pid_t process::start(const identity& who, std::error_code& ec) noexcept {
  return guarded_start(*this, state_, false, ec, &who);
}
pid_t process::start(const identity& who) { return throwing_start(*this, state_, false, &who); }

namespace {
// Sends `signo` (then SIGCONT when `and_continue`) to the current run; returns the run
// signalled (0: none is running) through `run`, which a caller passes that will wait for
// it (terminate(wait)): in the same lock as the signal, such a caller on the thread of
// on_exit gets that run's answer (it has ended: 0, nothing signalled), and elsewhere on
// the reaper thread would_deadlock for a running run — before it is signalled.
std::error_code signal_run(process_state& s, int signo, bool group, bool and_continue,
                           std::uint64_t* run = nullptr) {
  if (!s.owned_here()) return errc::not_owner;
  std::lock_guard<std::mutex> lock(s.m);
  if (s.runs == 0) return errc::not_started;
  if (run != nullptr && detail::own_delivery(s)) {
    *run = 0;
    return {};
  }
  if (run != nullptr && detail::reaper::called_on_reaper_thread() && s.ph == process_state::phase::running)
    return errc::would_deadlock;
  if (run != nullptr) *run = s.ph == process_state::phase::running ? s.runs : 0;
  if (s.ph != process_state::phase::running) return {};  // already ended: no-op
  std::error_code ec = detail::send_signal(s, signo, group);
  if (!ec && and_continue) detail::send_signal(s, SIGCONT, group);
  return ec;
}

}  // namespace

void process::signal(int signo, std::error_code& ec) noexcept {
  ec = signal_run(*state_, signo, false, false);
}
void process::signal(int signo) {
  std::error_code ec;
  signal(signo, ec);
  if (ec) detail::throw_error(ec, "pkit::process::signal");
}
void process::signal_group(int signo, std::error_code& ec) noexcept {
  ec = signal_run(*state_, signo, true, false);
}
void process::signal_group(int signo) {
  std::error_code ec;
  signal_group(signo, ec);
  if (ec) detail::throw_error(ec, "pkit::process::signal_group");
}

void process::terminate(std::error_code& ec) noexcept {
  ec = signal_run(*state_, SIGTERM, false, true);
}
void process::terminate() {
  std::error_code ec;
  terminate(ec);
  if (ec) detail::throw_error(ec, "pkit::process::terminate");
}
void process::terminate(wait_t, std::error_code& ec) noexcept {
  // The run signalled is the run waited for: an on_exit may start the next one at once.
  std::uint64_t run = 0;
  ec = signal_run(*state_, SIGTERM, false, true, &run);
  if (ec || run == 0) return;
  if (auto hook = detail::run_control_test_hooks::before_join.load(std::memory_order_relaxed)) hook();
  try {
    std::unique_lock<std::mutex> lock(state_->m);
    (void)detail::join_run(state_, lock, run, stop_policy::infinite);
  } catch (const std::system_error& e) {
    ec = e.code();
  }
}
void process::terminate(wait_t w) {
  std::error_code ec;
  terminate(w, ec);
  if (ec) detail::throw_error(ec, "pkit::process::terminate");
}

void process::kill(std::error_code& ec) noexcept { ec = signal_run(*state_, SIGKILL, true, false); }
void process::kill() {
  std::error_code ec;
  kill(ec);
  if (ec) detail::throw_error(ec, "pkit::process::kill");
}

exit_status process::stop() { return stop(state_->opts.stop); }

exit_status process::stop(const stop_policy& policy) {
  auto& s = *state_;
  require_owner(s, "pkit::process::stop");
  std::unique_lock<std::mutex> lock(s.m);
  if (s.runs == 0) detail::throw_error(errc::not_started, "pkit::process::stop");
  // From on_exit: the run it reports has ended — whatever another thread started since
  // is not this call's to signal (nor could this thread wait for it).
  if (auto st = detail::own_delivery(s)) return *st;
  // Elsewhere on the reaper thread a running run's exit cannot be waited for: fail before
  // signalling it (the caller may stop_async instead).
  if (detail::reaper::called_on_reaper_thread() && s.ph == process_state::phase::running)
    detail::throw_error(errc::would_deadlock, "pkit::process::stop");
  const std::uint64_t run = detail::begin_stop(state_, policy);
  if (run == 0) {
    if (s.last && s.ph != process_state::phase::starting) return *s.last;
    if (auto st = detail::join_run(state_, lock, s.runs, stop_policy::infinite)) return *st;
    detail::throw_error(errc::not_started, "pkit::process::stop: the run's status is unknown");
  }
  if (auto hook = detail::run_control_test_hooks::before_join.load(std::memory_order_relaxed)) {
    lock.unlock();
    hook();
    lock.lock();
  }
  // The reaper escalates at the deadline; so does this thread at its own (the reaper may
  // be held up by a slow on_exit; a stop already under way may have a later deadline).
  if (policy.timeout != stop_policy::infinite && policy.timeout.count() > 0) {
    if (auto st = detail::join_run(state_, lock, run, policy.timeout)) return *st;
    detail::escalate_now(s, run);
  }
  if (auto st = detail::join_run(state_, lock, run, stop_policy::infinite)) return *st;
  detail::throw_error(errc::not_started, "pkit::process::stop: the run's status is unknown");
}

void process::stop_async() { stop_async(state_->opts.stop); }
void process::stop_async(const stop_policy& policy) {
  std::error_code ec;
  stop_async(policy, ec);
  if (ec) detail::throw_error(ec, "pkit::process::stop_async");
}
void process::stop_async(const stop_policy& policy, std::error_code& ec) noexcept {
  auto& s = *state_;
  ec.clear();
  if (!s.owned_here()) {
    ec = errc::not_owner;
    return;
  }
  std::lock_guard<std::mutex> lock(s.m);
  if (s.runs == 0) {
    ec = errc::not_started;
    return;
  }
  // The stop's deadline task is allocated: out of memory is reported, not thrown.
  try {
    (void)detail::begin_stop(state_, policy);
  } catch (const std::exception&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

void process::release(std::unique_ptr<process> p) noexcept {
  if (!p) return;
  auto sp = p->state_;
  process_state& s = *sp;
  if (s.owned_here()) {
    std::lock_guard<std::mutex> lock(s.m);
    if (s.ph != process_state::phase::idle) {
      // running: stop it; starting: publish() stops the run once it exists; exiting: the
      // callbacks finish, then the object goes.
      if (s.ph == process_state::phase::running) {
        try {
          (void)detail::begin_stop(sp, s.opts.stop);
        } catch (...) {
          // No memory for the deadline task: SIGKILL now rather than never.
          detail::send_signal(s, SIGKILL, s.opts.stop.kill_group);
        }
      }
      s.released = std::move(p);
      return;
    }
  }
  p.reset();
}

std::optional<exit_status> process::join_status(std::chrono::milliseconds timeout) {
  auto& s = *state_;
  require_owner(s, "pkit::process::join");
  std::unique_lock<std::mutex> lock(s.m);
  if (s.runs == 0) detail::throw_error(errc::not_started, "pkit::process::join");
  if (auto st = detail::own_delivery(s)) return st;  // from on_exit: the run it reports
  return detail::join_run(state_, lock, s.runs, timeout);
}

exit_status process::join_status() {
  return *join_status(stop_policy::infinite);
}

int process::join() { return join_status().exit_code(); }

std::optional<int> process::join(std::chrono::milliseconds timeout) {
  auto st = join_status(timeout);
  if (!st) return std::nullopt;
  return st->exit_code();
}

pid_t process::restart(restart_policy policy) {
  require_owner(*state_, "pkit::process::restart");
  bool running;
  {
    std::lock_guard<std::mutex> lock(state_->m);
    running = state_->ph != process_state::phase::idle;
    // On the reaper thread a run under way (another thread's, even from this run's own
    // on_exit) is one this thread cannot wait for: fail before touching it.
    if (detail::reaper::called_on_reaper_thread() && (state_->ph == process_state::phase::running ||
                                                      state_->ph == process_state::phase::starting))
      detail::throw_error(errc::would_deadlock, "pkit::process::restart");
  }
  if (running) {
    if (policy == restart_policy::forced) {
      stop();
    } else {
      join_status();
    }
  }
  return start(wait);
}

bool process::is_alive() const {
  if (!state_->owned_here()) return false;
  std::lock_guard<std::mutex> lock(state_->m);
  if (state_->ph != process_state::phase::running || state_->exited) return false;
  // The child may have exited a moment ago, before the reaper reported it: its pidfd is
  // readable from that instant.
  pollfd p{state_->pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

std::optional<pid_t> process::pid() const {
  if (!state_->owned_here()) return std::nullopt;
  std::lock_guard<std::mutex> lock(state_->m);
  if (state_->ph != process_state::phase::running && state_->ph != process_state::phase::exiting)
    return std::nullopt;
  return state_->pid;
}

std::optional<int> process::exitcode() const {
  std::lock_guard<std::mutex> lock(state_->m);
  if (!state_->last) return std::nullopt;
  return state_->last->exit_code();
}

std::optional<exit_status> process::status() const {
  std::lock_guard<std::mutex> lock(state_->m);
  return state_->last;
}

std::uint64_t process::runs() const {
  std::lock_guard<std::mutex> lock(state_->m);
  return state_->runs;
}

std::optional<spawn_failure> process::last_failure() const {
  std::lock_guard<std::mutex> lock(state_->m);
  return state_->failure;
}

std::string process::name() const { return state_->name; }

namespace {
unique_fd take_pipe(process_state& s, int i) {
  if (!s.owned_here()) return {};
  std::lock_guard<std::mutex> lock(s.m);
  return std::move(s.pipes[i]);
}
}  // namespace

unique_fd process::take_stdin_pipe() { return take_pipe(*state_, 0); }
unique_fd process::take_stdout_pipe() { return take_pipe(*state_, 1); }
unique_fd process::take_stderr_pipe() { return take_pipe(*state_, 2); }

}  // namespace pkit
