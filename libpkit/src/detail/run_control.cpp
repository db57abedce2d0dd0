#include "detail/run_control.hpp"

#include "detail/child_setup.hpp"
#include "detail/fork_server_core.hpp"
#include "detail/pidfd.hpp"
#include "detail/readiness.hpp"
#include "detail/reaper.hpp"

#include <pkit/errc.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <exception>
#include <functional>
#include <memory>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace pkit::detail {
namespace {

// The group of a stopped leader is polled from 1 ms, doubling to 50 ms: most groups empty
// within a few ms of the stop signal, and a slow one costs a /proc scan every 50 ms.
constexpr std::chrono::milliseconds group_poll_first{1};
constexpr std::chrono::milliseconds group_poll_max{50};
// How long members of a group that got SIGKILL may take to vanish before the leader is
// collected anyway, naming them (a process in uninterruptible sleep dies only once it
// wakes up; a stop must not wait for it forever).
constexpr std::chrono::seconds straggler_limit{5};

// Reads a whole small file with raw system calls (no stdio: this may run while another
// thread forks).
std::string read_small_file(const char* path) {
  std::string out;
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

// now + timeout, saturating: a timeout too large to add is as good as infinite.
clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  if (timeout == stop_policy::infinite) return clock::time_point::max();
  const auto now = clock::now();
  if (timeout.count() <= 0) return now;
  const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(clock::time_point::max() - now);
  return timeout >= room ? clock::time_point::max() : now + timeout;
}

// The descendants of `leader` that are in its process group, as pidfds, found by walking
// /proc/<pid>/task/<tid>/children from the leader down while it is alive (a stop begins).
// O(descendants), not O(processes): a stop of one of 10,000 children must not read 10,000
// /proc entries. What it cannot see — a member orphaned before the stop began, one forked
// during the grace period — a process group cannot hold reliably anyway; the cgroup
// containment mode can.
std::vector<unique_fd> group_descendants(pid_t leader) {
  constexpr std::size_t limit = 4096;  // a fork bomb must not make a stop unbounded
  std::vector<unique_fd> members;
  std::vector<pid_t> pending{leader};
  std::size_t seen = 0;
  while (!pending.empty() && seen < limit) {
    const pid_t pid = pending.back();
    pending.pop_back();
    const std::string tasks_path = "/proc/" + std::to_string(pid) + "/task";
    DIR* tasks = ::opendir(tasks_path.c_str());
    if (tasks == nullptr) continue;
    while (const dirent* t = ::readdir(tasks)) {
      if (t->d_name[0] == '.') continue;
      const std::string children = read_small_file((tasks_path + "/" + t->d_name + "/children").c_str());
      const char* p = children.c_str();
      char* end = nullptr;
      for (long child = std::strtol(p, &end, 10); end != p && seen < limit;
           p = end, child = std::strtol(p, &end, 10)) {
        ++seen;
        pending.push_back(static_cast<pid_t>(child));
        if (::getpgid(static_cast<pid_t>(child)) != leader) continue;
        const int fd = pidfd_open(static_cast<pid_t>(child), 0);
        if (fd >= 0) members.emplace_back(fd);
      }
    }
    ::closedir(tasks);
  }
  return members;
}

// Drops the members that have exited (a pidfd is readable once its process has ended,
// whoever reaps it); true when none is left.
bool group_gone(std::vector<unique_fd>& members) {
  std::erase_if(members, [](const unique_fd& fd) {
    pollfd p{fd.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  });
  return members.empty();
}

exit_status reap(int pidfd) {
  // The child has exited (its pidfd is readable): this returns at once.
  siginfo_t info{};
  int r;
  do r = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED);
  while (r != 0 && errno == EINTR);
  return r == 0 ? exit_status::from_siginfo(info.si_code, info.si_status) : exit_status::lost();
}

// --- containment::cgroup (issue 8 item 6) ---------------------------------------------
// A run with a cgroup: every stop covers the whole cgroup (kill_group is implied), and
// the leader stays an unreaped zombie until the cgroup is empty, as with kill_group.

bool stops_group(const process_state& s, const stop_policy& policy) {
  return policy.kill_group || s.cg != nullptr;
}

// Whether run `run` must wait, its leader unreaped, for other processes: the cgroup's,
// or (a group stop under way) the process group's.
bool others_left(process_state& s, std::uint64_t run);

// Removes a run's cgroup now, or — while killed processes still linger in it (a process
// in uninterruptible sleep dies only when it wakes) — retries from the reaper's timers
// until it is gone: a cgroup is never left behind.
void retire_later(std::shared_ptr<cgroup> cg, std::chrono::milliseconds retry) {
  if (!cg || cg->remove()) return;
  cg->kill_all();
  try {
    const auto next = std::min<std::chrono::milliseconds>(retry * 2, std::chrono::seconds{1});
    reaper::instance().schedule(clock::now() + retry, [cg, next] { retire_later(cg, next); });
  } catch (...) {
    // No memory for the task: the cgroup's destructor tries once more.
  }
}
// --- end containment::cgroup -----------------------------------------------------------

bool waits_for_group(const process_state& s, std::uint64_t run) {
  return s.stopping && s.stopping->run == run && s.stopping->policy.kill_group && s.leader &&
         !s.server;
}

// Whether the current run's leader has exited, seen by the reaper or not yet (its pidfd
// is readable from its exit on).
bool leader_gone(const process_state& s) {
  if (s.exited) return true;
  if (s.pidfd.get() < 0) return false;
  pollfd p{s.pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

void escalate(process_state& s) {
  stop_request& st = *s.stopping;
  if (st.escalated) return;
  // A leader that obeyed the stop signal but whose exit the reaper has not collected yet
  // (it runs late behind a slow on_exit or a burst of exits) did not outlive its stop:
  // nothing is left to kill unless its group is, and its status must not say it was.
  if (!s.server && leader_gone(s) && !others_left(s, st.run)) return;
  send_signal(s, SIGKILL, stops_group(s, st.policy));
  st.escalated = true;
  st.deadline = clock::now();  // from now on: the stragglers' limit
}

struct delivery {
  process* owner = nullptr;
  std::shared_ptr<readiness> ready;
};

// Run `run` ended with `st` (reaped here, or relayed by the fork server); `s.m` held.
delivery record_exit(process_state& s, std::uint64_t run, exit_status st) {
  // Whether the stop had to kill is known only here: the status alone cannot tell a
  // stop's SIGKILL from anyone else's, nor see a group that was killed around a leader
  // that obeyed.
  if (s.stopping && s.stopping->run == run && s.stopping->escalated && !s.stopping->after_exit)
    st = st.with_stop_escalated();
  s.last = st;
  s.history[run % s.history.size()] = {run, st};
  if (auto* w = s.waited_for(run)) w->status = st;
  s.ph = process_state::phase::exiting;
  s.exited = false;
  s.watch = 0;
  if (s.stopping) {
    if (s.stopping->timer != 0) reaper::instance().cancel(s.stopping->timer);
    s.stopping.reset();
  }
  retire_cgroup(std::move(s.cg));  // empty now: removed before on_exit and joiners
  s.callback_thread = std::this_thread::get_id();
  s.in_callbacks = true;
  s.delivering = run;
  s.delivered = st;
  s.started_in_delivery = false;
  return {s.owner, std::move(s.ready_watch)};
}

// Calls run `run`'s callbacks with no lock held — on_ready first, if still pending —,
// then makes the process idle (unless the callback started it again) and wakes joiners.
// Runs a user callback; what it throws is reported on stderr, never propagated (the rest
// of the delivery must happen, or the run would stay `exiting` for ever).
template <class F>
void run_user_callback(const process_state& s, const char* which, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    try {
      std::string msg = std::string("pkit: ") + which + " of '" + s.name + "' threw: " + e.what() + "\n";
      write_all(2, msg.data(), msg.size());
    } catch (...) {
    }
  } catch (...) {
    static constexpr char msg[] = "pkit: a callback threw an unknown exception\n";
    write_all(2, msg, sizeof msg - 1);
  }
}

void deliver(process_state& s, std::uint64_t run, delivery d) {
  if (d.ready) {
    // Also without an owner: the readiness watches end with the run.
    run_user_callback(s, "on_ready", [&] { settle_readiness_at_exit(d.ready, d.owner); });
    // on_ready may have destroyed the process: its destructor, on this (the callback's)
    // thread, does not wait for us, and leaves `owner` null. Read it again.
    std::lock_guard<std::mutex> lock(s.m);
    d.owner = s.owner;
  }
  if (s.opts.on_exit && d.owner != nullptr)
    run_user_callback(s, "on_exit", [&] { s.opts.on_exit(*d.owner); });
  std::unique_ptr<process> released;
  {
    std::lock_guard<std::mutex> lock(s.m);
    // Only from `exiting`: a start may have begun meanwhile (from the callback, or from a
    // thread that heard of the exit), and its `starting` is not ours to end — the start
    // does, when it fails (end_failed_start) or publishes its run.
    if (s.runs == run && s.ph == process_state::phase::exiting) s.become_idle();
    // Handed over by process::release: destroyed once no run is left (a start from the
    // callback that failed put back `exiting`, which we just ended; the object is ours).
    if (s.ph == process_state::phase::idle) released = std::move(s.released);
    s.collected = std::max(s.collected, run);
    s.callback_thread = {};
    s.in_callbacks = false;
    s.delivering = 0;
    s.delivered.reset();
    s.started_in_delivery = false;
    s.cv.notify_all();
  }
  // Handed over by process::release: its run is over, nothing in it waits now.
  released.reset();
}

void poll_group(const std::shared_ptr<process_state>& sp, std::uint64_t run,
                std::chrono::milliseconds interval);

// The leader of run `run` has exited and is unreaped; `lock` holds `s.m`. Collects it —
// unless a group stop is under way and the group still has members: then the leader stays
// a zombie (keeping the group id reserved) and the reaper polls the group.
void collect(const std::shared_ptr<process_state>& sp, std::unique_lock<std::mutex>& lock,
             std::uint64_t run) {
  process_state& s = *sp;
  s.watch = 0;
  if (others_left(s, run)) {
    if (!s.exited) {
      s.exited = true;
      // containment::cgroup, the leader exited by itself: what it left is stopped with
      // the process's stop policy (as systemd stops a unit whose main process exited).
      if (s.cg && !(s.stopping && s.stopping->run == run)) {
        begin_stop(sp, s.opts.stop);
        // Nobody asked for this stop: killing the leftovers says nothing of the leader.
        if (s.stopping) s.stopping->after_exit = true;
      }
      reaper::instance().schedule(clock::now() + group_poll_first,
                                  [sp, run] { poll_group(sp, run, group_poll_first); });
    }
    return;
  }
  delivery d = record_exit(s, run, reap(s.pidfd.get()));
  lock.unlock();
  deliver(s, run, std::move(d));
  lock.lock();
}

void poll_group(const std::shared_ptr<process_state>& sp, std::uint64_t run,
                std::chrono::milliseconds interval) {
  process_state& s = *sp;
  std::unique_lock<std::mutex> lock(s.m);
  if (s.runs != run || s.ph != process_state::phase::running || !s.exited) return;
  const bool left = others_left(s, run);
  bool give_up = !s.stopping;
  if (left && s.stopping) {
    if (!s.stopping->escalated && clock::now() >= s.stopping->deadline) escalate(s);
    give_up = s.stopping->escalated && clock::now() >= s.stopping->deadline + straggler_limit;
  }
  if (left && !give_up) {
    const auto next = std::min(interval * 2, group_poll_max);
    reaper::instance().schedule(clock::now() + interval, [sp, run, next] { poll_group(sp, run, next); });
    return;
  }
  if (left) {
    std::string msg = "pkit: '" + s.name + "': " +
                      (s.cg ? "processes in cgroup " + s.cg->dir()
                            : std::to_string(s.stopping ? s.stopping->members.size() : 0) +
                                  " members of process group " + std::to_string(s.pid)) +
                      " outlived SIGKILL; collecting the leader anyway";
    if (s.cg)
      for (pid_t p : s.cg->members()) msg += " " + std::to_string(p);
    msg += "\n";
    write_all(2, msg.data(), msg.size());
  }
  s.exited = false;
  delivery d = record_exit(s, run, reap(s.pidfd.get()));
  lock.unlock();
  deliver(s, run, std::move(d));
}

void on_exited(const std::shared_ptr<process_state>& sp, std::uint64_t run) {
  std::unique_lock<std::mutex> lock(sp->m);
  if (sp->runs != run || sp->ph != process_state::phase::running || sp->exited) return;
  collect(sp, lock, run);
}

void on_server_exit(const std::shared_ptr<process_state>& sp, std::uint64_t run, exit_status st) {
  std::unique_lock<std::mutex> lock(sp->m);
  if (sp->runs != run || sp->ph != process_state::phase::running) return;  // stale
  delivery d = record_exit(*sp, run, st);
  lock.unlock();
  deliver(*sp, run, std::move(d));
}

void on_stop_deadline(const std::shared_ptr<process_state>& sp, std::uint64_t run) {
  std::lock_guard<std::mutex> lock(sp->m);
  process_state& s = *sp;
  if (s.runs != run || s.ph != process_state::phase::running || !s.stopping ||
      s.stopping->run != run)
    return;
  s.stopping->timer = 0;
  escalate(s);
}

// A joiner collects the exit itself when nothing needs the reaper thread for this run (no
// on_exit or on_ready callback, not a fork-server child): the exit then wakes one thread,
// not the reaper and then the joiner. Leaves `lock` held; the caller checks `collected`.
void collect_here(const std::shared_ptr<process_state>& sp, std::unique_lock<std::mutex>& lock,
                  std::uint64_t run, clock::time_point deadline) {
  process_state& s = *sp;
  if (s.server || s.opts.on_exit || s.opts.on_ready || s.collecting || s.exited ||
      s.runs != run || s.ph != process_state::phase::running || s.watch == 0)
    return;
  reaper& r = reaper::instance();
  const std::uint64_t watch = s.watch;
  const int pidfd = s.pidfd.get();  // stays open until this run is collected
  s.collecting = true;
  lock.unlock();
  if (!r.unwatch(watch)) {  // the reaper was first
    lock.lock();
    s.collecting = false;
    return;
  }
  bool exited = false;
  for (;;) {
    // Rounded up, and repeated until the deadline has really passed: a timed join must
    // never give up early.
    const auto now = clock::now();
    long long wait_ms = -1;
    if (deadline != clock::time_point::max()) {
      if (now >= deadline) {
        pollfd last{pidfd, POLLIN, 0};
        exited = ::poll(&last, 1, 0) > 0 && collectable(pidfd);
        break;
      }
      wait_ms = std::min<long long>(std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count(), 1 << 30);
    }
    pollfd pfd{pidfd, POLLIN, 0};
    const int n = ::poll(&pfd, 1, static_cast<int>(wait_ms));
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      // Readable but held by a tracer (collectable()): the reaper waits for it from here,
      // and this joiner on the condition variable, up to its deadline.
      exited = collectable(pidfd);
      break;
    }
  }
  lock.lock();
  s.collecting = false;
  if (s.runs == run && s.ph == process_state::phase::running && !s.exited) {
    if (exited) {
      collect(sp, lock, run);
    } else {
      s.watch = r.watch_exit(pidfd, [sp, run] { on_exited(sp, run); });
    }
  }
  s.cv.notify_all();
}

bool others_left(process_state& s, std::uint64_t run) {
  if (s.cg) return s.cg->populated();
  return waits_for_group(s, run) && !group_gone(s.stopping->members);
}

}  // namespace

