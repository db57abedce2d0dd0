#include <pkit/process.hpp>

#include <pkit/errc.hpp>

#include "detail/child_setup.hpp"
#include "detail/exec_spawn.hpp"
#include "detail/fork_server_core.hpp"
#include "detail/reaper.hpp"
#include "detail/trampoline.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include "detail/pidfd.hpp"
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <variant>

namespace pkit {
namespace detail {

using clock = std::chrono::steady_clock;

struct readiness;

/// Everything a process shares with the reaper's callbacks. The callbacks hold it by
/// shared_ptr, so it outlives the `process` object if an exit report is in flight.
struct process_state {
  // idle → starting (a thread is creating the child, without the lock) → running → exiting
  // (on_exit runs) → idle.
  enum class phase { idle, starting, running, exiting };

  process_options opts;
  std::variant<std::monostate, callable_target, server_target, command> what;
  std::string name;

  mutable std::mutex m;
  std::condition_variable cv;
  process* owner = nullptr;  // null once the process object is being destroyed
  phase ph = phase::idle;
  std::uint64_t runs = 0;       // runs started
  std::uint64_t collected = 0;  // highest run whose exit has been fully collected
  pid_t pid = 0;
  unique_fd pidfd;
  bool leader = false;           // the child leads its own process group
  std::uint64_t watch = 0;       // reaper or fork-server watch of the current run
  std::shared_ptr<fork_server_core> server;  // set when the current run is a server child
  std::optional<exit_status> last;
  std::array<std::pair<std::uint64_t, exit_status>, 8> history{};  // run → status
  std::optional<spawn_failure> failure;
  std::array<unique_fd, 3> pipes;
  std::thread::id callback_thread;  // thread running on_exit for the current run
  std::shared_ptr<readiness> ready_watch;  // on_ready of the current run, while pending
  bool collecting = false;  // a joiner is collecting the exit itself (collect_here)

