#include <pkit/tool/guardian.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace pkit::tool {

// The watchdog's state, in a MAP_SHARED page made before the fork: the owner writes, the
// guardian reads. Lock-free 64-bit atomics are address-free, hence valid across processes.
struct guardian::shared_watch {
  std::atomic<std::int64_t> limit_ms{0};  // <= 0: disarmed
  std::atomic<std::int64_t> fed_ms{0};    // CLOCK_BOOTTIME of the last feed
  std::atomic<bool> kill_owner{false};
};
static_assert(std::atomic<std::int64_t>::is_always_lock_free);

namespace {

// What the guardian reads of the shared page.
struct guardian_shared_view {
  const std::atomic<std::int64_t>* limit_ms;
  const std::atomic<std::int64_t>* fed_ms;
  const std::atomic<bool>* kill_owner_flag;
  std::int64_t limit() const { return limit_ms->load(); }
  std::int64_t fed() const { return fed_ms->load(); }
  bool kill_owner() const { return kill_owner_flag->load(); }
};


// Boot time, not monotonic: a host suspended while the owner was frozen does not make
// its last feed look recent.
std::int64_t boot_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

bool empty_group(pid_t pgid) { return ::kill(-pgid, 0) == -1 && errno == ESRCH; }

void drop_empty(std::vector<pid_t>& groups) {
  std::erase_if(groups, [](pid_t g) { return empty_group(g); });
}

// The parent pid in /proc/<pid>/stat, or -1: after the comm's last ')' (a comm may hold
// spaces and parentheses) come the state and the ppid.
pid_t parent_of(long pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* close_paren = std::strrchr(buf, ')');
  char state = 0;
  int ppid = -1;
  if (close_paren == nullptr || std::sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

// SIGKILLs every child of `owner` but the guardian, each with its process group (children
// lead their own: pgid == pid), whether or not a watch for it has arrived: `pkit node`
// watches a new child on the thread that spawned it, but a node frozen between the clone
// and that call must not leave the child's group running either (review 13 #8). The kernel's parent links, read
// from /proc/<pid>/stat (no CONFIG_PROC_CHILDREN needed). A child that has not set its
// group yet (still before its exec) has no group: kill(-pid) fails, the pidfd's SIGKILL
// ends it. Each candidate is pinned by a pidfd and its parent read again after that, so
// the signal cannot reach a process that took a pid the scan saw. Only while the guardian
// is still the owner's child: once the owner has died (the guardian was reparented), its
// pid may be another process's, whose children are none of ours. Returns how many it found.
std::size_t kill_children_of(pid_t owner) {
  if (::getppid() != owner) return 0;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return 0;
  const pid_t self = ::getpid();
  std::size_t found = 0;
  while (const dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 1 || pid == self) continue;
    if (parent_of(pid) != owner) continue;
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
    if (pidfd < 0) continue;  // gone meanwhile
    // Still the process the scan saw, and the owner still ours (its pid not yet free for
    // another): the pidfd pins the child now.
    if (parent_of(pid) == owner && ::getppid() == owner) {
      ::kill(-static_cast<pid_t>(pid), SIGKILL);
      ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
      ++found;
    }
    ::close(pidfd);
  }
  ::closedir(proc);
  return found;
}

// The guardian's side of the watchdog.
class watchdog {
public:
  watchdog(const guardian_shared_view& view, std::string owner_name) : view_(view), name_(std::move(owner_name)) {}

  // How long poll may sleep: at most a second (the emptiness sweep), at most until due.
  int poll_ms(std::int64_t now) const {
    const std::int64_t limit = view_.limit();
    if (limit <= 0 || fired_for_ == view_.fed()) return 1000;
    const std::int64_t left = limit - (now - view_.fed());  // no overflow for any limit
    return left >= 1000 ? 1000 : static_cast<int>(std::max<std::int64_t>(left + 1, 0));
  }

  // Whether the feed at `fed` is surely older than `limit` at `now`. Both stamps are
  // truncated to whole milliseconds: `now - fed >= limit` could hold up to 1 ms before
  // the limit really passed (a watchdog that fired at 299.1 ms of 300 failed guardian_test
  // in a fresh clone's run); one more millisecond makes it never early (at most ~2 ms late).
  static bool stale(std::int64_t now, std::int64_t fed, std::int64_t limit) { return now - fed > limit; }

  // Fences once per stale feed: every registered group, the owner's children and their
  // groups, then (if asked) the owner.
  void check(std::int64_t now, const std::vector<pid_t>& groups, pid_t owner, int owner_pidfd) {
    const std::int64_t limit = view_.limit(), fed = view_.fed();
    if (limit <= 0 || fired_for_ == fed || !stale(now, fed, limit)) return;
    fired_for_ = fed;
    const bool owner_dies = view_.kill_owner() && owner_pidfd >= 0;
    // A stopped owner reaps nothing: the children found next stay its children (no pid
    // of theirs is reused) until they are killed. It dies anyway.
    if (owner_dies) ::syscall(SYS_pidfd_send_signal, owner_pidfd, SIGSTOP, nullptr, 0);
    for (pid_t g : groups) ::kill(-g, SIGKILL);  // first: the scan below reads all of /proc
    const std::size_t children = owner_pidfd >= 0 ? kill_children_of(owner) : 0;
    // Before the message: a write to a full stderr pipe must not keep the owner frozen
    // with its connections open (its controller fails over as soon as they close).
    if (owner_dies) ::syscall(SYS_pidfd_send_signal, owner_pidfd, SIGKILL, nullptr, 0);
    if (!name_.empty()) {
      char line[512];
      const int n = std::snprintf(line, sizeof line,
                                  "%s: watchdog: no sign of life for %lld ms (limit %lld ms): SIGKILLed %zu "
                                  "process group(s) and %zu child(ren) with their groups%s\n",
                                  name_.c_str(), static_cast<long long>(now - fed), static_cast<long long>(limit),
                                  groups.size(), children, owner_dies ? " and the node itself" : "");
      if (n > 0) (void)!::write(STDERR_FILENO, line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
    }
  }

private:
  const guardian_shared_view& view_;
  std::string name_;
  std::int64_t fired_for_ = -1;  // the feed it fired for: once per stale feed
};

// Reads every record queued (never judging the watchdog by a half-read queue); false on
// EOF or a broken socket (the owner is gone).
bool drain(int fd, std::vector<pid_t>& groups) {
  for (;;) {
    detail::guardian_record r{};
    const ssize_t got = ::recv(fd, &r, sizeof r, MSG_DONTWAIT);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (got != static_cast<ssize_t>(sizeof r)) return false;  // 0 (EOF): the owner is gone
    if (r.pgid <= 1) continue;                                // 't', or nonsense
    if (r.op == 'w') {
      groups.push_back(r.pgid);
    } else if (r.op == 'u') {
      auto it = std::find(groups.begin(), groups.end(), r.pgid);
      if (it != groups.end() && empty_group(r.pgid)) groups.erase(it);
    }
  }
}

// The guardian's whole life. Single-threaded copy of its owner; it exits with _exit so
// that no atexit handler or static destructor of the parent's runs twice.
[[noreturn]] void guard(int fd, pid_t owner, const guardian_shared_view& view, const std::string& owner_name) {
  // The owner is still the parent only if it has not died since the fork (an orphan is
  // reparented at its parent's death, before that parent's pid can be reused): checked
  // again once its pidfd is open, which then surely refers to the owner.
  int owner_pidfd = ::getppid() == owner ? static_cast<int>(::syscall(SYS_pidfd_open, owner, 0)) : -1;
  if (owner_pidfd >= 0 && ::getppid() != owner) {
    ::close(owner_pidfd);
    owner_pidfd = -1;
  }
  // A Ctrl-C on the terminal reaches the whole foreground group, the guardian included:
  // it must outlive its owner, so it ignores the signals that ask the owner to stop.
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(sig, SIG_IGN);
  // Out of the owner's process group (and session): a SIGKILL to that whole group
  // (`timeout -s KILL`, a shell's `kill -9 %1`) would otherwise end the guardian with it.
  ::setsid();
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_NAME, "pkit-guardian", 0, 0, 0);
  // Nothing but the socket (and stderr when it has something to say there): a terminal
  // or a log file held open would outlive the owner.
  for (int other = 0; other < 3; ++other) {
    if (other == STDERR_FILENO && !owner_name.empty()) continue;
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0 && null != other) {
      ::dup2(null, other);
      ::close(null);
    }
  }
  std::vector<pid_t> groups;
  watchdog dog(view, owner_name);
  std::int64_t swept = boot_ms();
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const std::int64_t before = boot_ms();
    const int n = ::poll(&p, 1, std::min<int>(dog.poll_ms(before), static_cast<int>(std::clamp<std::int64_t>(swept + 1000 - before, 0, 1000))));
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && !drain(fd, groups)) break;
    const std::int64_t now = boot_ms();
    dog.check(now, groups, owner, owner_pidfd);
    // Once a second, whether records come or not.
    if (now - swept >= 1000) {
      drop_empty(groups);
      swept = now;
    }
  }
  for (pid_t g : groups) ::kill(-g, SIGKILL);
  ::_exit(0);
}

