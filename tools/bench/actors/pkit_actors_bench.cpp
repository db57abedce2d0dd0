// pkit_actors_bench: what pkit's actor layer (process actors, supervisors) costs,
// against the raw system calls, side by side in one run. See README.md.
//
//   pkit_actors_bench                 full run (1,000 and 10,000 children; ~1 min on
//                                     two idle cores)
//   pkit_actors_bench --quick         100 children, a few iterations (CTest)
//   pkit_actors_bench --counts 1000   the many-children section with these counts only
//
// Sections: (a) restart latency, (b) request round trips, (c) exit detection,
// (d) many supervised children (start, memory, idle CPU, exit storm).
//
// Latency groups run their variants interleaved — round after round, each variant does a
// small batch, the order rotating each round — so drift hits all variants alike; the
// tables give medians (p10, p90) and ratios of medians. The exit code is 0 whether or
// not the targets are met (this is a measurement, not a test); 1 only when something
// fails outright (a start error, a reply that never comes).

#include <pkit/actors/error.hpp>
#include <pkit/actors/messages.hpp>
#include <pkit/actors/process_actor.hpp>
#include <pkit/actors/scheduler.hpp>
#include <pkit/actors/supervisor.hpp>
#include <pkit/exit_status.hpp>

#include "../bench_harness.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PKIT_ACTORS_BENCH_CHILD
#error "PKIT_ACTORS_BENCH_CHILD (the child program's path) must be defined by the build"
#endif
#ifndef PKIT_ACTORS_BENCH_BUILD_TYPE
#define PKIT_ACTORS_BENCH_BUILD_TYPE "unknown"
#endif

namespace {

namespace pa = pkit::actors;
using namespace bench;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------


const char* const child_path = PKIT_ACTORS_BENCH_CHILD;

void progress(const std::string& what) {
  std::fprintf(stderr, "pkit_actors_bench: %s...\n", what.c_str());
  std::fflush(stderr);
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

/// Resident set size of this process, in bytes (/proc/self/statm).
std::int64_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

std::int64_t open_fds() {
  std::int64_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n - 1;  // the iterator's own descriptor
}

struct cpu_sample {
  double cpu_ms = 0;  // user + system
  long switches = 0;  // voluntary + involuntary context switches
};

cpu_sample cpu_now() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) * 1e3 + static_cast<double>(tv.tv_usec) / 1e3; };
  return {ms(ru.ru_utime) + ms(ru.ru_stime), ru.ru_nvcsw + ru.ru_nivcsw};
}

/// The whole machine's CPU time from /proc/stat (clock ticks): the children's execs are
/// part of a start's cost, and they run in the children.
struct machine_cpu {
  long long busy = 0, total = 0;
  /// The share of all CPUs busy since `before` (0..1).
  double busy_since(const machine_cpu& before) const {
    const long long t = total - before.total;
    return t > 0 ? static_cast<double>(busy - before.busy) / static_cast<double>(t) : 0.0;
  }
};

machine_cpu machine_cpu_now() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  long long v[8] = {};  // user nice system idle iowait irq softirq steal
  in >> cpu;
  for (auto& x : v) in >> x;
  if (!in || cpu != "cpu") fail("cannot read /proc/stat");
  machine_cpu m;
  for (long long x : v) m.total += x;
  m.busy = m.total - v[3] - v[4];
  return m;
}

/// The soft RLIMIT_NOFILE raised to the hard limit (each supervised child holds a pidfd).
rlim_t raise_nofile() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) fail_errno("getrlimit");
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) fail_errno("setrlimit");
  }
  return rl.rlim_cur;
}

// ---------------------------------------------------------------------------------------
// Raw children
// ---------------------------------------------------------------------------------------

/// posix_spawn of the child program in `mode` (glibc: clone(CLONE_VM|CLONE_VFORK) + exec;
/// it returns once the child has exec'd).
pid_t raw_spawn(std::vector<std::string> args) {
  args.insert(args.begin(), child_path);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (int err = ::posix_spawn(&pid, child_path, nullptr, nullptr, argv.data(), environ); err != 0) {
    errno = err;
    fail_errno(std::string("posix_spawn ") + child_path);
  }
  return pid;
}

int raw_wait(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail_errno("waitpid");
  }
  return status;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

/// The page the "stamp" child writes its CLOCK_MONOTONIC exit stamp to: a file in
/// /dev/shm (the child gets only a path: pkit passes it no other descriptor), mapped
/// shared here.
class stamp_page {
public:
  stamp_page() {
    char tmpl[] = "/dev/shm/pkit-actors-bench-XXXXXX";
    fd_ = ::mkstemp(tmpl);
    if (fd_ < 0) fail_errno("mkstemp /dev/shm");
    path_ = tmpl;
    if (::ftruncate(fd_, 4096) != 0) fail_errno("ftruncate");
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) fail_errno("mmap");
    ts_ = static_cast<volatile timespec*>(p);
    arm();
  }
  stamp_page(const stamp_page&) = delete;
  stamp_page& operator=(const stamp_page&) = delete;
  ~stamp_page() {
    ::munmap(const_cast<timespec*>(ts_), 4096);
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  void arm() {
    ts_->tv_sec = 0;
    ts_->tv_nsec = unset_nsec;
  }
  /// The child's stamp, in ns; 0 if it wrote none, or not all of it yet. The kernel
  /// stores tv_sec and tv_nsec one after the other into the shared page while we spin on
  /// it: a stamp read between the two (tv_nsec still armed) came out up to a second early
  /// ("a start stamp older than the kill", in about one run in ten). Each field changes
  /// once from its armed value, so seeing neither armed means both are the child's.
  std::int64_t stamp() const {
    const auto sec = ts_->tv_sec;
    const auto nsec = ts_->tv_nsec;
    if (sec == 0 || nsec == unset_nsec) return 0;
    return static_cast<std::int64_t>(sec) * 1'000'000'000 + nsec;
  }

private:
  static constexpr long unset_nsec = 1'000'000'000;  // clock_gettime never writes it
  int fd_ = -1;
  std::string path_;
  volatile timespec* ts_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// Measurement: interleaved rounds, medians
// ---------------------------------------------------------------------------------------


// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

template <class... Ts>
std::string fmt(const char* f, Ts... v) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, v...);
  return buf;
}