  std::optional<exit_status> status_of(std::uint64_t run) const {
    for (const auto& [r, s] : history)
      if (r == run) return s;
    return last;
  }
};

namespace {

[[noreturn]] void throw_error(std::error_code ec, const char* what) {
  throw std::system_error(ec, what);
}

// A signal to the child through its pidfd (never a recycled pid), and to its group when
// asked and the child leads one. ESRCH from the pidfd means it has already exited.
std::error_code send_signal(const process_state& s, int signo, bool group) {
  std::error_code ec;
  if (pidfd_send_signal(s.pidfd.get(), signo) != 0 && errno != ESRCH)
    ec.assign(errno, std::system_category());
  // While the leader is unreaped (we hold the lock, so its state is still "running") its
  // pid cannot be reused, and the group id stays reserved while any member is alive.
  if (group && s.leader) ::kill(-s.pid, signo);
  return ec;
}

// Descriptors prepared for a child: what it gets as 0..2 and beyond, and our pipe ends.
struct prepared_io {
  std::array<unique_fd, 3> owned;   // opened for the child (files, /dev/null, pipe ends)
  std::array<int, 3> source{-1, -1, -1};
  std::array<unique_fd, 3> parent_ends;
  std::vector<std::pair<int, int>> pass;  // {child fd, source}
  std::vector<int> keep;                  // sorted child fds above 2
  unique_fd notify_read, notify_write;
};

std::error_code prepare_io(const process_options& o, prepared_io& io, const char*& stage) {
  const stdio* streams[3] = {&o.in, &o.out, &o.err};
  for (int i = 0; i < 3; ++i) {
    const stdio& s = *streams[i];
    switch (s.type()) {
      case stdio::kind::inherit: break;
      case stdio::kind::null:
      case stdio::kind::file: {
        stage = "open stdio";
        int flags = O_CLOEXEC;
        const char* path = "/dev/null";
        if (s.type() == stdio::kind::null) {
          flags |= O_RDWR;
        } else {
          path = s.path().c_str();
          flags |= i == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | (s.append() ? O_APPEND : O_TRUNC));
        }
        io.owned[i].reset(::open(path, flags, 0644));
        if (!io.owned[i]) return {errno, std::system_category()};
        io.source[i] = io.owned[i].get();
        break;
      }
      case stdio::kind::pipe: {
        stage = "pipe";
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) return {errno, std::system_category()};
        // stdin: the child reads; stdout/stderr: the child writes.
        io.owned[i].reset(fds[i == 0 ? 0 : 1]);
        io.parent_ends[i].reset(fds[i == 0 ? 1 : 0]);
        io.source[i] = io.owned[i].get();
        break;
      }
      case stdio::kind::fd:
        stage = "validate";
        if (s.borrowed_fd() < 0) return errc::invalid_argument;
        io.source[i] = s.borrowed_fd();
        break;
    }
  }
  stage = "validate";
  io.pass = o.pass_fds;
  if (o.notify_fd) {
    if (*o.notify_fd < 3) return errc::invalid_argument;
    stage = "pipe";
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return {errno, std::system_category()};
    io.notify_read.reset(fds[0]);
    io.notify_write.reset(fds[1]);
    io.pass.emplace_back(*o.notify_fd, fds[1]);
    stage = "validate";
  }
  if (io.pass.size() > 256) return errc::invalid_argument;
  for (const auto& [target, source] : io.pass) {
    if (target < 3 || source < 0) return errc::invalid_argument;
    io.keep.push_back(target);
  }
  std::sort(io.keep.begin(), io.keep.end());
  if (std::adjacent_find(io.keep.begin(), io.keep.end()) != io.keep.end())
    return errc::invalid_argument;
  return {};
}

child_setup make_setup(const process_options& o, const prepared_io& io) {
  child_setup s;
  for (int i = 0; i < 3; ++i) s.stdio[i] = io.source[i];
  s.pass = io.pass.data();
  s.pass_count = io.pass.size();
  s.keep = io.keep.data();
  s.keep_count = io.keep.size();
  s.new_process_group = o.new_process_group;
  s.die_with_parent = o.die_with_parent;
  s.parent = ::getpid();
  return s;
}

// Reads the child's start-up record from its status pipe. Returns ready, a failure, or
// died (EOF without a record) / timeout.
enum class ready_result { ready, failed, died, timeout };

ready_result await_record(int fd, clock::time_point deadline, child_failure& failure) {
  char buf[sizeof(child_failure)];
  std::size_t got = 0;
  while (got < sizeof buf) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() < 0) return ready_result::timeout;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30)));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;  // re-check the deadline
    ssize_t n = ::read(fd, buf + got, sizeof buf - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ready_result::died;
    got += static_cast<std::size_t>(n);
  }
  std::memcpy(&failure, buf, sizeof failure);
  return failure.stage == child_stage::none ? ready_result::ready : ready_result::failed;
}

// s6's readiness notification: a line on the notify pipe.
ready_result await_newline(int fd, clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() < 0) return ready_result::timeout;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30)));
    if (r <= 0) continue;
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ready_result::died;
    if (std::find(buf, buf + n, '\n') != buf + n) return ready_result::ready;
  }
}

struct fork_child_context {
  process* self;
};

}  // namespace

// What launch() made: published into the state under its lock afterwards.
struct launched {
  pid_t pid = 0;
  unique_fd pidfd;
  bool leader = false;
  std::shared_ptr<fork_server_core> server;
  std::uint64_t server_id = 0;
  unique_fd status_read;
};

// The accessor the process class uses to reach its run() from a static context.
struct process_access {
  static int run_owner(void* ctx) {
    static_cast<fork_child_context*>(ctx)->self->run();
    return 0;
  }
  static void on_exit(const std::shared_ptr<process_state>& s, std::uint64_t run, exit_status st);
  static std::error_code start(process& p, const std::shared_ptr<process_state>& s, bool wait,
                               pid_t& pid);
  static std::error_code launch(process& p, const process_state& s, bool wait, launched& out,
                                prepared_io& io, const char*& stage, std::string& program);
  static bool collect_here(const std::shared_ptr<process_state>& sp, std::unique_lock<std::mutex>& lock,
                           std::uint64_t run, std::chrono::milliseconds timeout);
};