void retire_cgroup(std::shared_ptr<cgroup> cg) { retire_later(std::move(cg), std::chrono::milliseconds{50}); }

std::error_code send_signal(process_state& s, int signo, bool group, bool group_at_exit) {
  std::error_code ec;
  if (group && s.cg) {
    // containment::cgroup: every process of the run, wherever its process group. The
    // leader gets it through its pidfd only if it was not among them (it left the cgroup).
    if (signo == SIGKILL) s.cg->kill_all();
    const bool reached = signo != SIGKILL && s.cg->signal_all(signo, s.pid);
    if (!reached && !s.exited && pidfd_send_signal(s.pidfd.get(), signo) != 0 && errno != ESRCH)
      ec.assign(errno, std::system_category());
    return ec;
  }
  // The leader is unreaped (see the lock order in process_state.hpp), so its group id is
  // still reserved: this cannot reach an unrelated group that reused it. The group signal
  // reaches the leader too; it gets the signal through its pidfd only if it has left its
  // group — once, so a program that reads a second SIGTERM as "force quit" does not.
  if (group && s.leader && s.server) {
    // A fork-server child is the server's: only the server knows whether the leader is
    // still unreaped, so it sends the group signal — a one-way record, since we hold the
    // process's lock (and may be the reaper thread): a stopped server must not hold us up.
    if (!s.server->signal_group(s.watch, signo, group_at_exit)) return {};
    // The server cannot take it — gone or shutting down (its children die with it), or so
    // many records wait for it that no more are queued: the leader's own pidfd still
    // reaches the leader.
  } else if (group && s.leader) {
    if (signal_group_led_by(s.pid, s.pidfd.get(), signo) != 0 && errno != ESRCH)
      ec.assign(errno, std::system_category());
    return ec;
  }
  if (pidfd_send_signal(s.pidfd.get(), signo) != 0 && errno != ESRCH)
    ec.assign(errno, std::system_category());
  return ec;
}