/// A row of a section's table: a measured variant (median, p10, p90, n) or a single
/// value; `vs` is the ratio (or difference) to the section's baseline, if any.
struct row {
  std::string label;
  std::string median, p10, p90, n, vs;
};

row latency_row(const variant& v, const variant* base, bool as_delta = false) {
  const stats s = v.summary();
  row r{v.label, fmt("%.1f", s.median), fmt("%.1f", s.p10), fmt("%.1f", s.p90),
        std::to_string(s.n), ""};
  if (base == &v) {
    r.vs = "baseline";
  } else if (base != nullptr) {
    const stats b = base->summary();
    r.vs = as_delta ? fmt("%+.1f µs", s.median - b.median) : fmt("%.2f×", s.median / b.median);
  }
  return r;
}

struct section {
  std::string title;
  std::string unit;  // of the median/p10/p90 columns
  std::vector<row> rows;
  std::vector<std::string> notes;
};

/// Display width of a UTF-8 string (µ, ×, → count once).
std::size_t width(const std::string& s) {
  std::size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;
  return w;
}

std::string pad(const std::string& s, std::size_t w, bool right = false) {
  const std::size_t n = width(s);
  if (n >= w) return s;
  return right ? std::string(w - n, ' ') + s : s + std::string(w - n, ' ');
}

void print_section(const section& sec) {
  std::printf("\n%s\n", sec.title.c_str());
  std::size_t w0 = 7, w1 = 6, w2 = 5, w3 = 5, w4 = 3, w5 = 2;
  for (const row& r : sec.rows) {
    w0 = std::max(w0, width(r.label));
    w1 = std::max(w1, width(r.median));
    w2 = std::max(w2, width(r.p10));
    w3 = std::max(w3, width(r.p90));
    w4 = std::max(w4, width(r.n));
    w5 = std::max(w5, width(r.vs));
  }
  const std::string med = "median" + (sec.unit.empty() ? "" : " " + sec.unit);
  w1 = std::max(w1, width(med));
  std::printf("  %s  %s  %s  %s  %s  %s\n", pad("variant", w0).c_str(), pad(med, w1, true).c_str(),
              pad("p10", w2, true).c_str(), pad("p90", w3, true).c_str(), pad("n", w4, true).c_str(),
              pad("vs", w5).c_str());
  std::printf("  %s\n", std::string(w0 + w1 + w2 + w3 + w4 + w5 + 10, '-').c_str());
  for (const row& r : sec.rows)
    std::printf("  %s  %s  %s  %s  %s  %s\n", pad(r.label, w0).c_str(), pad(r.median, w1, true).c_str(),
                pad(r.p10, w2, true).c_str(), pad(r.p90, w3, true).c_str(), pad(r.n, w4, true).c_str(),
                r.vs.c_str());
  for (const std::string& n : sec.notes) std::printf("  note: %s\n", n.c_str());
}

struct target_check {
  std::string what;
  std::string measured;
  std::string target;
  bool pass;
};

void print_targets(const std::vector<target_check>& checks) {
  std::printf("\nTargets\n");
  std::size_t w0 = 6, w1 = 8;
  for (const auto& c : checks) {
    w0 = std::max(w0, width(c.what));
    w1 = std::max(w1, width(c.measured));
  }
  for (const auto& c : checks)
    std::printf("  %s  %s  %s  (target %s)\n", c.pass ? "PASS" : "MISS", pad(c.what, w0).c_str(),
                pad(c.measured, w1, true).c_str(), c.target.c_str());
}

// ---------------------------------------------------------------------------------------
// Actor helpers
// ---------------------------------------------------------------------------------------

constexpr auto reply_timeout = std::chrono::seconds(30);

/// Before an idle measurement: CAF's idle workers poll for a while (100 attempts, then
/// 500 × 50 µs sleeps) before they block; this lets that tail of the last activity pass.
constexpr auto settle_time = std::chrono::milliseconds(250);

std::string render(caf::actor_system& sys, const caf::error& err) { return sys.render(err); }

pa::child_spec pause_child(std::string id) {
  pa::child_spec c;
  c.id = std::move(id);
  c.process.argv = {child_path, "pause"};
  c.restart = pa::restart_type::permanent;
  // brutal_kill. A graceful stop (shutdown_ms > 0) arms a stop deadline: a delayed
  // message through a timer relay actor, pending for shutdown_ms. If more than 64 of them
  // are pending when the actor system is destroyed, CAF 0.17.6's clock thread deadlocks
  // (it destroys the relays, whose cleanup pushes into its own full 64-slot queue) and
  // the program never exits. Killing outright arms no deadline.
  c.shutdown_ms = 0;
  return c;
}

pa::supervisor_flags bench_flags() {
  pa::supervisor_flags f;
  f.strategy = pa::restart_strategy::one_for_one;
  // Never give up: the exit storm restarts every child at once.
  f.intensity = 1'000'000'000;
  f.period_ms = 1000;
  return f;
}

std::vector<pa::child_info> which_children(caf::scoped_actor& self, const pa::supervisor_actor& sup) {
  std::vector<pa::child_info> out;
  self->request(sup, reply_timeout, pa::which_children_atom_v)
      .receive([&](std::vector<pa::child_info>& all) { out = std::move(all); },
               [&](caf::error& err) { fail("which_children: " + render(self->system(), err)); });
  return out;
}

void subscribe(caf::scoped_actor& self, const pa::supervisor_actor& sup, caf::scoped_actor& who,
               pa::event_mask kinds) {
  self->request(sup, reply_timeout, pa::subscribe_atom_v, caf::actor_cast<caf::actor>(who), kinds)
      .receive([](caf::ok_atom) {},
               [&](caf::error& err) { fail("subscribe: " + render(self->system(), err)); });
}

void stop_supervisor(caf::scoped_actor& self, const pa::supervisor_actor& sup,
                     std::chrono::seconds timeout = std::chrono::seconds(120)) {
  self->request(sup, timeout, pa::stop_atom_v)
      .receive([](caf::ok_atom) {},
               [&](caf::error& err) { fail("supervisor stop: " + render(self->system(), err)); });
}