// A joiner collects the exit itself when nothing needs the reaper thread for this run (no
// on_exit or on_ready callback, not a fork-server child): the exit then wakes one thread,
// not the reaper and then the joiner. Returns false (lock held, nothing changed) when it
// cannot; true with the lock held again once the run is collected, or once `timeout`
// passed (the reaper watches the child again).
bool process_access::collect_here(const std::shared_ptr<process_state>& sp,
                                  std::unique_lock<std::mutex>& lock, std::uint64_t run,
                                  std::chrono::milliseconds timeout) {
  process_state& s = *sp;
  if (s.server || s.opts.on_exit || s.opts.on_ready || s.collecting || s.runs != run ||
      s.ph != process_state::phase::running || s.watch == 0)
    return false;
  reaper& r = reaper::instance();
  const std::uint64_t watch = s.watch;
  const int pidfd = s.pidfd.get();  // stays open until this run is collected
  s.collecting = true;
  lock.unlock();
  if (!r.unwatch(watch)) {  // the reaper was first
    lock.lock();
    s.collecting = false;
    return false;
  }
  bool exited = true;
  if (timeout != stop_policy::infinite) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
      // Rounded up, and repeated until the deadline has really passed: a timed join must
      // never give up early.
      const auto now = clock::now();
      if (now >= deadline) {
        pollfd last{pidfd, POLLIN, 0};
        exited = ::poll(&last, 1, 0) > 0;
        break;
      }
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
      pollfd pfd{pidfd, POLLIN, 0};
      int n = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        exited = true;
        break;
      }
    }
  }
  if (!exited) {
    lock.lock();
    s.watch = r.watch_child(pidfd, [sp, run](exit_status st) { on_exit(sp, run, st); });
    s.collecting = false;
    s.cv.notify_all();
    return true;
  }
  siginfo_t info{};
  int rc;
  do rc = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED);
  while (rc != 0 && errno == EINTR);
  on_exit(sp, run, rc == 0 ? exit_status::from_siginfo(info.si_code, info.si_status) : exit_status::lost());
  lock.lock();
  s.collecting = false;
  s.cv.notify_all();
  return true;
}

void settle_readiness_at_exit(const std::shared_ptr<readiness>& r, process& owner);

void process_access::on_exit(const std::shared_ptr<process_state>& s, std::uint64_t run,
                             exit_status st) {
  std::function<void(process&)> callback;
  process* owner;
  std::shared_ptr<readiness> ready;
  {
    std::lock_guard<std::mutex> lock(s->m);
    if (s->runs != run || s->ph != process_state::phase::running) return;  // stale
    s->last = st;
    s->history[run % s->history.size()] = {run, st};
    s->ph = process_state::phase::exiting;
    s->watch = 0;
    s->callback_thread = std::this_thread::get_id();
    callback = s->opts.on_exit;
    owner = s->owner;
    ready = std::move(s->ready_watch);
  }
  // on_ready always comes first: a child that got ready and exited at once is reported
  // ready (its pipes still hold what it wrote), one that did not is reported as such.
  if (ready && owner != nullptr) settle_readiness_at_exit(ready, *owner);
  if (callback && owner != nullptr) {
    try {
      callback(*owner);
    } catch (const std::exception& e) {
      std::string msg = "pkit: on_exit of '" + s->name + "' threw: " + e.what() + "\n";
      write_all(2, msg.data(), msg.size());
    } catch (...) {
      static constexpr char msg[] = "pkit: on_exit threw an unknown exception\n";
      write_all(2, msg, sizeof msg - 1);
    }
  }
  std::lock_guard<std::mutex> lock(s->m);
  if (s->runs == run) {  // not restarted from the callback
    s->ph = process_state::phase::idle;
    s->pid = 0;
    s->pidfd.reset();
    s->leader = false;
    s->server.reset();
  }
  s->collected = std::max(s->collected, run);
  s->callback_thread = {};
  s->cv.notify_all();
}

