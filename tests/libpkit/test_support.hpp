#pragma once

// Shared helpers for the libpkit behaviour tests: the helper child program, pipes
// read with deadlines, /proc inspection (children, zombies, fds), signal guards and
// temporary directories. Header-only; every function is `inline`.
//
// Rules the suites follow: they synchronise on events (pipe data, EOF, joins,
// futures, waitid(WNOWAIT)), never on sleeps; every blocking read has a deadline so a
// library bug fails a test instead of hanging the suite.

#include <boost/test/unit_test.hpp>

#include <pkit/errc.hpp>
#include <pkit/exit_status.hpp>
#include <pkit/process.hpp>
#include <pkit/process_pool.hpp>
#include <pkit/unique_fd.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <dirent.h>
#include "proc_stat.hpp"

// TSan's runtime defers a signal handler until its next interceptor; in a child forked
// from a multithreaded process it may never deliver it. Cases whose forked child relies on
// its own handler are skipped there (nothing of pkit's is at stake).
#if defined(__SANITIZE_THREAD__)
#define PKIT_SKIP_UNDER_TSAN_FORKED_HANDLERS()                                              \
  do {                                                                                    \
    BOOST_TEST_MESSAGE("skipped under ThreadSanitizer (signal handlers in a forked child)"); \
    return;                                                                               \
  } while (false)
#else
#define PKIT_SKIP_UNDER_TSAN_FORKED_HANDLERS() \
  do {                                         \
  } while (false)
#endif

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
// Printing for BOOST_TEST (values it cannot print on its own)
// ---------------------------------------------------------------------------

namespace pkit {
inline std::ostream& boost_test_print_type(std::ostream& os, const exit_status& s) {
  return os << '"' << s.to_string() << '"';
}
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) {
  return os << "pkit::errc(" << static_cast<int>(e) << ": " << make_error_code(e).message()
            << ')';
}
inline std::ostream& boost_test_print_type(std::ostream& os, process_pool::task_state s) {
  switch (s) {
    case process_pool::task_state::ready: return os << "ready";
    case process_pool::task_state::running: return os << "running";
    case process_pool::task_state::finished: return os << "finished";
  }
  return os << "task_state(" << static_cast<int>(s) << ')';
}
}  // namespace pkit

namespace std {  // NOLINT: customisation point found by ADL, test code only
template <class T>
std::ostream& boost_test_print_type(std::ostream& os, const std::optional<T>& v) {
  if (!v) return os << "nullopt";
  if constexpr (requires { boost_test_print_type(os, *v); }) {
    return boost_test_print_type(os, *v);
  } else {
    return os << *v;
  }
}
inline std::ostream& boost_test_print_type(std::ostream& os, const std::error_category& c) {
  return os << c.name();
}
inline std::ostream& boost_test_print_type(std::ostream& os, std::errc e) {
  return os << "std::errc(" << static_cast<int>(e) << ": "
            << std::make_error_code(e).message() << ')';
}
}  // namespace std

#include "temp_dir.hpp"
#include "test_child_path.hpp"

namespace pkit_test {

using namespace std::chrono_literals;

/// Deadline for events that should happen promptly; only reached when something is
/// broken (then the test fails instead of hanging).
inline constexpr std::chrono::milliseconds event_timeout = std::chrono::seconds(10);

// ---------------------------------------------------------------------------
// The helper child program
// ---------------------------------------------------------------------------

using pkit_test_common::child_path;

/// `pkit_test_child MODE ARGS...` as a command.
inline pkit::command child_command(std::vector<std::string> args) {
  args.insert(args.begin(), child_path());
  return pkit::command{std::move(args)};
}

// ---------------------------------------------------------------------------
// Descriptors and pipes
// ---------------------------------------------------------------------------

struct pipe_ends {
  pkit::unique_fd read;
  pkit::unique_fd write;
};

/// A close-on-exec pipe.
inline pipe_ends make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::system_category(), "pipe2");
  }
  return {pkit::unique_fd{fds[0]}, pkit::unique_fd{fds[1]}};
}

/// Writes all of `data`; usable in a forked child (only write(2)). False on error.
inline bool write_all(int fd, std::string_view data) noexcept {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

namespace detail {
inline int poll_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 60000));
}

/// Waits until `fd` is readable (data or EOF); false at the deadline.
inline bool wait_readable(int fd, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, poll_ms(deadline));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) throw std::system_error(errno, std::system_category(), "poll");
    if (r == 0 && std::chrono::steady_clock::now() >= deadline) return false;
  }
}
}  // namespace detail

