#include <pkit/tool/guardian.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace pkit::tool {
namespace {

// One record (one datagram) on the socket: 'w' (watch) or 'u' (unwatch), then the pgid;
// 't' (arm the watchdog), then its limit in ms (0: disarm); 'f' (feed it).
struct record {
  char op;
  pid_t pgid;
};

std::int64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// The watchdog's state: armed with a limit, fed at `fed`; `fired` until the next feed.
struct watchdog {
  std::int64_t limit = 0;
  std::int64_t fed = 0;
  bool fired = false;

  bool watching() const { return limit > 0 && !fired; }
  // How long poll may sleep: at most a second (the emptiness sweep), at most until due.
  int poll_ms(std::int64_t now) const {
    if (!watching()) return 1000;
    return static_cast<int>(std::clamp<std::int64_t>(fed + limit - now, 0, 1000));
  }
  bool due(std::int64_t now) const { return watching() && now - fed >= limit; }
  void apply(const record& r, std::int64_t now) {
    if (r.op == 't') limit = r.pgid > 0 ? r.pgid : 0;
    fed = now;
    fired = false;
  }
};

bool empty_group(pid_t pgid) { return ::kill(-pgid, 0) == -1 && errno == ESRCH; }

void drop_empty(std::vector<pid_t>& groups) {
  std::erase_if(groups, [](pid_t g) { return empty_group(g); });
}

// The guardian's whole life. Single-threaded copy of `pkit run`; it exits with _exit so
// that no atexit handler or static destructor of the parent's runs twice.
[[noreturn]] void guard(int fd) {
  // A Ctrl-C on the terminal reaches the whole foreground group, the guardian included:
  // it must outlive pkit run, so it ignores the signals that ask pkit run to stop.
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(sig, SIG_IGN);
  // Out of pkit run's process group (and session): a SIGKILL to that whole group
  // (`timeout -s KILL`, a shell's `kill -9 %1`) would otherwise end the guardian with it.
  ::setsid();
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_NAME, "pkit-guardian", 0, 0, 0);
  // Nothing but the pipe: a terminal or a log file held open would outlive pkit run.
  for (int other = 0; other < 3; ++other) {
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0 && null != other) {
      ::dup2(null, other);
      ::close(null);
    }
  }
  std::vector<pid_t> groups;
  watchdog dog;
  std::int64_t swept = now_ms();
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, dog.poll_ms(now_ms()));
    const std::int64_t now = now_ms();
    if (dog.due(now)) {
      // The owner stopped running: fence what it started. The leaders are unreaped while
      // it is frozen (it is their parent), so these ids are still theirs.
      for (pid_t g : groups) ::kill(-g, SIGKILL);
      dog.fired = true;
    }
    // Once a second, whether records come or not (a fed watchdog sends one often).
    if (now - swept >= 1000) {
      drop_empty(groups);
      swept = now;
    }
    if (n == 0) continue;
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    record r{};
    ssize_t got = ::read(fd, &r, sizeof r);
    if (got < 0 && errno == EINTR) continue;
    if (got != static_cast<ssize_t>(sizeof r)) break;  // 0 (EOF): pkit run is gone
    if (r.op == 't' || r.op == 'f') {
      dog.apply(r, now_ms());
      continue;
    }
    if (r.pgid <= 1) continue;
    if (r.op == 'w') {
      groups.push_back(r.pgid);
    } else {
      auto it = std::find(groups.begin(), groups.end(), r.pgid);
      if (it != groups.end() && empty_group(r.pgid)) groups.erase(it);
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

std::unique_ptr<guardian> guardian::spawn() {
  if (thread_count() != 1)
    throw std::logic_error("pkit guardian: must be started while the process has a single thread");
  // A seqpacket socket pair, not a pipe: send(MSG_NOSIGNAL) cannot raise SIGPIPE in pkit
  // run should the guardian be gone, and every record arrives whole.
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::system_error(errno, std::system_category(), "socketpair");
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::system_error(e, std::system_category(), "fork");
  }
  if (pid == 0) {
    ::close(fds[1]);
    guard(fds[0]);
  }
  ::close(fds[0]);
  return std::unique_ptr<guardian>(new guardian(pid, fds[1]));
}

guardian::~guardian() {
  ::close(fd_);
  int status = 0;
  while (::waitpid(pid_, &status, 0) == -1 && errno == EINTR) {
  }
}

void guardian::send(char op, pid_t pgid, int flags) noexcept {
  record r{};
  r.op = op;
  r.pgid = pgid;
  ssize_t n;
  do n = ::send(fd_, &r, sizeof r, MSG_NOSIGNAL | flags);
  while (n < 0 && errno == EINTR);
}

void guardian::watch(pid_t pgid) noexcept { send('w', pgid); }
void guardian::unwatch(pid_t pgid) noexcept { send('u', pgid); }
void guardian::arm_watchdog(std::chrono::milliseconds limit) noexcept {
  send('t', static_cast<pid_t>(std::clamp<std::int64_t>(limit.count(), 0, INT32_MAX)));
}
// Never blocks: a guardian that does not read (stopped itself) would otherwise hold the
// CAF worker that feeds it once its socket buffer is full; a feed lost then is harmless.
void guardian::feed() noexcept { send('f', 0, MSG_DONTWAIT); }

}  // namespace pkit::tool