/// Waits for the `ready` event of child `id` with an incarnation above `after_inc`;
/// returns (incarnation, pid). Other events are consumed.
std::pair<std::uint64_t, std::int32_t> await_ready(caf::scoped_actor& ev, const std::string& id,
                                                   std::uint64_t after_inc) {
  for (;;) {
    std::optional<std::pair<std::uint64_t, std::int32_t>> got;
    bool timed_out = false;
    ev->receive(
        [&](const pa::supervisor_event& e) {
          if (e.child == id && e.kind == pa::event_kind::ready && e.incarnation > after_inc)
            got.emplace(e.incarnation, e.pid);
          if (e.kind == pa::event_kind::gave_up || e.kind == pa::event_kind::fatal)
            fail("supervisor event " + pa::to_string(e.kind) + ": " + e.reason);
        },
        caf::after(reply_timeout) >> [&] { timed_out = true; });
    if (timed_out) fail("no ready event for " + id);
    if (got) return *got;
  }
}

// ---------------------------------------------------------------------------------------
// (a) restart latency
// ---------------------------------------------------------------------------------------

/// Waits (spinning: the child is due within microseconds) until the "run" child has
/// written its start stamp to `page`; the stamp in ns.
std::int64_t await_stamp(const stamp_page& page, const char* who) {
  const std::int64_t give_up = now_ns() + 5'000'000'000;
  for (;;) {
    if (const std::int64_t s = page.stamp(); s != 0) return s;
    if (now_ns() > give_up) fail(std::string(who) + ": the new child wrote no start stamp within 5 s");
    ::sched_yield();
  }
}

/// A supervised "run" child (it stamps CLOCK_MONOTONIC as its first act, then blocks)
/// under a one_for_one supervisor. The restart is measured as the issue defines it:
/// SIGKILL → the new child runs, i.e. until its stamp. The ready event the benchmark
/// waits for to know the restart happened is one thread wake-up later (the supervisor →
/// this scoped_actor); it is recorded apart (`event_us`) and reported as a note.
struct restart_fixture {
  stamp_page page;
  pa::supervisor_actor sup;
  caf::scoped_actor ev;
  std::uint64_t inc = 0;
  std::int32_t pid = 0;
  std::vector<double> event_us;

  explicit restart_fixture(caf::actor_system& sys, caf::scoped_actor& self) : ev{sys} {
    pa::supervisor_spec spec;
    spec.name = "bench-restart";
    spec.flags = bench_flags();
    spec.children = {pause_child("c")};
    spec.children.front().process.argv = {child_path, "run", page.path()};
    sup = pa::spawn_supervisor(sys, spec);
    // Only `ready` (and the supervisor giving up): a subscriber woken for every event of a
    // restart (exited, restarting, started) competes for the two cores with the restart
    // it measures.
    subscribe(self, sup, ev, pa::mask_of({pa::event_kind::ready, pa::event_kind::gave_up, pa::event_kind::fatal}));
    // Subscribed before which_children is answered: a ready event we missed shows as a
    // running child here, one still to come arrives as an event.
    auto all = which_children(self, sup);
    if (all.size() != 1) fail("restart supervisor: expected one child");
    if (all.front().state == pa::child_state::running && all.front().pid > 0) {
      inc = all.front().incarnation;
      pid = all.front().pid;
    } else {
      std::tie(inc, pid) = await_ready(ev, "c", 0);
    }
  }

  /// SIGKILL the child; the time until its successor runs (its start stamp, µs).
  double once() {
    page.arm();
    const std::int64_t t0 = now_ns();
    if (::kill(pid, SIGKILL) != 0) fail_errno("kill supervised child");
    std::tie(inc, pid) = await_ready(ev, "c", inc);
    event_us.push_back(us_since(t0));
    const std::int64_t runs = await_stamp(page, "pkit restart");
    if (runs < t0) fail("pkit restart: a start stamp older than the kill");
    return static_cast<double>(runs - t0) / 1e3;
  }
};

/// The same restart without pkit: SIGKILL, waitpid, posix_spawn of the same "run" child,
/// until its start stamp.
struct raw_restart {
  stamp_page page;
  pid_t child = raw_spawn({"run", page.path()});

  raw_restart() { (void)await_stamp(page, "raw restart"); }
  raw_restart(const raw_restart&) = delete;
  raw_restart& operator=(const raw_restart&) = delete;
  ~raw_restart() {
    ::kill(child, SIGKILL);
    (void)raw_wait(child);
  }
  double once() {
    page.arm();
    const std::int64_t t0 = now_ns();
    ::kill(child, SIGKILL);
    (void)raw_wait(child);
    child = raw_spawn({"run", page.path()});
    return static_cast<double>(await_stamp(page, "raw restart") - t0) / 1e3;
  }
};

// ---------------------------------------------------------------------------------------
// (b) a raw cross-thread round trip, for reference
// ---------------------------------------------------------------------------------------

/// A server thread answering pings through a mutex and two condition variables: the
/// floor of any request/reply between two threads that block while idle (as a
/// scoped_actor and a CAF worker do).
class ping_pong {
public:
  ping_pong() : server_([this] { serve(); }) {}
  ping_pong(const ping_pong&) = delete;
  ping_pong& operator=(const ping_pong&) = delete;
  ~ping_pong() {
    {
      std::lock_guard<std::mutex> lock(m_);
      quit_ = true;
    }
    req_cv_.notify_one();
    server_.join();
  }
  double once() {
    const std::int64_t t0 = now_ns();
    std::unique_lock<std::mutex> lock(m_);
    ++requests_;
    req_cv_.notify_one();
    rep_cv_.wait(lock, [&] { return replies_ == requests_; });
    return us_since(t0);
  }

private:
  void serve() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      req_cv_.wait(lock, [&] { return quit_ || requests_ != replies_; });
      if (quit_) return;
      replies_ = requests_;
      rep_cv_.notify_one();
    }
  }
  std::mutex m_;
  std::condition_variable req_cv_, rep_cv_;
  std::uint64_t requests_ = 0, replies_ = 0;
  bool quit_ = false;
  std::thread server_;
};

// ---------------------------------------------------------------------------------------
// (c) exit detection
// ---------------------------------------------------------------------------------------

