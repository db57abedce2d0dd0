// pkit_test_child -- the child program the pkit test suites spawn.
//
// A purpose-built, deterministic stand-in for shell scripts (in the spirit of
// reproc's test programs). Plain C++ and POSIX only; it does not use libpkit,
// so that it observes what libpkit hands to a child without sharing its code.
//
// Usage: pkit_test_child MODE [ARGS...]
//
//   exit N               exit with code N immediately
//   sleep MS             sleep MS milliseconds, then exit 0
//   pause                block until killed
//   ignore-term          ignore SIGTERM, print "ready", block until killed
//   trap-term CODE       on SIGTERM _exit(CODE); print "ready", block
//   signals              print the SigBlk:, SigIgn:, SigCgt: lines of
//                        /proc/self/status, verbatim
//   fds                  print the open fds, ascending, space-separated
//   write FD TEXT        write TEXT to fd FD (exit 3 if the write fails)
//   echo                 copy stdin to stdout until EOF (exit 3 on write error)
//   spew BYTES           write BYTES 'x' bytes to stdout and BYTES 'x' bytes
//                        to stderr, alternating in 64 KiB chunks
//   env NAME             print the value of $NAME (exit 4 if unset)
//   cwd                  print the working directory
//   pgid                 print "pid pgid sid"
//   rlimit NAME          print "soft hard" for NAME in nofile, core, nproc, as
//                        ("inf" for RLIM_INFINITY)
//   argc                 print "argc bytes": the argument count and the sum of
//                        strlen(argv[i]) over all of argv (argv[0] included,
//                        terminating NULs not counted)
//   kill-self SIG        reset SIG (number or name: 15, TERM, SIGTERM) to its
//                        default action, unblock it and raise it; exit 5 if
//                        the process survives (e.g. SIGCHLD)
//   notify FD MS         sleep MS ms, write "\n" to fd FD, block until killed
//   spawn-grandchild     fork a grandchild that calls setsid() and blocks
//                        forever (stdio redirected to /dev/null), print its
//                        pid once its setsid() is done, block until killed
//   ppid                 print the parent pid
//   echo-then-pause      like echo, but block until killed at EOF (a child
//                        that must not end when its parent's pipes close)
//   exit-at-eof N        read stdin until EOF, then exit with code N
//   signal-spawner TID   send SIGUSR1 to thread TID of the parent process
//                        (tgkill), then exit 0 at once
//   term-tree            trap SIGTERM (ignore it), start two `pause`
//                        grandchildren: one in our process group, one that
//                        calls setsid(); print "PGRP SETSID" (their pids)
//                        once both are set up, block until killed
//   spew-hold BYTES      fork a grandchild that keeps stdout open and blocks
//                        until killed (printing its pid first on stderr), then
//                        write BYTES 'x' to stdout and to stderr and exit 0
//   record-term FILE     on SIGTERM append "TERM <pid>\n" to FILE (opened
//                        before "ready" is printed) and go on; print "ready",
//                        block until killed (a SIGTERM is observable after the
//                        process is gone)
//   sd-notify MS LINE... sleep MS ms, print "sending", send the LINEs (joined
//                        with '\n') as one datagram to $NOTIFY_SOCKET (a path,
//                        or "@name" for an abstract socket, as sd_notify reads
//                        it), block until killed; exit 4 if NOTIFY_SOCKET is
//                        unset, 6 if the send fails
//   sd-notify-exit MS LINE...        the same, but exit 0 after the send
//   sd-notify-grandchild MS LINE...  the same, sent by a forked grandchild (a
//                        descendant: another pid, same uid); the child waits for
//                        it, then blocks until killed
//   ids                  print "RUID EUID SUID RGID EGID SGID G1,G2,..." (the
//                        supplementary groups sorted ascending, "-" if none)
//   pdeathsig            print the parent-death signal (PR_GET_PDEATHSIG), 0 if none
//   lines-then-partial N STREAM
//                        write N lines "PID I" (I = 1..N) to fd STREAM (1 or
//                        2) in writes of up to 4 KiB, then "PID partial"
//                        without a newline; block until killed
//   write-lines N SIZE   write N lines to stdout, each I (1..N, 8 digits)
//                        padded with 'x' to SIZE bytes before its newline,
//                        in writes of up to 4 KiB; exit 0
//   flood                write lines "I" (I = 1, 2, ...) to stdout, 4 KiB
//                        at a time, until a write fails (exit 3)
//
// Every printed result is one line ending in '\n', written with write(2).
// Bad usage (unknown mode, missing or malformed argument) prints a message on
// stderr and exits with 100.

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace {

constexpr int exit_usage = 100;
constexpr int exit_write_failed = 3;
constexpr int exit_env_unset = 4;
constexpr int exit_survived_signal = 5;

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

// Writes all of `data` to `fd`, retrying on EINTR and short writes.
bool write_all(int fd, std::string_view data) noexcept {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Prints one line on stdout; exits with exit_write_failed if that fails.
void print_line(std::string line) {
  line += '\n';
  if (!write_all(STDOUT_FILENO, line)) {
    std::_Exit(exit_write_failed);
  }
}

[[noreturn]] void usage_error(std::string_view message) {
  std::string text{"pkit_test_child: "};
  text += message;
  text += "\nusage: pkit_test_child MODE [ARGS...] (see the source for modes)\n";
  write_all(STDERR_FILENO, text);
  std::exit(exit_usage);
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

class args_t {
public:
  args_t(int argc, char** argv) : argc_{argc}, argv_{argv} {}

  std::string_view mode() const { return argc_ > 1 ? argv_[1] : ""; }

  // The i-th parameter after the mode (0-based).
  std::string_view str(int i, std::string_view what) const {
    if (2 + i >= argc_) {
      usage_error(std::string{mode()} + ": missing argument " + std::string{what});
    }
    return argv_[2 + i];
  }

  template <typename Int>
  Int num(int i, std::string_view what) const {
    const std::string_view s = str(i, what);
    Int value{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size()) {
      usage_error(std::string{mode()} + ": " + std::string{what} +
                  " is not a valid number: '" + std::string{s} + "'");
    }
    return value;
  }

  int argc() const { return argc_; }
  char** argv() const { return argv_; }

private:
  int argc_;
  char** argv_;
};

// "15", "TERM" or "SIGTERM" -> 15.
int parse_signal(std::string_view s) {
  int value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc{} && end == s.data() + s.size()) {
    if (value > 0 && value < NSIG) {
      return value;
    }
  } else {
    if (s.starts_with("SIG")) {
      s.remove_prefix(3);
    }
    for (int sig = 1; sig < NSIG; ++sig) {
      const char* abbrev = ::sigabbrev_np(sig);
      if (abbrev != nullptr && s == abbrev) {
        return sig;
      }
    }
  }
  usage_error("not a signal: '" + std::string{s} + "'");
}

// ---------------------------------------------------------------------------
// Blocking and sleeping
// ---------------------------------------------------------------------------

[[noreturn]] void pause_forever() {
  for (;;) {
    ::pause();
  }
}

void sleep_ms(std::uint64_t ms) {
  timespec remaining{};
  remaining.tv_sec = static_cast<time_t>(ms / 1000);
  remaining.tv_nsec = static_cast<long>((ms % 1000) * 1'000'000);
  while (::nanosleep(&remaining, &remaining) != 0 && errno == EINTR) {
  }
}

// ---------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------

volatile std::sig_atomic_t trap_exit_code = 0;

extern "C" void on_sigterm(int) { ::_exit(trap_exit_code); }

int mode_ignore_term() {
  struct sigaction sa{};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  print_line("ready");
  pause_forever();
}

int mode_trap_term(int code) {
  trap_exit_code = code;
  struct sigaction sa{};
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  print_line("ready");
  pause_forever();
}

volatile std::sig_atomic_t record_fd = -1;

extern "C" void on_sigterm_record(int) {
  // Only async-signal-safe calls: the line is formatted without the C library.
  char line[32] = "TERM ";
  std::size_t n = 5;
  char digits[16];
  std::size_t d = 0;
  for (auto pid = static_cast<unsigned long>(::getpid()); pid != 0 || d == 0; pid /= 10)
    digits[d++] = static_cast<char>('0' + pid % 10);
  while (d != 0) line[n++] = digits[--d];
  line[n++] = '\n';
  (void)!::write(record_fd, line, n);
}

int mode_record_term(const std::string& path) {
  record_fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (record_fd < 0) {
    write_all(STDERR_FILENO, "pkit_test_child: cannot open " + path + "\n");
    return 1;
  }
  struct sigaction sa{};
  sa.sa_handler = on_sigterm_record;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  print_line("ready");
  pause_forever();
}

int mode_signals() {
  std::ifstream status{"/proc/self/status"};
  if (!status) {
    write_all(STDERR_FILENO, "pkit_test_child: cannot open /proc/self/status\n");
    return 1;
  }
  std::string line;
  std::string out;
  while (std::getline(status, line)) {
    if (line.starts_with("SigBlk:") || line.starts_with("SigIgn:") ||
        line.starts_with("SigCgt:")) {
      out += line;
      out += '\n';
    }
  }
  return write_all(STDOUT_FILENO, out) ? 0 : exit_write_failed;
}

int mode_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    write_all(STDERR_FILENO, "pkit_test_child: cannot open /proc/self/fd\n");
    return 1;
  }
  const int listing_fd = ::dirfd(dir);
  std::vector<int> fds;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name{entry->d_name};
    int fd{};
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), fd);
    if (ec == std::errc{} && end == name.data() + name.size() && fd != listing_fd) {
      fds.push_back(fd);
    }
  }
  ::closedir(dir);
  std::sort(fds.begin(), fds.end());
  std::string out;
  for (const int fd : fds) {
    if (!out.empty()) {
      out += ' ';
    }
    out += std::to_string(fd);
  }
  print_line(std::move(out));
  return 0;
}