std::size_t thread_count() {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

}  // namespace

std::unique_ptr<guardian> guardian::spawn(const std::string& owner_name) {
  if (thread_count() != 1)
    throw std::logic_error("pkit guardian: must be started while the process has a single thread");
  void* page = ::mmap(nullptr, sizeof(shared_watch), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) throw std::system_error(errno, std::system_category(), "mmap");
  auto* watch = new (page) shared_watch;
  // A seqpacket socket pair, not a pipe: send(MSG_NOSIGNAL) cannot raise SIGPIPE in the
  // owner should the guardian be gone, and every record arrives whole.
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    const int e = errno;
    ::munmap(page, sizeof(shared_watch));
    throw std::system_error(e, std::system_category(), "socketpair");
  }
  const pid_t owner = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    ::munmap(page, sizeof(shared_watch));
    throw std::system_error(e, std::system_category(), "fork");
  }
  if (pid == 0) {
    ::close(fds[1]);
    guard(fds[0], owner, guardian_shared_view{&watch->limit_ms, &watch->fed_ms, &watch->kill_owner}, owner_name);
  }
  ::close(fds[0]);
  return std::unique_ptr<guardian>(new guardian(pid, fds[1], watch));
}

guardian::~guardian() {
  {
    // The guardian kills what it was told of once this socket closes: tell it all (a
    // stopped guardian holds this up, as it holds up the waitpid below).
    std::lock_guard lock(backlog_mutex_);
    for (const record& r : backlog_) {
      ssize_t n;
      do n = ::send(fd_, &r, sizeof r, MSG_NOSIGNAL);
      while (n < 0 && errno == EINTR);
    }
  }
  ::close(fd_);
  int status = 0;
  while (::waitpid(pid_, &status, 0) == -1 && errno == EINTR) {
  }
  ::munmap(static_cast<void*>(watch_), sizeof(shared_watch));
}