/// The raw waiter: the calling thread blocks in epoll_wait on the child's pidfd, then
/// collects it with waitid(P_PIDFD) — what pkit's reaper thread does, minus pkit.
class raw_exit_waiter {
public:
  raw_exit_waiter() : ep_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (ep_ < 0) fail_errno("epoll_create1");
  }
  raw_exit_waiter(const raw_exit_waiter&) = delete;
  raw_exit_waiter& operator=(const raw_exit_waiter&) = delete;
  ~raw_exit_waiter() { ::close(ep_); }

  /// Spawns a stamping child, waits for its exit; the receipt time (ns, after waitid).
  std::int64_t run(const std::vector<std::string>& args) {
    const pid_t pid = raw_spawn(args);
    const int pidfd = pidfd_open(pid);
    if (pidfd < 0) fail_errno("pidfd_open");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = pidfd;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, pidfd, &ev) != 0) fail_errno("epoll_ctl");
    epoll_event got{};
    while (::epoll_wait(ep_, &got, 1, -1) != 1) {
      if (errno != EINTR) fail_errno("epoll_wait");
    }
    siginfo_t info{};
    if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED) != 0)
      fail_errno("waitid");
    const std::int64_t t = now_ns();
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, pidfd, nullptr);
    ::close(pidfd);
    if (info.si_code != CLD_EXITED || info.si_status != 0) fail("raw stamp child did not exit with 0");
    return t;
  }

private:
  int ep_;
};

// ---------------------------------------------------------------------------------------
// (d) many supervised children
// ---------------------------------------------------------------------------------------

struct many_result {
  std::size_t n = 0;
  double raw_spawn_ms = 0;      // serial posix_spawn of n pause children
  double raw_kill_reap_ms = 0;  // kill all, waitpid all
  double pkit_start_ms = 0;     // start_child × n, until the last reply
  double raw_busy = 0;          // the machine's CPUs busy during the raw spawns (0..1)
  double pkit_busy = 0;         // ... during pkit's start
  double first_tenth_us = 0;    // per child, over the first 10% of the replies
  double last_tenth_us = 0;     // per child, over the last 10%
  double rss_per_child = 0;     // bytes
  double rss_per_child_trimmed = 0;
  double fds_per_child = 0;
  double which_children_ms = 0;
  double idle_cpu_ms = 0;
  double idle_seconds = 0;
  double idle_switches_per_s = 0;
  double kill_loop_ms = 0;
  std::size_t exits_seen = 0;
  std::size_t restarts_seen = 0;
  std::size_t active_after = 0;
  double all_exits_ms = 0;
  double all_restarted_ms = 0;
  bool gave_up = false;
  bool storm_timed_out = false;
  double stop_ms = 0;
};

void raw_many(many_result& r, std::size_t n) {
  std::vector<pid_t> pids;
  pids.reserve(n);
  const std::int64_t t0 = now_ns();
  const machine_cpu m0 = machine_cpu_now();
  for (std::size_t i = 0; i < n; ++i) pids.push_back(raw_spawn({"pause"}));
  r.raw_spawn_ms = ms_since(t0);
  r.raw_busy = machine_cpu_now().busy_since(m0);
  const std::int64_t t1 = now_ns();
  for (pid_t p : pids) ::kill(p, SIGKILL);
  for (pid_t p : pids) {
    const int st = raw_wait(p);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) fail("raw pause child: unexpected status");
  }
  r.raw_kill_reap_ms = ms_since(t1);
}