int mode_echo() {
  char buffer[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n == 0) {
      return 0;
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return 1;
    }
    if (!write_all(STDOUT_FILENO, {buffer, static_cast<std::size_t>(n)})) {
      return exit_write_failed;
    }
  }
}

int mode_spew(std::uint64_t bytes) {
  constexpr std::size_t chunk_size = 64 * 1024;
  const std::string chunk(chunk_size, 'x');
  std::uint64_t out_left = bytes;
  std::uint64_t err_left = bytes;
  while (out_left > 0 || err_left > 0) {
    const std::size_t n_out = static_cast<std::size_t>(std::min<std::uint64_t>(out_left, chunk_size));
    if (!write_all(STDOUT_FILENO, std::string_view{chunk}.substr(0, n_out))) {
      return exit_write_failed;
    }
    out_left -= n_out;
    const std::size_t n_err = static_cast<std::size_t>(std::min<std::uint64_t>(err_left, chunk_size));
    if (!write_all(STDERR_FILENO, std::string_view{chunk}.substr(0, n_err))) {
      return exit_write_failed;
    }
    err_left -= n_err;
  }
  return 0;
}

int mode_env(std::string_view name) {
  const char* value = std::getenv(std::string{name}.c_str());
  if (value == nullptr) {
    return exit_env_unset;
  }
  print_line(value);
  return 0;
}