/// Reads `fd` until EOF; throws (failing the test) if EOF does not come in `timeout`.
inline std::string read_all(int fd, std::chrono::milliseconds timeout = event_timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    if (!detail::wait_readable(fd, deadline)) {
      throw std::runtime_error("timed out waiting for EOF on fd " + std::to_string(fd) +
                               " (read so far: '" + out.substr(0, 200) + "')");
    }
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw std::system_error(errno, std::system_category(), "read");
    }
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

/// Runs `in_copy()` in a forked copy of this (multithreaded) test program — the situation
/// of a daemonizing library or a plain fork() — and returns the text it returned, which
/// the copy writes to a pipe before it `_exit`s. The copy may hang (that can be the defect
/// under test): after `timeout` it is killed, and the result says the read timed out.
template <class F>
std::string verdict_of_forked_copy(F in_copy, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto report = make_pipe();
  const pid_t copy = ::fork();
  if (copy < 0) throw std::system_error(errno, std::system_category(), "fork");
  if (copy == 0) {
    write_all(report.write.get(), in_copy());
    ::_exit(0);
  }
  report.write.reset();
  std::string verdict;
  try {
    verdict = read_all(report.read.get(), timeout);
  } catch (const std::exception& e) {
    verdict = e.what();
  }
  ::kill(copy, SIGKILL);
  int status = 0;
  ::waitpid(copy, &status, 0);
  return verdict;
}

/// Reads one line (without its '\n'); throws on EOF before the newline or at the
/// deadline.
inline std::string read_line(int fd, std::chrono::milliseconds timeout = event_timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string line;
  for (;;) {
    if (!detail::wait_readable(fd, deadline)) {
      throw std::runtime_error("timed out waiting for a line on fd " + std::to_string(fd) +
                               " (read so far: '" + line + "')");
    }
    char c;
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw std::system_error(errno, std::system_category(), "read");
    }
    if (n == 0) throw std::runtime_error("EOF before a newline (read so far: '" + line + "')");
    if (c == '\n') return line;
    line += c;
  }
}

/// Whatever can be read from `fd` right now, without blocking at all.
inline std::string read_available(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || (p.revents & POLLIN) == 0) return out;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

/// True once every writer of `fd` has closed it (EOF), discarding data; false if that
/// does not happen within `timeout`. Used to observe the death of processes holding a
/// pipe's write end (e.g. grandchildren we cannot wait for).
inline bool eof_within(int fd, std::chrono::milliseconds timeout = event_timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    if (!detail::wait_readable(fd, deadline)) return false;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
      throw std::system_error(errno, std::system_category(), "read");
    }
  }
}

inline void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::system_category(), "fcntl");
  }
}

/// The descriptors open in this process, ascending (the listing's own fd excluded).
inline std::vector<int> open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) throw std::system_error(errno, std::system_category(), "opendir");
  const int own = ::dirfd(dir);
  std::vector<int> fds;
  while (const dirent* e = ::readdir(dir)) {
    int fd{};
    const std::string_view name{e->d_name};
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), fd);
    if (ec == std::errc{} && end == name.data() + name.size() && fd != own) fds.push_back(fd);
  }
  ::closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

inline std::size_t fd_count() { return open_fds().size(); }

/// Checks that the open descriptors are exactly `before`; names the differences.
inline void check_fds_unchanged(const std::vector<int>& before) {
  const auto now = open_fds();
  std::string diff;
  for (int fd : now) {
    if (!std::binary_search(before.begin(), before.end(), fd)) {
      std::error_code ec;
      diff += " +" + std::to_string(fd) + "(" +
              std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec).string() +
              ")";
    }
  }
  for (int fd : before) {
    if (!std::binary_search(now.begin(), now.end(), fd)) diff += " -" + std::to_string(fd);
  }
  BOOST_TEST(diff.empty(), "open descriptors changed:" << diff);
}

/// "0 1 2 5": like the helper's `fds` mode, for use inside a forked callable child.
inline std::string open_fds_text() {
  std::string out;
  for (int fd : open_fds()) {
    if (!out.empty()) out += ' ';
    out += std::to_string(fd);
  }
  return out;
}

/// Target of a symbolic link such as /proc/PID/fd/N; empty if unreadable.
inline std::string read_link(const std::string& path) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(path, ec);
  return ec ? std::string{} : target.string();
}