// Creates the child. Runs without the state's lock (it reads only the immutable
// configuration), so the lock is never held across fork, clone or a fork-server request.
std::error_code process_access::launch(process& p, const process_state& s, bool wait,
                                       launched& out, prepared_io& io, const char*& stage,
                                       std::string& program) {
  if (auto ec = prepare_io(s.opts, io, stage)) return ec;
  child_setup setup = make_setup(s.opts, io);

  if (auto* cmd = std::get_if<command>(&s.what)) {
    program = cmd->argv.empty() ? std::string() : cmd->argv[0];
    stage = "validate";
    std::error_code ec;
    exec_image image = exec_image::build(*cmd, ec);
    if (ec) return ec;
    setup.cwd = cmd->cwd.empty() ? nullptr : cmd->cwd.c_str();
    setup.limits = cmd->limits.data();
    setup.limit_count = cmd->limits.size();
    exec_result r = exec_spawn(image, setup);
    if (r.clone_error != 0) {
      stage = "clone";
      return {r.clone_error, std::system_category()};
    }
    if (r.failure.stage != child_stage::none) {
      stage = stage_name(r.failure.stage);
      return {r.failure.error, std::system_category()};
    }
    out.pid = r.pid;
    out.pidfd = std::move(r.pidfd);
    out.leader = s.opts.new_process_group;
    return {};
  }

  if (auto* t = std::get_if<server_target>(&s.what)) {
    program = t->name;
    stage = "fork server";
    if (!t->server || !t->server->running()) return errc::fork_server_unavailable;
    server_spawn_request req;
    req.name = &t->name;
    req.args = &t->args;
    for (int i = 0; i < 3; ++i) req.stdio[i] = io.source[i];
    req.pass = &io.pass;
    req.want_ready = wait;
    req.new_process_group = s.opts.new_process_group;
    req.die_with_parent = s.opts.die_with_parent;
    server_spawn_result r = t->server->spawn(req);
    if (r.error) {
      stage = r.stage;
      return r.error;
    }
    out.pid = r.pid;
    out.pidfd = std::move(r.pidfd);
    out.leader = s.opts.new_process_group;
    out.server = t->server;
    out.status_read = std::move(r.ready);
    out.server_id = r.id;
    return {};
  }

  // The fork start method: this process forks itself and the child runs `run()`.
  program = s.name;
  stage = "pipe";
  unique_fd status_write;
  if (wait) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return {errno, std::system_category()};
    out.status_read.reset(fds[0]);
    status_write.reset(fds[1]);
  }
  fork_child_context ctx{&p};
  const char* child_name = s.name.c_str();

  bind_child_calls();
  sigset_t all, old;
  ::sigfillset(&all);
  auto quiet = reaper::instance().quiesce();
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::fork();
  if (pid == 0) {
    // The child: every signal is blocked until the dispositions are back to default,
    // so a signal sent the moment start() returns is held, then honoured.
    run_forked_child(setup, status_write.get(), child_name, run_owner, &ctx);
  }
  int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  quiet = {};
  if (pid < 0) {
    stage = "fork";
    return {fork_errno, std::system_category()};
  }
  // Nobody else reaps our children (we never wait for -1, and we ask the host not to),
  // so the pid stays ours until we collect it and this pidfd is the right process.
  int pidfd = pidfd_open(pid, 0);
  if (pidfd < 0) {
    int err = errno;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    stage = "pidfd_open";
    return {err, std::system_category()};
  }
  if (s.opts.new_process_group) ::setpgid(pid, pid);  // both sides, so no window
  out.pid = pid;
  out.pidfd.reset(pidfd);
  out.leader = s.opts.new_process_group;
  return {};
}

// The asynchronous form of start(wait): the reaper thread reads the start-up record, then
// the notify line, and reports the outcome through on_ready.
struct readiness {
  std::shared_ptr<process_state> state;
  std::uint64_t run;
  unique_fd record;  // status pipe (fork / fork server), empty for programs
  unique_fd notify;  // notify_fd pipe, if any
  std::size_t got = 0;
  char buf[sizeof(child_failure)];
  bool reported = false;  // on_ready was called (reaper thread only)
};