int mode_cwd() {
  std::vector<char> buffer(256);
  while (::getcwd(buffer.data(), buffer.size()) == nullptr) {
    if (errno != ERANGE) {
      write_all(STDERR_FILENO, "pkit_test_child: getcwd failed\n");
      return 1;
    }
    buffer.resize(buffer.size() * 2);
  }
  print_line(buffer.data());
  return 0;
}

int mode_pgid() {
  print_line(std::to_string(::getpid()) + ' ' + std::to_string(::getpgid(0)) + ' ' +
             std::to_string(::getsid(0)));
  return 0;
}

int mode_rlimit(std::string_view name) {
  int resource{};
  if (name == "nofile") {
    resource = RLIMIT_NOFILE;
  } else if (name == "core") {
    resource = RLIMIT_CORE;
  } else if (name == "nproc") {
    resource = RLIMIT_NPROC;
  } else if (name == "as") {
    resource = RLIMIT_AS;
  } else {
    usage_error("rlimit: unknown resource '" + std::string{name} +
                "' (expected nofile, core, nproc or as)");
  }
  rlimit limit{};
  if (::getrlimit(resource, &limit) != 0) {
    write_all(STDERR_FILENO, "pkit_test_child: getrlimit failed\n");
    return 1;
  }
  const auto show = [](rlim_t value) {
    return value == RLIM_INFINITY ? std::string{"inf"} : std::to_string(value);
  };
  print_line(show(limit.rlim_cur) + ' ' + show(limit.rlim_max));
  return 0;
}