inline std::string fd_target(pid_t pid, int fd) {
  return read_link("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd));
}

// ---------------------------------------------------------------------------
// Processes, as /proc and waitid(WNOWAIT) see them
// ---------------------------------------------------------------------------

using pkit_test_proc::is_running;
using pkit_test_proc::is_zombie;
using pkit_test_proc::proc_exists;
using pkit_test_proc::proc_stat;
using pkit_test_proc::read_proc_stat;

inline std::vector<pid_t> children_of_self() {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    pid_t pid{};
    const auto [end, perr] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (perr != std::errc{} || end != name.data() + name.size()) continue;
    if (const auto st = read_proc_stat(pid); st && st->ppid == self) out.push_back(pid);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// The children that thread `tid` of this process created (live or zombie), from
/// /proc/self/task/TID/children: tells which thread forked a child.
inline std::vector<pid_t> children_of_thread(pid_t tid) {
  std::ifstream f{"/proc/self/task/" + std::to_string(tid) + "/children"};
  std::vector<pid_t> out;
  for (pid_t pid; f >> pid;) out.push_back(pid);
  std::sort(out.begin(), out.end());
  return out;
}

inline std::vector<pid_t> zombie_children() {
  std::vector<pid_t> out;
  for (pid_t pid : children_of_self()) {
    if (is_zombie(pid)) out.push_back(pid);
  }
  return out;
}

/// True while `pid` is a child of ours that has not been reaped (running or zombie).
/// Never reaps (WNOWAIT).
inline bool is_unreaped_child(pid_t pid) {
  siginfo_t si{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/// Blocks until child `pid` has terminated (zombie) or been reaped by someone else.
/// Never reaps (WNOWAIT), so it does not steal the exit from pkit.
inline void wait_until_exited(pid_t pid) {
  siginfo_t si{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT) != 0 &&
         errno == EINTR) {
  }
}

/// Reaps `pid` if it ended up as our (non-pkit) child, e.g. an orphaned grandchild
/// reparented to us should pkit make us a subreaper.
inline void reap_if_ours(pid_t pid) {
  if (is_unreaped_child(pid)) {
    siginfo_t si{};
    ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED);
  }
}

/// One line of /proc/self/status ("SigBlk:\t0000000000000000" -> "0000000000000000").
inline std::string status_field(const std::string& status_text, const std::string& key) {
  std::istringstream is(status_text);
  std::string line;
  while (std::getline(is, line)) {
    if (line.rfind(key, 0) == 0) {
      std::string v = line.substr(key.size());
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "<missing " + key + ">";
}

inline bool all_zero_hex(const std::string& mask) {
  return !mask.empty() && mask.find_first_not_of('0') == std::string::npos;
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

/// Installs a disposition for `signo` (a handler or SIG_IGN) and restores the old one.
class signal_disposition_guard {
public:
  signal_disposition_guard(int signo, void (*handler)(int)) : signo_(signo) {
    struct sigaction sa{};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(signo, &sa, &old_) != 0) {
      throw std::system_error(errno, std::system_category(), "sigaction");
    }
  }
  signal_disposition_guard(const signal_disposition_guard&) = delete;
  signal_disposition_guard& operator=(const signal_disposition_guard&) = delete;
  ~signal_disposition_guard() { ::sigaction(signo_, &old_, nullptr); }

private:
  int signo_;
  struct sigaction old_{};
};

/// Blocks `signals` in the calling thread and restores its mask.
class signal_block_guard {
public:
  explicit signal_block_guard(std::initializer_list<int> signals) {
    sigset_t set;
    sigemptyset(&set);
    for (int s : signals) sigaddset(&set, s);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  signal_block_guard(const signal_block_guard&) = delete;
  signal_block_guard& operator=(const signal_block_guard&) = delete;
  ~signal_block_guard() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

private:
  sigset_t old_{};
};

/// SigBlk/SigIgn/SigCgt of the calling process as text, for use in a forked child.
inline std::string own_signal_lines() { return read_text_file("/proc/self/status"); }

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

using pkit_test_common::temp_dir;

inline void write_text_file(const std::string& path, const std::string& content,
                            mode_t mode = 0644) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
    if (!f) throw std::runtime_error("cannot write " + path);
  }
  ::chmod(path.c_str(), mode);
}

// ---------------------------------------------------------------------------
// Error predicates for BOOST_CHECK_EXCEPTION
// ---------------------------------------------------------------------------

/// `BOOST_CHECK_EXCEPTION(expr, std::system_error, has_code(pkit::errc::x))`
template <class Code>
auto has_code(Code expected) {
  return [expected](const std::system_error& e) {
    const bool ok = e.code() == expected;
    if (!ok) BOOST_TEST_MESSAGE("unexpected error: " << e.code() << " (" << e.what() << ")");
    return ok;
  };
}

}  // namespace pkit_test