/// posix_spawn+waitpid of the "exit" child, once (µs).
double raw_round_trip() {
  const std::int64_t t0 = now_ns();
  const int st = raw_wait(raw_spawn({"exit"}));
  const double us = us_since(t0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("raw exit child did not exit with 0");
  return us;
}

/// What holding `extra` descriptors costs every spawn, pkit or not: the median
/// posix_spawn+waitpid round trip without and with `extra` more open (close-on-exec)
/// descriptors — the clone copies the descriptor table, the exec closes them.
std::pair<double, double> fd_table_cost(std::size_t extra, int samples) {
  auto measure = [samples] {
    std::vector<double> v;
    for (int i = 0; i < samples; ++i) v.push_back(raw_round_trip());
    return summarize(v).median;
  };
  const double without = measure();
  const int base = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (base < 0) fail_errno("open /dev/null");
  std::vector<int> fds;
  fds.reserve(extra);
  for (std::size_t i = 1; i < extra; ++i) {
    const int fd = ::fcntl(base, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) fail_errno("F_DUPFD_CLOEXEC");
    fds.push_back(fd);
  }
  const double with = measure();
  for (int fd : fds) ::close(fd);
  ::close(base);
  return {without, with};
}

std::size_t index_of(const std::string& id) {
  // ids are "w<i>"
  return static_cast<std::size_t>(std::stoul(id.substr(1)));
}

void pkit_many(many_result& r, std::size_t n, caf::actor_system& sys, caf::scoped_actor& self,
               double idle_s) {
  pa::supervisor_spec spec;
  spec.name = "bench-many";
  spec.flags = bench_flags();
  // Independent children: as many starting at once as the scheduler has workers.
  spec.flags.start_concurrency = static_cast<std::int32_t>(sys.scheduler().num_workers());
  auto sup = pa::spawn_supervisor(sys, spec);
  // Settle the supervisor before the baseline (its initial, empty start plan).
  (void)which_children(self, sup);

  // Specs built beforehand: not part of the timing.
  std::vector<pa::child_spec> specs;
  specs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) specs.push_back(pause_child("w" + std::to_string(i)));

  ::malloc_trim(0);
  const std::int64_t rss0 = rss_bytes();
  const std::int64_t fds0 = open_fds();

  // start_child × n, pipelined: up to `window` requests in flight (the supervisor runs up
  // to start_concurrency of them at once; the window keeps it busy without parking n
  // messages in its mailbox).
  constexpr std::size_t window = 256;
  using handle = decltype(self->request(sup, caf::infinite, pa::start_child_atom_v, pa::child_spec{}));
  std::deque<handle> pending;
  std::vector<std::int32_t> pids(n, 0);
  std::size_t replied = 0;
  const std::size_t tenth = std::max<std::size_t>(1, n / 10);
  std::int64_t t_first_tenth = 0, t_last_tenth = 0;
  auto collect_one = [&] {
    pending.front().receive(
        [&](pa::child_info& info) {
          pids[index_of(info.id)] = info.pid;
          ++replied;
          if (replied == tenth) t_first_tenth = now_ns();
          if (replied == n - tenth) t_last_tenth = now_ns();
        },
        [&](caf::error& err) { fail("start_child: " + render(sys, err)); });
    pending.pop_front();
  };
  const std::int64_t t0 = now_ns();
  const machine_cpu m0 = machine_cpu_now();
  for (std::size_t i = 0; i < n; ++i) {
    if (pending.size() == window) collect_one();
    pending.push_back(self->request(sup, caf::infinite, pa::start_child_atom_v, std::move(specs[i])));
  }
  while (!pending.empty()) collect_one();
  r.pkit_start_ms = ms_since(t0);
  r.pkit_busy = machine_cpu_now().busy_since(m0);
  r.first_tenth_us = static_cast<double>(t_first_tenth - t0) / 1e3 / static_cast<double>(tenth);
  r.last_tenth_us = static_cast<double>(now_ns() - t_last_tenth) / 1e3 / static_cast<double>(tenth);
  specs.clear();
  specs.shrink_to_fit();

  const std::int64_t rss1 = rss_bytes();
  const std::int64_t fds1 = open_fds();
  ::malloc_trim(0);
  const std::int64_t rss1t = rss_bytes();
  r.rss_per_child = static_cast<double>(rss1 - rss0) / static_cast<double>(n);
  r.rss_per_child_trimmed = static_cast<double>(rss1t - rss0) / static_cast<double>(n);
  r.fds_per_child = static_cast<double>(fds1 - fds0) / static_cast<double>(n);
  for (std::int32_t p : pids)
    if (p <= 0) fail("start_child replied without a pid");

  {
    const std::int64_t t = now_ns();
    auto all = which_children(self, sup);
    r.which_children_ms = ms_since(t);
    if (all.size() != n) fail("which_children: wrong number of children");
  }

  // Idle: every child running, nothing happening. After a settling pause: CAF's workers
  // poll for ~50 ms after their last job (a one-off tail of the start, not idling).
  {
    std::this_thread::sleep_for(settle_time);
    const cpu_sample c0 = cpu_now();
    const std::int64_t t = now_ns();
    std::this_thread::sleep_for(std::chrono::duration<double>(idle_s));
    const cpu_sample c1 = cpu_now();
    r.idle_seconds = static_cast<double>(now_ns() - t) / 1e9;
    r.idle_cpu_ms = c1.cpu_ms - c0.cpu_ms;
    r.idle_switches_per_s = static_cast<double>(c1.switches - c0.switches) / r.idle_seconds;
  }

  // The exit storm: SIGKILL every child in a tight loop; count `exited` events (of the
  // first runs) and `ready` events of the new runs.
  {
    caf::scoped_actor storm{sys};
    subscribe(self, sup, storm, pa::mask_of({pa::event_kind::exited, pa::event_kind::ready}));
    std::vector<char> exited(n, 0), restarted(n, 0);
    const std::int64_t t0s = now_ns();
    for (std::int32_t p : pids) ::kill(p, SIGKILL);
    r.kill_loop_ms = ms_since(t0s);
    const std::int64_t overall = now_ns() + static_cast<std::int64_t>(60 + n / 100) * 1'000'000'000;
    while ((r.exits_seen < n || r.restarts_seen < n) && !r.gave_up) {
      bool quiet = false;
      storm->receive(
          [&](const pa::supervisor_event& e) {
            if (e.kind == pa::event_kind::gave_up) {
              r.gave_up = true;
              return;
            }
            const std::size_t i = index_of(e.child);
            if (i >= n) return;
            if (e.kind == pa::event_kind::exited && e.incarnation == 1 && !exited[i]) {
              exited[i] = 1;
              if (++r.exits_seen == n) r.all_exits_ms = ms_since(t0s);
            } else if (e.kind == pa::event_kind::ready && e.incarnation >= 2 && !restarted[i]) {
              restarted[i] = 1;
              if (++r.restarts_seen == n) r.all_restarted_ms = ms_since(t0s);
            }
          },
          caf::after(std::chrono::seconds(10)) >> [&] { quiet = true; });
      if (quiet || now_ns() > overall) {
        r.storm_timed_out = true;
        break;
      }
    }
    self->request(sup, reply_timeout, pa::count_children_atom_v)
        .receive([&](pa::child_counts c) { r.active_after = c.active; },
                 [&](caf::error& err) { fail("count_children: " + render(sys, err)); });
  }

  const std::int64_t ts = now_ns();
  stop_supervisor(self, sup);
  r.stop_ms = ms_since(ts);
}

// ---------------------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------------------

struct settings {
  bool quick = false;
  std::vector<std::size_t> counts;  // empty: the mode's default
  bool work_stealing = false;       // diagnostic: CAF's default scheduler instead of pkit's
  std::string sections = "abcd";    // which sections to run
  std::size_t threads = 0;          // diagnostic: CAF worker threads (0: CAF's default)

  bool wants(char section) const { return sections.find(section) != std::string::npos; }
};

int usage(const char* argv0, int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: %s [--quick] [--counts N[,N...]] [--sections abcd] [--threads N] [--work-stealing]\n"
               "  Measures pkit's process actors and supervisors against raw posix_spawn /\n"
               "  waitpid / pidfd+epoll and prints medians, ratios and PASS/MISS per target.\n"
               "  --quick           100 children, a few iterations (exercises the code; numbers are noise)\n"
               "  --counts          the child counts of section (d) (default 1000,10000; quick: 100)\n"
               "  --sections        run only these sections (letters of a b c d; default all)\n"
               "  --threads         diagnostic: this many CAF worker threads (default: CAF's choice)\n"
               "  --work-stealing   diagnostic: CAF's default work-stealing scheduler (idle workers\n"
               "                    poll, then sleep in 50 µs steps) instead of the scheduler that\n"
               "                    pkit::actors::use_pkit_scheduler selects\n",
               argv0);
  return code;
}

std::string kb(double bytes) { return fmt("%.2f KB", bytes / 1024.0); }

int run(const settings& opt, caf::actor_system& sys);