namespace {
// One datagram, never blocking: true once sent, or when it never will be (the guardian
// is gone); false when the socket has no room now.
bool try_send(int fd, const detail::guardian_record& r) {
  ssize_t n;
  do n = ::send(fd, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}
}  // namespace

// With backlog_mutex_ held: what waits goes out while the socket takes it.
void guardian::flush_locked() noexcept {
  while (!backlog_.empty() && try_send(fd_, backlog_.front())) backlog_.pop_front();
  backlogged_.store(!backlog_.empty(), std::memory_order_relaxed);
}

// Never blocks: watch/unwatch are sent from CAF workers, and a guardian that does not
// read (stopped itself, a debugger) must not hold them. What the socket has no room for
// waits in the backlog, in order; it goes out with the next send or feed, or at the end.
void guardian::send(char op, pid_t pgid) noexcept {
  std::lock_guard lock(backlog_mutex_);
  flush_locked();
  const record r{op, pgid};
  if (backlog_.empty() && try_send(fd_, r)) return;
  try {
    backlog_.push_back(r);
  } catch (...) {  // out of memory: as a guardian that died, nothing to be done
  }
  backlogged_.store(true, std::memory_order_relaxed);
}

void guardian::watch(pid_t pgid) noexcept { send('w', pgid); }
void guardian::unwatch(pid_t pgid) noexcept { send('u', pgid); }

void guardian::arm_watchdog(std::chrono::milliseconds limit, bool kill_owner) noexcept {
  watch_->kill_owner.store(kill_owner);
  watch_->fed_ms.store(boot_ms());
  watch_->limit_ms.store(limit.count());
  (void)try_send(fd_, record{'t', 0});  // a wake-up; if the socket is full it wakes anyway
}

std::int64_t guardian::now_ms() noexcept { return boot_ms(); }

void guardian::feed() noexcept { feed_at(boot_ms()); }

void guardian::feed_at(std::int64_t alive_ms) noexcept {
  // Never backwards: arm_watchdog (another thread) may have stamped a later time.
  std::int64_t fed = watch_->fed_ms.load(std::memory_order_relaxed);
  while (alive_ms > fed && !watch_->fed_ms.compare_exchange_weak(fed, alive_ms, std::memory_order_relaxed)) {
  }
  // The feeder's tick also sends what a guardian that did not read left waiting.
  if (backlogged_.load(std::memory_order_relaxed)) {
    std::unique_lock lock(backlog_mutex_, std::try_to_lock);
    if (lock.owns_lock()) flush_locked();
  }
}

}  // namespace pkit::tool