void watch_run(const std::shared_ptr<process_state>& sp, std::uint64_t run) {
  process_state& s = *sp;
  if (s.server) {
    s.server->watch(s.watch, s.pidfd.get(),
                    [sp, run](exit_status st) { on_server_exit(sp, run, st); });
  } else {
    s.watch = reaper::instance().watch_exit(s.pidfd.get(), [sp, run] { on_exited(sp, run); });
  }
}

std::uint64_t begin_stop(const std::shared_ptr<process_state>& sp, const stop_policy& policy) {
  process_state& s = *sp;
  if (s.ph != process_state::phase::running) return 0;
  const std::uint64_t run = s.runs;
  if (s.stopping && s.stopping->run == run) {
    // Joined, not begun again (no signal twice) — but the stricter of the two wins: the
    // earlier deadline, and the group if either asked for it.
    stop_request& st = *s.stopping;
    if (policy.kill_group && !st.policy.kill_group && s.leader && !s.server && !s.exited)
      st.members = group_descendants(s.pid);
    st.policy.kill_group = st.policy.kill_group || policy.kill_group;
    if (st.escalated) return run;
    if (policy.timeout.count() <= 0) {
      escalate(s);
    } else if (deadline_after(policy.timeout) < st.deadline) {
      st.deadline = deadline_after(policy.timeout);
      if (st.timer != 0) reaper::instance().cancel(st.timer);
      st.timer = reaper::instance().schedule(st.deadline, [sp, run] { on_stop_deadline(sp, run); });
    }
    return run;
  }
  stop_request req;
  req.run = run;
  req.policy = policy;
  req.deadline = deadline_after(policy.timeout);
  const bool infinite = req.deadline == clock::time_point::max();
  s.stopping = std::move(req);
  if (policy.kill_group && s.leader && !s.server) s.stopping->members = group_descendants(s.pid);
  if (policy.timeout.count() <= 0) {
    escalate(s);
    return run;
  }
  // A fork-server child's group is SIGKILLed by the server when the leader exits (the
  // server reaps it; it cannot wait for the group the way the reaper does).
  send_signal(s, policy.signal, stops_group(s, policy), /*group_at_exit=*/true);
  // A stopped child cannot act on the stop signal until it is continued.
  if (policy.signal != SIGKILL && policy.signal != SIGCONT) send_signal(s, SIGCONT, stops_group(s, policy));
  if (!infinite)
    s.stopping->timer = reaper::instance().schedule(s.stopping->deadline, [sp, run] { on_stop_deadline(sp, run); });
  return run;
}