int run_bench(const settings& opt) {
  const bool quick = opt.quick;
  const rlim_t nofile = raise_nofile();
  utsname u{};
  ::uname(&u);
  std::printf("pkit_actors_bench (%s mode): Linux %s %s, %ld CPUs online, build %s, "
              "RLIMIT_NOFILE %llu\n",
              quick ? "quick" : "full", u.release, u.machine, ::sysconf(_SC_NPROCESSORS_ONLN),
              PKIT_ACTORS_BENCH_BUILD_TYPE, static_cast<unsigned long long>(nofile));
  std::printf("load average at start: %s\n", loadavg().c_str());
  std::printf("child program: %s\n", child_path);
  if (quick) std::printf("quick mode: too few samples to judge; run without --quick\n");
  std::fflush(stdout);

  caf::actor_system_config cfg;
  pa::init(cfg);
  pa::use_pkit_scheduler(cfg);
  if (opt.work_stealing) cfg.set("scheduler.policy", caf::atom("stealing"));
  if (opt.threads > 0) cfg.set("scheduler.max-threads", opt.threads);
  std::printf("CAF scheduler: %s\n",
              opt.work_stealing ? "work stealing, CAF's default (--work-stealing: a diagnostic run)"
                                : "pkit's (work sharing + hand-off), as pkit::actors::use_pkit_scheduler selects");
  std::fflush(stdout);
  caf::actor_system sys{cfg};
  std::printf("CAF worker threads: %zu\n", sys.scheduler().num_workers());
  std::fflush(stdout);
  try {
    return run(opt, sys);
  } catch (const std::exception& e) {
    // Not through the actor system's destructor: it would wait for actors (a supervisor
    // with running children) that nobody stops now. Every child of ours dies with us
    // (PR_SET_PDEATHSIG: pkit's children by pkit's default options, the raw ones by
    // their own request).
    std::fflush(stdout);
    std::fprintf(stderr, "pkit_actors_bench: error: %s\n", e.what());
    std::fflush(stderr);
    std::_Exit(1);
  }
}