int mode_argc(const args_t& args) {
  std::size_t bytes = 0;
  for (int i = 0; i < args.argc(); ++i) {
    bytes += std::strlen(args.argv()[i]);
  }
  print_line(std::to_string(args.argc()) + ' ' + std::to_string(bytes));
  return 0;
}

int mode_kill_self(int sig) {
  struct sigaction sa{};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  ::sigaction(sig, &sa, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);
  return exit_survived_signal;
}

int mode_notify(int fd, std::uint64_t ms) {
  sleep_ms(ms);
  if (!write_all(fd, "\n")) {
    return exit_write_failed;
  }
  pause_forever();
}

int mode_spawn_grandchild() {
  // The grandchild reports, by closing its end of this pipe, that its
  // setsid() is done: once its pid is printed it is already in its own session.
  int sync[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) {
    write_all(STDERR_FILENO, "pkit_test_child: pipe2 failed\n");
    return 1;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    write_all(STDERR_FILENO, "pkit_test_child: fork failed\n");
    return 1;
  }
  if (pid == 0) {
    ::close(sync[0]);
    ::setsid();
    // Do not hold the caller's pipes open: a reader waiting for EOF on our
    // stdout/stderr must not depend on the grandchild's lifetime.
    const int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      ::dup2(null_fd, STDIN_FILENO);
      ::dup2(null_fd, STDOUT_FILENO);
      ::dup2(null_fd, STDERR_FILENO);
      if (null_fd > STDERR_FILENO) {
        ::close(null_fd);
      }
    }
    ::close(sync[1]);
    pause_forever();
  }
  ::close(sync[1]);
  char byte;
  while (::read(sync[0], &byte, 1) < 0 && errno == EINTR) {
  }
  ::close(sync[0]);
  print_line(std::to_string(pid));
  pause_forever();
}

int mode_exit_at_eof(int code) {
  char buf[256];
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0) return code;
    if (n < 0 && errno != EINTR) return code;
  }
}

// Forks a grandchild that runs `pause` with stdio on /dev/null (except what `keep_stdout`
// keeps); `new_session`: it calls setsid() first. Returns its pid once it is set up.
pid_t fork_pauser(bool new_session, bool keep_stdout) {
  int sync[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(sync[0]);
    // Default dispositions: a group signal must act on the grandchild.
    ::signal(SIGTERM, SIG_DFL);
    if (new_session) ::setsid();
    const int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      ::dup2(null_fd, STDIN_FILENO);
      if (!keep_stdout) ::dup2(null_fd, STDOUT_FILENO);
      ::dup2(null_fd, STDERR_FILENO);
      if (null_fd > STDERR_FILENO) ::close(null_fd);
    }
    ::close(sync[1]);
    pause_forever();
  }
  ::close(sync[1]);
  char byte;
  while (::read(sync[0], &byte, 1) < 0 && errno == EINTR) {
  }
  ::close(sync[0]);
  return pid;
}

int mode_term_tree() {
  struct sigaction sa{};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  const pid_t in_group = fork_pauser(false, false);
  const pid_t escaped = fork_pauser(true, false);
  if (in_group < 0 || escaped < 0) return 1;
  print_line(std::to_string(in_group) + " " + std::to_string(escaped));
  pause_forever();
}

int mode_spew_hold(std::uint64_t bytes) {
  const pid_t holder = fork_pauser(false, true);
  if (holder < 0) return 1;
  if (!write_all(STDERR_FILENO, "holder " + std::to_string(holder) + "\n")) return exit_write_failed;
  const std::string chunk(64 * 1024, 'x');
  for (int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    std::uint64_t left = bytes;
    while (left > 0) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
      if (!write_all(fd, std::string_view{chunk}.substr(0, n))) return exit_write_failed;
      left -= n;
    }
  }
  return 0;
}