void escalate_now(process_state& s, std::uint64_t run) {
  if (s.runs == run && s.ph == process_state::phase::running && s.stopping &&
      s.stopping->run == run)
    escalate(s);
}

std::optional<exit_status> delivered_here(const process_state& s) {
  if (!s.in_callbacks || s.callback_thread != std::this_thread::get_id()) return std::nullopt;
  return s.delivered;
}

std::optional<exit_status> own_delivery(const process_state& s) {
  if (s.started_in_delivery) return std::nullopt;
  return delivered_here(s);
}

std::optional<exit_status> join_run(const std::shared_ptr<process_state>& sp,
                                    std::unique_lock<std::mutex>& lock, std::uint64_t run,
                                    std::chrono::milliseconds timeout) {
  process_state& s = *sp;
  if (s.collected >= run) return s.status_of(run);
  if (reaper::called_on_reaper_thread()) {
    // Only the reaper thread can report this exit; waiting here would block it forever.
    // From this run's own on_exit, its status is known — whatever the phase: another
    // thread may be starting the next run already (a supervisor's restart).
    if (s.delivering == run)
      if (auto st = delivered_here(s)) return st;
    throw std::system_error(make_error_code(errc::would_deadlock), "pkit::process::join");
  }
  const auto deadline = deadline_after(timeout);
  // Registered, so that the status of this run is kept for us however many runs follow
  // before we get the lock back.
  if (auto* w = s.waited_for(run)) {
    ++w->waiters;
  } else {
    s.waited.push_back({run, 1, std::nullopt});
  }
  struct unregister {
    process_state& s;
    std::uint64_t run;
    ~unregister() {
      auto* w = s.waited_for(run);
      if (w != nullptr && --w->waiters == 0) std::erase_if(s.waited, [&](const auto& x) { return x.run == run; });
    }
  } registration{s, run};
  collect_here(sp, lock, run, deadline);
  auto done = [&] { return s.collected >= run; };
  if (deadline == clock::time_point::max()) {
    s.cv.wait(lock, done);
  } else if (!s.cv.wait_until(lock, deadline, done)) {
    return std::nullopt;
  }
  return s.status_of(run);
}