namespace {

void report_ready(const std::shared_ptr<readiness>& r, std::error_code ec, child_stage stage) {
  process_state& s = *r->state;
  process* owner;
  {
    std::lock_guard<std::mutex> lock(s.m);
    if (r->reported || s.runs != r->run || s.ph != process_state::phase::running) return;
    r->reported = true;
    if (s.ready_watch == r) s.ready_watch.reset();
    owner = s.owner;
    if (ec) {
      s.failure = spawn_failure{s.name, stage_name(stage), ec};
      // A child whose set-up failed exits by itself (127); one that closed its notify fd
      // may live on, but will never be ready.
      if (stage == child_stage::ready) send_signal(s, SIGKILL, true);
    }
  }
  if (owner != nullptr) s.opts.on_ready(*owner, ec);
}

void watch_notify(const std::shared_ptr<readiness>& r);

std::shared_ptr<readiness> watch_readiness(const std::shared_ptr<process_state>& sp, std::uint64_t run,
                                          unique_fd record, unique_fd notify) {
  auto r = std::make_shared<readiness>();
  r->state = sp;
  r->run = run;
  r->record = std::move(record);
  r->notify = std::move(notify);
  if (!r->record) {
    if (r->notify) {
      watch_notify(r);
    } else {
      reaper::instance().post([r] { report_ready(r, {}, child_stage::none); });
    }
    return r;
  }
  reaper::instance().watch_fd(r->record.get(), [r] {
    ssize_t n = ::read(r->record.get(), r->buf + r->got, sizeof r->buf - r->got);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      report_ready(r, errc::died_before_ready, child_stage::ready);
      return false;
    }
    r->got += static_cast<std::size_t>(n);
    if (r->got < sizeof r->buf) return true;
    child_failure f;
    std::memcpy(&f, r->buf, sizeof f);
    if (f.stage != child_stage::none) {
      report_ready(r, {f.error, std::system_category()}, f.stage);
    } else if (r->notify) {
      watch_notify(r);
    } else {
      report_ready(r, {}, child_stage::none);
    }
    return false;
  });
  return r;
}

void watch_notify(const std::shared_ptr<readiness>& r) {
  reaper::instance().watch_fd(r->notify.get(), [r] {
    char buf[64];
    ssize_t n = ::read(r->notify.get(), buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      report_ready(r, errc::died_before_ready, child_stage::ready);
      return false;
    }
    if (std::find(buf, buf + n, '\n') == buf + n) return true;
    report_ready(r, {}, child_stage::none);
    return false;
  });
}

}  // namespace