// sd_notify's sending side, without libsystemd: one datagram to $NOTIFY_SOCKET.
int send_notification(const std::string& message) {
  const char* where = std::getenv("NOTIFY_SOCKET");
  if (where == nullptr || *where == '\0') return exit_env_unset;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(where);
  if (len >= sizeof addr.sun_path) return 6;
  std::memcpy(addr.sun_path, where, len);
  if (where[0] == '@') addr.sun_path[0] = '\0';  // abstract: no trailing NUL counted
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (where[0] == '@' ? 0 : 1));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 6;
  const ssize_t n = ::sendto(fd, message.data(), message.size(), 0, reinterpret_cast<const sockaddr*>(&addr), addr_len);
  ::close(fd);
  return n == static_cast<ssize_t>(message.size()) ? 0 : 6;
}

// sd-notify, sd-notify-exit, sd-notify-grandchild.
int mode_sd_notify(const args_t& args, bool then_exit, bool from_grandchild) {
  const auto delay = args.num<std::uint64_t>(0, "MS");
  std::string message;
  for (int i = 3; i < args.argc(); ++i) {
    if (!message.empty()) message += '\n';
    message += args.argv()[i];
  }
  sleep_ms(delay);
  print_line("sending");
  int rc = 0;
  if (from_grandchild) {
    const pid_t pid = ::fork();
    if (pid < 0) return 1;
    if (pid == 0) std::_Exit(send_notification(message));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  } else {
    rc = send_notification(message);
  }
  if (rc != 0 || then_exit) return rc;
  pause_forever();
}

int mode_ids() {
  uid_t u[3];
  gid_t g[3];
  ::getresuid(&u[0], &u[1], &u[2]);
  ::getresgid(&g[0], &g[1], &g[2]);
  std::vector<gid_t> groups(static_cast<std::size_t>(std::max(::getgroups(0, nullptr), 0)));
  groups.resize(static_cast<std::size_t>(std::max(::getgroups(static_cast<int>(groups.size()), groups.data()), 0)));
  std::sort(groups.begin(), groups.end());
  std::string line;
  for (auto id : {u[0], u[1], u[2], g[0], g[1], g[2]}) line += std::to_string(id) + ' ';
  if (groups.empty()) line += '-';
  for (std::size_t i = 0; i < groups.size(); ++i) line += (i > 0 ? "," : "") + std::to_string(groups[i]);
  print_line(line);
  return 0;
}

// Writes `text` to `fd` in writes of at most 4 KiB that end at line ends (a line longer
// than that is written alone): reads on the other side see lines split only by chance.
bool write_lines_chunked(int fd, std::string_view text) {
  constexpr std::size_t chunk = 4096;
  while (!text.empty()) {
    std::size_t n = std::min(text.size(), chunk);
    if (n < text.size()) {
      const auto nl = text.rfind('\n', n - 1);
      n = nl == std::string_view::npos ? std::min(text.find('\n'), text.size() - 1) + 1 : nl + 1;
    }
    if (!write_all(fd, text.substr(0, n))) return false;
    text.remove_prefix(n);
  }
  return true;
}

int mode_lines_then_partial(std::uint64_t n, int fd) {
  const std::string pid = std::to_string(::getpid());
  std::string text;
  for (std::uint64_t i = 1; i <= n; ++i) text += pid + " " + std::to_string(i) + "\n";
  if (!write_lines_chunked(fd, text)) return exit_write_failed;
  if (!write_all(fd, pid + " partial")) return exit_write_failed;
  pause_forever();
}

int mode_write_lines(std::uint64_t n, std::size_t size) {
  std::string text;
  char number[32];
  for (std::uint64_t i = 1; i <= n; ++i) {
    std::snprintf(number, sizeof number, "%08llu", static_cast<unsigned long long>(i));
    std::string line = number;
    if (line.size() < size) line.append(size - line.size(), 'x');
    text += line + "\n";
  }
  return write_lines_chunked(STDOUT_FILENO, text) ? 0 : exit_write_failed;
}

int mode_flood() {
  std::uint64_t i = 1;
  std::string text;
  for (;;) {
    text.clear();
    while (text.size() < 4000) text += std::to_string(i++) + "\n";
    if (!write_all(STDOUT_FILENO, text)) return exit_write_failed;
  }
}