int run(const settings& opt, caf::actor_system& sys) {
  const bool quick = opt.quick;
  const plan restart_plan = quick ? plan{2, 5, 2} : plan{20, 60, 5};
  const plan rtt_plan = quick ? plan{20, 5, 20} : plan{500, 100, 50};
  const plan exit_plan = quick ? plan{1, 3, 2} : plan{10, 50, 4};
  const std::int64_t stamp_delay_us = 3000;
  std::vector<std::size_t> counts = opt.counts;
  if (counts.empty()) counts = quick ? std::vector<std::size_t>{100} : std::vector<std::size_t>{1000, 10000};
  const double idle_s = quick ? 0.2 : 2.0;

  caf::scoped_actor self{sys};
  std::vector<section> sections;
  std::vector<target_check> checks;
  std::vector<std::unique_ptr<variant>> store;
  auto make = [&store](std::string label, std::function<double()> once) {
    store.push_back(std::make_unique<variant>(variant{std::move(label), std::move(once), {}}));
    return store.back().get();
  };

  // (a) restart latency -------------------------------------------------------------------
  progress("(a) restart latency");
  restart_fixture restart{sys, self};
  if (opt.wants('a')) {
    variant* vp = make("pkit one_for_one: SIGKILL → the new child runs", [&] { return restart.once(); });
    variant* vb = make("raw posix_spawn+waitpid round trip", [] { return raw_round_trip(); });
    raw_restart raw;
    variant* vr = make("raw restart: kill, waitpid, posix_spawn → the new child runs", [&raw] { return raw.once(); });
    run_interleaved({vp, vb, vr}, restart_plan);
    section s{"(a) restart latency: SIGKILL of a supervised child → the new child runs (its own first stamp)", "µs", {}, {}};
    s.rows.push_back(latency_row(*vp, vb));
    s.rows.push_back(latency_row(*vb, vb));
    s.rows.push_back(latency_row(*vr, vb));
    s.notes.push_back("pkit vs raw restart (the same three steps without pkit): " +
                      fmt("%.2f×", vp->summary().median / vr->summary().median));
    // The warm-up iterations are recorded too: only the measured ones count.
    const std::vector<double> events(restart.event_us.end() - static_cast<std::ptrdiff_t>(vp->samples.size()),
                                     restart.event_us.end());
    s.notes.push_back("pkit: the successor's ready event reached the benchmark's subscriber after " +
                      fmt("%.1f µs", summarize(events).median) + " (median; one thread wake-up after the child runs)");
    sections.push_back(std::move(s));
    const double ratio = vp->summary().median / vb->summary().median;
    checks.push_back({"(a) restart / raw posix_spawn+waitpid", fmt("%.2f×", ratio), "≤ 1.30×", ratio <= 1.3});
  }

  // (b) request round trips ---------------------------------------------------------------
  progress("(b) request round trips");
  if (opt.wants('b')) {
    auto all = which_children(self, restart.sup);
    auto proc = caf::actor_cast<pa::process_actor>(all.front().handle);
    if (!proc) fail("which_children gave no process actor");
    variant* vs = make("process actor: status_atom → process_info", [&] {
      const std::int64_t t0 = now_ns();
      bool ok = false;
      self->request(proc, caf::infinite, pa::status_atom_v)
          .receive([&](pa::process_info& i) { ok = i.state == pa::process_state::running; },
                   [&](caf::error& err) { fail("status: " + render(sys, err)); });
      const double us = us_since(t0);
      if (!ok) fail("status: the child is not running");
      return us;
    });
    variant* vw = make("supervisor (1 child): which_children", [&] {
      const std::int64_t t0 = now_ns();
      std::size_t k = 0;
      self->request(restart.sup, caf::infinite, pa::which_children_atom_v)
          .receive([&](std::vector<pa::child_info>& v) { k = v.size(); },
                   [&](caf::error& err) { fail("which_children: " + render(sys, err)); });
      const double us = us_since(t0);
      if (k != 1) fail("which_children: expected one child");
      return us;
    });
    ping_pong pp;
    variant* vt = make("raw: thread round trip (mutex + condvar)", [&] { return pp.once(); });
    run_interleaved({vs, vw, vt}, rtt_plan);
    section s{"(b) request round trip from a scoped_actor", "µs", {}, {}};
    s.rows.push_back(latency_row(*vs, vt));
    s.rows.push_back(latency_row(*vw, vt));
    s.rows.push_back(latency_row(*vt, vt));
    sections.push_back(std::move(s));
    const double ms = vs->summary().median, mw = vw->summary().median;
    checks.push_back({"(b) status_atom round trip", fmt("%.1f µs", ms), "< 20 µs", ms < 20});
    checks.push_back({"(b) which_children round trip", fmt("%.1f µs", mw), "< 20 µs", mw < 20});
  }

  // (c) exit detection --------------------------------------------------------------------
  progress("(c) exit detection");
  if (opt.wants('c')) {
    stamp_page page;
    const std::vector<std::string> stamp_args{"stamp", page.path(), std::to_string(stamp_delay_us)};
    pa::process_spec spec;
    spec.argv = {child_path};
    spec.argv.insert(spec.argv.end(), stamp_args.begin(), stamp_args.end());

    // join: the reply to a join request made while the child still runs.
    auto joined = pa::spawn_process(sys, spec);
    std::size_t late = 0;
    variant* vj = make("pkit process actor: join reply", [&] {
      for (int attempt = 0; attempt < 50; ++attempt) {
        page.arm();
        self->request(joined, reply_timeout, pa::start_atom_v)
            .receive([](std::int32_t) {}, [&](caf::error& err) { fail("start: " + render(sys, err)); });
        const std::int64_t asked = now_ns();
        std::int64_t got = 0;
        self->request(joined, reply_timeout, pa::join_atom_v)
            .receive(
                [&](pkit::exit_status st) {
                  got = now_ns();
                  if (!st.success()) fail("stamp child: " + st.to_string());
                },
                [&](caf::error& err) { fail("join: " + render(sys, err)); });
        const std::int64_t stamp = page.stamp();
        if (stamp == 0) fail("stamp child wrote no stamp");
        if (asked < stamp) return static_cast<double>(got - stamp) / 1e3;
        ++late;  // join asked after the exit: not an exit detection; again
      }
      fail("join: the child always exited before the join request (machine overloaded?)");
    });

    // observer: the child_exited message to the process actor's observer (an
    // event-based actor that stamps it on arrival and passes the stamp on).
    caf::scoped_actor sink{sys};
    // The argument is unused: CAF 0.17.6 dereferences a null tuple for argument-less actor functions.
    auto recorder = sys.spawn([to = caf::actor_cast<caf::actor>(sink)](caf::event_based_actor*, int) -> caf::behavior {
      return {
          [](pa::child_started_atom, const std::string&, std::uint64_t, std::int32_t) {},
          [](pa::child_ready_atom, const std::string&, std::uint64_t, std::int32_t) {},
          [to](pa::child_exited_atom, const std::string&, std::uint64_t, pkit::exit_status st) {
            const std::int64_t t = now_ns();
            caf::anon_send(to, t, st.success());
          },
      };
    }, 0);
    auto observed = pa::spawn_process(sys, spec, nullptr, pa::process_observer{recorder, "x"});
    variant* vo = make("pkit process actor: observer child_exited", [&] {
      page.arm();
      self->request(observed, reply_timeout, pa::start_atom_v)
          .receive([](std::int32_t) {}, [&](caf::error& err) { fail("start: " + render(sys, err)); });
      std::int64_t got = 0;
      sink->receive(
          [&](std::int64_t t, bool ok) {
            got = t;
            if (!ok) fail("stamp child did not exit with 0");
          },
          caf::after(reply_timeout) >> [] { fail("no observer message"); });
      const std::int64_t stamp = page.stamp();
      if (stamp == 0) fail("stamp child wrote no stamp");
      return static_cast<double>(got - stamp) / 1e3;
    });

    raw_exit_waiter waiter;
    variant* vr = make("raw pidfd+epoll waiter (+ waitid)", [&] {
      page.arm();
      const std::int64_t got = waiter.run(stamp_args);
      const std::int64_t stamp = page.stamp();
      if (stamp == 0) fail("raw stamp child wrote no stamp");
      return static_cast<double>(got - stamp) / 1e3;
    });
    run_interleaved({vj, vo, vr}, exit_plan);
    section s{"(c) exit detection: the child's last CLOCK_MONOTONIC stamp → its exit is known", "µs", {}, {}};
    s.rows.push_back(latency_row(*vj, vr, true));
    s.rows.push_back(latency_row(*vo, vr, true));
    s.rows.push_back(latency_row(*vr, vr, true));
    if (late > 0)
      s.notes.push_back(std::to_string(late) + " join samples repeated: the child exited before the join request");
    sections.push_back(std::move(s));
    self->send_exit(joined, caf::exit_reason::user_shutdown);
    self->send_exit(observed, caf::exit_reason::user_shutdown);
    self->send_exit(recorder, caf::exit_reason::user_shutdown);
  }

  // (d) many supervised children ---------------------------------------------------------
  if (opt.wants('d')) {
    progress(fmt("(d) idle CPU baseline (%.1f s, no supervised children besides (a)'s)", idle_s));
    std::this_thread::sleep_for(settle_time);
    const cpu_sample c0 = cpu_now();
    const std::int64_t t = now_ns();
    std::this_thread::sleep_for(std::chrono::duration<double>(idle_s));
    const cpu_sample c1 = cpu_now();
    const double secs = static_cast<double>(now_ns() - t) / 1e9;
    const double base_cpu_ms = c1.cpu_ms - c0.cpu_ms;
    const double base_switches = static_cast<double>(c1.switches - c0.switches) / secs;

    section s{"(d) many supervised children (one_for_one, start_child × N, start_concurrency = workers; children: bench_child pause)", "", {}, {}};
    s.rows.push_back({"idle parent CPU, no children (baseline)", fmt("%.1f ms", base_cpu_ms), "", "",
                      fmt("%.1f s", secs), fmt("%.2f%% of a core, %.0f ctx switches/s", base_cpu_ms / secs / 10, base_switches)});
    for (std::size_t n : counts) {
      const int reps = quick ? 1 : (n <= 1000 ? 3 : 1);
      std::vector<many_result> results;
      for (int rep = 0; rep < reps; ++rep) {
        many_result r;
        r.n = n;
        progress(fmt("(d) %.0f children", static_cast<double>(n)) + " (run " + std::to_string(rep + 1) + "/" +
                 std::to_string(reps) + ")");
        // Alternate the order between runs so drift does not favour one side.
        if (rep % 2 == 0) {
          raw_many(r, n);
          pkit_many(r, n, sys, self, idle_s);
        } else {
          pkit_many(r, n, sys, self, idle_s);
          raw_many(r, n);
        }
        results.push_back(r);
      }
      auto med = [&](auto field) {
        std::vector<double> v;
        for (const auto& r : results) v.push_back(static_cast<double>(r.*field));
        return summarize(v).median;
      };
      const std::string N = std::to_string(n);
      const std::string runs = std::to_string(results.size());
      const double raw_ms = med(&many_result::raw_spawn_ms);
      const double pkit_ms = med(&many_result::pkit_start_ms);
      const double ratio = pkit_ms / raw_ms;
      s.rows.push_back({N + ": pkit start_child × N, all replied", fmt("%.1f ms", pkit_ms), "", "", runs,
                        fmt("%.2f×", ratio) + fmt(", %.0f µs/child", pkit_ms * 1e3 / static_cast<double>(n)) +
                            fmt(", CPUs %.0f%% busy", 100 * med(&many_result::pkit_busy))});
      s.rows.push_back({N + ": raw posix_spawn × N, serial", fmt("%.1f ms", raw_ms), "", "", runs,
                        "baseline" + fmt(", %.0f µs/child", raw_ms * 1e3 / static_cast<double>(n)) +
                            fmt(", CPUs %.0f%% busy", 100 * med(&many_result::raw_busy))});
      s.rows.push_back({N + ": pkit start, µs/child: first 10% of replies", fmt("%.0f µs", med(&many_result::first_tenth_us)),
                        "", "", runs, fmt("last 10%%: %.0f µs", med(&many_result::last_tenth_us))});
      {
        progress("(d) descriptor table cost, " + N + " extra fds");
        const auto [without, with] = fd_table_cost(n, quick ? 5 : 50);
        s.rows.push_back({N + ": raw posix_spawn+waitpid, " + N + " more open fds", fmt("%.0f µs", with), "", "",
                          quick ? "5" : "50", fmt("%+.0f µs vs none (%.0f µs)", with - without, without)});
      }
      const double rss = med(&many_result::rss_per_child);
      s.rows.push_back({N + ": parent RSS per supervised child", kb(rss), "", "", runs,
                        "after malloc_trim: " + kb(med(&many_result::rss_per_child_trimmed))});
      s.rows.push_back({N + ": parent fds per supervised child", fmt("%.2f", med(&many_result::fds_per_child)), "",
                        "", runs, ""});
      s.rows.push_back({N + ": which_children round trip", fmt("%.2f ms", med(&many_result::which_children_ms)), "",
                        "", runs, ""});
      const double idle_cpu = med(&many_result::idle_cpu_ms);
      const double idle_secs = med(&many_result::idle_seconds);
      s.rows.push_back({N + ": idle parent CPU, all children running", fmt("%.1f ms", idle_cpu), "", "",
                        runs + fmt(" × %.1f s", idle_secs),
                        fmt("%.2f%% of a core, ", idle_cpu / idle_secs / 10) +
                            fmt("%.0f ctx switches/s", med(&many_result::idle_switches_per_s))});
      std::size_t min_exits = n, min_restarts = n, min_active = n;
      bool gave_up = false, timed_out = false;
      for (const auto& r : results) {
        min_exits = std::min(min_exits, r.exits_seen);
        min_restarts = std::min(min_restarts, r.restarts_seen);
        min_active = std::min(min_active, r.active_after);
        gave_up = gave_up || r.gave_up;
        timed_out = timed_out || r.storm_timed_out;
      }
      s.rows.push_back({N + ": storm: SIGKILL loop over all children", fmt("%.1f ms", med(&many_result::kill_loop_ms)),
                        "", "", runs, ""});
      s.rows.push_back({N + ": storm: all `exited` events seen", fmt("%.1f ms", med(&many_result::all_exits_ms)), "",
                        "", runs, "min " + std::to_string(min_exits) + "/" + N + " exits seen"});
      s.rows.push_back({N + ": storm: all restarted (`ready`, new run)",
                        fmt("%.1f ms", med(&many_result::all_restarted_ms)), "", "", runs,
                        "min " + std::to_string(min_restarts) + "/" + N + " restarted, " + std::to_string(min_active) +
                            " active after" + (gave_up ? ", GAVE UP" : "") + (timed_out ? ", TIMED OUT" : "")});
      s.rows.push_back({N + ": raw kill all + waitpid all", fmt("%.1f ms", med(&many_result::raw_kill_reap_ms)), "",
                        "", runs, ""});
      s.rows.push_back({N + ": pkit supervisor stop (reverse order, brutal_kill)", fmt("%.1f ms", med(&many_result::stop_ms)), "",
                        "", runs, ""});
      checks.push_back({"(d) " + N + ": start all / raw serial posix_spawn", fmt("%.2f×", ratio), "≤ 0.80×",
                        ratio <= 0.8});
      checks.push_back({"(d) " + N + ": parent RSS per child", kb(rss), "≤ 4 KB", rss <= 4096});
      const bool none_lost = min_exits == n && min_restarts == n && !gave_up && !timed_out;
      checks.push_back({"(d) " + N + ": exit storm, exits lost / restarts missing",
                        std::to_string(n - min_exits) + " / " + std::to_string(n - min_restarts), "0 / 0",
                        none_lost});
    }
    sections.push_back(std::move(s));
  }

  stop_supervisor(self, restart.sup);

  for (const section& s : sections) print_section(s);
  print_targets(checks);
  std::printf("\nload average at end: %s\n", loadavg().c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--quick") {
      opt.quick = true;
    } else if (arg == "--counts" && i + 1 < argc) {
      std::stringstream in(argv[++i]);
      std::string item;
      while (std::getline(in, item, ',')) {
        const unsigned long v = std::strtoul(item.c_str(), nullptr, 10);
        if (v == 0) return usage(argv[0], 2);
        opt.counts.push_back(v);
      }
    } else if (arg == "--sections" && i + 1 < argc) {
      opt.sections = argv[++i];
      if (opt.sections.empty() || opt.sections.find_first_not_of("abcd") != std::string::npos)
        return usage(argv[0], 2);
    } else if (arg == "--threads" && i + 1 < argc) {
      opt.threads = std::strtoul(argv[++i], nullptr, 10);
      if (opt.threads == 0) return usage(argv[0], 2);
    } else if (arg == "--work-stealing") {
      opt.work_stealing = true;
    } else if (arg == "--help" || arg == "-h") {
      return usage(argv[0], 0);
    } else {
      std::fprintf(stderr, "pkit_actors_bench: unknown argument '%s'\n", argv[i]);
      return usage(argv[0], 2);
    }
  }
  try {
    return run_bench(opt);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "pkit_actors_bench: error: %s\n", e.what());
    return 1;
  }
}