// The run ended before its readiness was reported. The pipes still hold whatever the
// child wrote before it exited, so the verdict comes from them, not from the race.
void settle_readiness_at_exit(const std::shared_ptr<readiness>& r, process& owner) {
  process_state& s = *r->state;
  {
    std::lock_guard<std::mutex> lock(s.m);
    if (r->reported) return;
    r->reported = true;
  }
  std::error_code ec;
  child_stage stage = child_stage::none;
  if (r->record) {
    ::fcntl(r->record.get(), F_SETFL, O_NONBLOCK);
    while (r->got < sizeof r->buf) {
      ssize_t n = ::read(r->record.get(), r->buf + r->got, sizeof r->buf - r->got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      r->got += static_cast<std::size_t>(n);
    }
    child_failure f;
    if (r->got < sizeof r->buf) {
      ec = errc::died_before_ready;
      stage = child_stage::ready;
    } else if (std::memcpy(&f, r->buf, sizeof f); f.stage != child_stage::none) {
      ec.assign(f.error, std::system_category());
      stage = f.stage;
    }
  }
  if (!ec && r->notify) {
    ::fcntl(r->notify.get(), F_SETFL, O_NONBLOCK);
    bool newline = false;
    char buf[256];
    for (;;) {
      ssize_t n = ::read(r->notify.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (std::find(buf, buf + n, '\n') != buf + n) {
        newline = true;
        break;
      }
    }
    if (!newline) {
      ec = errc::died_before_ready;
      stage = child_stage::ready;
    }
  }
  if (ec) {
    std::lock_guard<std::mutex> lock(s.m);
    s.failure = spawn_failure{s.name, stage_name(stage), ec};
  }
  s.opts.on_ready(owner, ec);
}

std::error_code process_access::start(process& p, const std::shared_ptr<process_state>& sp,
                                      bool wait, pid_t& started) {
  process_state& s = *sp;
  std::unique_lock<std::mutex> lock(s.m);
  const bool in_own_callback =
      s.ph == process_state::phase::exiting && s.callback_thread == std::this_thread::get_id();
  // The last run has ended and its on_exit is being called: that finishes in a moment, and
  // a caller that heard of the exit (from that very callback, on another thread) must be
  // able to start again right away.
  if (s.ph == process_state::phase::exiting && !in_own_callback && !reaper::instance().on_reaper_thread())
    s.cv.wait(lock, [&] { return s.ph != process_state::phase::exiting; });
  if (s.ph != process_state::phase::idle && !in_own_callback) return errc::already_running;

  const process_state::phase before = s.ph;
  s.ph = process_state::phase::starting;
  s.failure.reset();
  lock.unlock();

  prepared_io io;
  launched made;
  const char* stage = "validate";
  std::string program;
  // Created first: it undoes an inherited SIGCHLD=SIG_IGN, under which the kernel would
  // discard the exit status of a child that ends at once.
  reaper& r = reaper::instance();
  std::error_code ec;
  // With an on_ready callback, a start without wait still sets up the readiness pipes.
  const bool want_ready = wait || static_cast<bool>(s.opts.on_ready);
  auto do_launch = [&] { ec = launch(p, s, want_ready, made, io, stage, program); };
  // PR_SET_PDEATHSIG fires when the creating *thread* ends. Children made directly (not
  // by a fork server) on any thread but the main one are therefore made by the reaper
  // thread, which lasts as long as the program.
  try {
    if (s.opts.die_with_parent && !s.opts.spawn_on_calling_thread &&
        !std::holds_alternative<server_target>(s.what) && ::gettid() != ::getpid()) {
      r.run_sync(do_launch);
    } else {
      do_launch();
    }
  } catch (...) {
    lock.lock();
    s.ph = before;
    s.cv.notify_all();
    throw;
  }
  // Close our copies of the child's descriptors now, so EOF on a pipe means the child
  // (or whoever it passed the pipe to) closed it.
  for (auto& fd : io.owned) fd.reset();
  io.notify_write.reset();

  lock.lock();
  if (ec) {
    s.ph = before;
    s.failure = spawn_failure{program, stage, ec};
    s.cv.notify_all();
    return ec;
  }
  const std::uint64_t run = ++s.runs;
  s.ph = process_state::phase::running;
  s.pid = made.pid;
  // Returned as made: by the time the caller looks, a quick child may be collected.
  started = made.pid;
  s.pidfd = std::move(made.pidfd);
  s.leader = made.leader;
  s.server = std::move(made.server);
  s.last.reset();
  for (int i = 0; i < 3; ++i) s.pipes[i] = std::move(io.parent_ends[i]);
  auto handler = [sp, run](exit_status st) { process_access::on_exit(sp, run, st); };
  if (s.server) {
    s.watch = made.server_id;
    s.server->watch(s.watch, s.pidfd.get(), handler);
  } else {
    s.watch = r.watch_child(s.pidfd.get(), handler);
  }
  s.cv.notify_all();
  if (!wait) {
    if (s.opts.on_ready)
      s.ready_watch = watch_readiness(sp, run, std::move(made.status_read), std::move(io.notify_read));
    return {};
  }

  // Readiness: the start-up record (fork / fork server), then the notify line if any.
  lock.unlock();
  auto deadline = clock::now() + s.opts.ready_timeout;
  ready_result rr = ready_result::ready;
  child_failure f;
  if (made.status_read) rr = await_record(made.status_read.get(), deadline, f);
  if (rr == ready_result::ready && io.notify_read) rr = await_newline(io.notify_read.get(), deadline);
  if (rr == ready_result::ready) return {};

  // Not ready: make sure the child is gone and collected, then report why.
  lock.lock();
  if (s.runs == run && s.ph == process_state::phase::running) send_signal(s, SIGKILL, true);
  if (!r.on_reaper_thread())
    s.cv.wait(lock, [&] { return s.collected >= run; });
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
  s.failure = spawn_failure{program, stage, ec};
  return ec;
}

}  // namespace detail

using detail::process_access;
using detail::process_state;
using detail::clock;

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
  auto& r = detail::reaper::instance();
  std::unique_lock<std::mutex> lock(s.m);
  if (s.ph == process_state::phase::running) {
    if (r.on_reaper_thread()) {
      // Destroyed from some on_exit callback: the reaper cannot report this exit while
      // we wait for it, so kill and collect the child right here.
      detail::send_signal(s, SIGKILL, true);
      if (s.server) {
        s.server->unwatch(s.watch);
      } else if (r.unwatch(s.watch)) {
        siginfo_t info{};
        while (::waitid(P_PIDFD, static_cast<id_t>(s.pidfd.get()), &info,
                        WEXITED) != 0 &&
               errno == EINTR) {
        }
      }
      s.ph = process_state::phase::idle;
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
  // Wait for an on_exit callback that is still using this object (unless it is the one
  // destroying it).
  s.cv.wait(lock, [&] {
    return s.ph != process_state::phase::exiting || s.callback_thread == std::this_thread::get_id();
  });
  s.owner = nullptr;
  // The state may outlive this object for a moment (an exit report in flight holds it);
  // the pipe ends are this object's and go with it.
  for (auto& fd : s.pipes) fd.reset();
}

void process::run() {
  auto* t = std::get_if<callable_target>(&state_->what);
  if (t == nullptr || !*t) return;
  int code = (*t)();
  if (code != 0) throw exit_request{code};
}

namespace {
pid_t guarded_start(process& p, const std::shared_ptr<process_state>& s, bool wait,
                    std::error_code& ec) noexcept {
  pid_t pid = -1;
  try {
    ec = process_access::start(p, s, wait, pid);
  } catch (const std::system_error& e) {
    ec = e.code();
  } catch (...) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return ec ? -1 : pid;
}
}  // namespace

pid_t process::start(std::error_code& ec) noexcept { return guarded_start(*this, state_, false, ec); }
pid_t process::start(wait_t, std::error_code& ec) noexcept {
  return guarded_start(*this, state_, true, ec);
}

namespace {
pid_t throw_on_start_error(const std::shared_ptr<process_state>& s, std::error_code ec, pid_t pid) {
  if (!ec) return pid;
  std::lock_guard<std::mutex> lock(s->m);
  if (s->failure) throw spawn_error(*s->failure);
  throw spawn_error(spawn_failure{s->name, "start", ec});
}
}  // namespace

pid_t process::start() {
  std::error_code ec;
  pid_t pid = start(ec);
  return throw_on_start_error(state_, ec, pid);
}
pid_t process::start(wait_t w) {
  std::error_code ec;
  pid_t pid = start(w, ec);
  return throw_on_start_error(state_, ec, pid);
}

namespace {
std::error_code signal_run(process_state& s, int signo, bool group) {
  std::lock_guard<std::mutex> lock(s.m);
  if (s.runs == 0) return errc::not_started;
  if (s.ph != process_state::phase::running) return {};  // already ended: no-op
  return detail::send_signal(s, signo, group);
}
}  // namespace

void process::signal(int signo, std::error_code& ec) noexcept { ec = signal_run(*state_, signo, false); }
void process::signal(int signo) {
  std::error_code ec;
  signal(signo, ec);
  if (ec) detail::throw_error(ec, "pkit::process::signal");
}
void process::signal_group(int signo, std::error_code& ec) noexcept {
  ec = signal_run(*state_, signo, true);
}
void process::signal_group(int signo) {
  std::error_code ec;
  signal_group(signo, ec);
  if (ec) detail::throw_error(ec, "pkit::process::signal_group");
}

void process::terminate(std::error_code& ec) noexcept { signal(SIGTERM, ec); }
void process::terminate() {
  std::error_code ec;
  terminate(ec);
  if (ec) detail::throw_error(ec, "pkit::process::terminate");
}
void process::terminate(wait_t, std::error_code& ec) noexcept {
  terminate(ec);
  if (ec) return;
  try {
    join_status();
  } catch (const std::system_error& e) {
    ec = e.code();
  }
}
void process::terminate(wait_t w) {
  std::error_code ec;
  terminate(w, ec);
  if (ec) detail::throw_error(ec, "pkit::process::terminate");
}

void process::kill(std::error_code& ec) noexcept { ec = signal_run(*state_, SIGKILL, true); }
void process::kill() {
  std::error_code ec;
  kill(ec);
  if (ec) detail::throw_error(ec, "pkit::process::kill");
}

exit_status process::stop() { return stop(state_->opts.stop); }

exit_status process::stop(const stop_policy& policy) {
  auto& s = *state_;
  pid_t group = 0;
  {
    std::lock_guard<std::mutex> lock(s.m);
    if (s.runs == 0) detail::throw_error(errc::not_started, "pkit::process::stop");
    if (s.ph != process_state::phase::running) {
      if (s.last) return *s.last;
    } else {
      if (policy.kill_group && s.leader) group = s.pid;
      if (policy.timeout.count() > 0) detail::send_signal(s, policy.signal, policy.kill_group);
    }
  }
  std::optional<exit_status> st;
  if (policy.timeout == stop_policy::infinite) {
    st = join_status();
  } else if (policy.timeout.count() > 0) {
    st = join_status(policy.timeout);
  }
  if (!st) {
    std::lock_guard<std::mutex> lock(s.m);
    if (s.ph == process_state::phase::running) detail::send_signal(s, SIGKILL, policy.kill_group);
  }
  if (!st) st = join_status();
  // The leader is gone; whatever it left in its process group goes too (systemd's
  // KillMode=control-group). The group id stays reserved while any member lives, so
  // this cannot reach an unrelated process unless the group is already empty and its id
  // was handed to a brand-new group in the meantime.
  if (group > 0) ::kill(-group, SIGKILL);
  return *st;
}

std::optional<exit_status> process::join_status(std::chrono::milliseconds timeout) {
  auto& s = *state_;
  std::unique_lock<std::mutex> lock(s.m);
  if (s.runs == 0) detail::throw_error(errc::not_started, "pkit::process::join");
  const std::uint64_t run = s.runs;
  if (s.collected >= run) return s.status_of(run);
  if (detail::reaper::instance().on_reaper_thread()) {
    // Only the reaper thread can report this exit; waiting here would block it forever.
    if (s.ph == process_state::phase::exiting) return s.last;  // from its own on_exit
    detail::throw_error(errc::would_deadlock, "pkit::process::join");
  }
  if (process_access::collect_here(state_, lock, run, timeout)) {
    if (s.collected >= run) return s.status_of(run);
    return std::nullopt;  // timed out
  }
  auto done = [&] { return s.collected >= run; };
  if (timeout == stop_policy::infinite) {
    s.cv.wait(lock, done);
  } else if (!s.cv.wait_for(lock, timeout, done)) {
    return std::nullopt;
  }
  return s.status_of(run);
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
  bool running;
  {
    std::lock_guard<std::mutex> lock(state_->m);
    running = state_->ph != process_state::phase::idle;
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
  std::lock_guard<std::mutex> lock(state_->m);
  if (state_->ph != process_state::phase::running) return false;
  // The child may have exited a moment ago, before the reaper reported it: its pidfd is
  // readable from that instant.
  pollfd p{state_->pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

std::optional<pid_t> process::pid() const {
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

unique_fd& process::stdin_pipe() { return state_->pipes[0]; }
unique_fd& process::stdout_pipe() { return state_->pipes[1]; }
unique_fd& process::stderr_pipe() { return state_->pipes[2]; }

}  // namespace pkit