int run(const args_t& args) {
  const std::string_view mode = args.mode();
  if (mode == "exit") {
    return args.num<int>(0, "N");
  }
  if (mode == "sleep") {
    sleep_ms(args.num<std::uint64_t>(0, "MS"));
    return 0;
  }
  if (mode == "pause") {
    pause_forever();
  }
  if (mode == "ignore-term") {
    return mode_ignore_term();
  }
  if (mode == "trap-term") {
    return mode_trap_term(args.num<int>(0, "CODE"));
  }
  if (mode == "record-term") {
    return mode_record_term(std::string{args.str(0, "FILE")});
  }
  if (mode == "signals") {
    return mode_signals();
  }
  if (mode == "fds") {
    return mode_fds();
  }
  if (mode == "write") {
    const int fd = args.num<int>(0, "FD");
    return write_all(fd, args.str(1, "TEXT")) ? 0 : exit_write_failed;
  }
  if (mode == "echo") {
    return mode_echo();
  }
  if (mode == "spew") {
    return mode_spew(args.num<std::uint64_t>(0, "BYTES"));
  }
  if (mode == "env") {
    return mode_env(args.str(0, "NAME"));
  }
  if (mode == "cwd") {
    return mode_cwd();
  }
  if (mode == "pgid") {
    return mode_pgid();
  }
  if (mode == "rlimit") {
    return mode_rlimit(args.str(0, "NAME"));
  }
  if (mode == "argc") {
    return mode_argc(args);
  }
  if (mode == "kill-self") {
    return mode_kill_self(parse_signal(args.str(0, "SIG")));
  }
  if (mode == "notify") {
    return mode_notify(args.num<int>(0, "FD"), args.num<std::uint64_t>(1, "MS"));
  }
  if (mode == "spawn-grandchild") {
    return mode_spawn_grandchild();
  }
  if (mode == "echo-then-pause") {
    mode_echo();
    pause_forever();
  }
  if (mode == "exit-at-eof") {
    return mode_exit_at_eof(args.num<int>(0, "N"));
  }
  if (mode == "signal-spawner") {
    const long tid = args.num<long>(0, "TID");
    ::syscall(SYS_tgkill, static_cast<long>(::getppid()), tid, static_cast<long>(SIGUSR1));
    return 0;
  }
  if (mode == "term-tree") {
    return mode_term_tree();
  }
  if (mode == "spew-hold") {
    return mode_spew_hold(args.num<std::uint64_t>(0, "BYTES"));
  }
  if (mode == "sd-notify" || mode == "sd-notify-exit" || mode == "sd-notify-grandchild") {
    return mode_sd_notify(args, mode == "sd-notify-exit", mode == "sd-notify-grandchild");
  }
  if (mode == "ids") {
    return mode_ids();
  }
  if (mode == "pdeathsig") {
    int sig = 0;
    ::prctl(PR_GET_PDEATHSIG, &sig);
    print_line(std::to_string(sig));
    return 0;
  }
  if (mode == "lines-then-partial") {
    return mode_lines_then_partial(args.num<std::uint64_t>(0, "N"), args.num<int>(1, "STREAM"));
  }
  if (mode == "write-lines") {
    return mode_write_lines(args.num<std::uint64_t>(0, "N"), args.num<std::size_t>(1, "SIZE"));
  }
  if (mode == "flood") {
    return mode_flood();
  }
  if (mode == "ppid") {
    print_line(std::to_string(::getppid()));
    return 0;
  }
  usage_error(mode.empty() ? std::string{"no mode given"}
                           : "unknown mode '" + std::string{mode} + "'");
}

}  // namespace

// When built with -DPKIT_SANITIZE=address or thread, keep the sanitizer runtime
// from installing its own SIGSEGV/SIGBUS/SIGFPE handlers, so that `signals`
// reports the same SigCgt in every build (ASAN_OPTIONS/TSAN_OPTIONS still
// override these defaults). Unused in a build without sanitizers.
extern "C" const char* __asan_default_options() {
  return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0";
}
extern "C" const char* __tsan_default_options() {
  return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0";
}

int main(int argc, char** argv) {
  return run(args_t{argc, argv});
}