// A child just SIGKILLed, on the reaper thread, which must wait neither long for its death
// (a process in uninterruptible sleep dies late) nor for a tracer that holds its zombie
// (collectable()): such a child the reaper collects when it can, through a pidfd of its
// own, and drops the status. Returns the status when the child was collected here.
std::optional<exit_status> reap_killed(int pidfd) {
  // Collected here when it can be at once, as a synchronous kill-and-collect always was.
  if (died_within(pidfd, 200) && collectable(pidfd)) return reap(pidfd);
  // Without a descriptor, memory or an epoll slot for that, the child is left a zombie
  // (collected here only if it can be at once): never waited for.
  unique_fd own(::fcntl(pidfd, F_DUPFD_CLOEXEC, 0));
  if (!own) {
    if (collectable(pidfd)) return reap(pidfd);
    return std::nullopt;
  }
  try {
    auto held = std::make_shared<unique_fd>(std::move(own));
    const int fd = held->get();
    reaper::instance().watch_child(fd, [held](exit_status) {});  // closed with the watch
  } catch (...) {
    if (collectable(pidfd)) return reap(pidfd);
  }
  return std::nullopt;
}

std::shared_ptr<readiness> kill_and_collect_here(process_state& s, std::unique_lock<std::mutex>&) {
  if (s.ph != process_state::phase::running) return nullptr;
  send_signal(s, SIGKILL, stops_group(s, s.opts.stop));
  std::optional<exit_status> reaped;
  if (s.server) {
    s.server->unwatch(s.watch);
  } else {
    if (s.watch != 0) reaper::instance().unwatch(s.watch);  // on the reaper thread: no wait
    if (!s.collecting) reaped = reap_killed(s.pidfd.get());
  }
  // The run ends here, without callbacks — but with a status, for whoever waits for it: a
  // start(wait) of this run on another thread (the object destroyed by the previous run's
  // on_exit) joins it once it sees the child die, and waited for ever.
  const exit_status st = reaped.value_or(exit_status::killed(SIGKILL));
  s.last = st;
  s.history[s.runs % s.history.size()] = {s.runs, st};
  if (auto* w = s.waited_for(s.runs)) w->status = st;
  s.collected = std::max(s.collected, s.runs);
  s.cv.notify_all();
  if (s.stopping && s.stopping->timer != 0) reaper::instance().cancel(s.stopping->timer);
  s.stopping.reset();
  retire_cgroup(std::move(s.cg));  // removed once the killed processes are gone
  s.exited = false;
  s.watch = 0;
  s.ph = process_state::phase::idle;
  return std::move(s.ready_watch);
}

}  // namespace pkit::detail
