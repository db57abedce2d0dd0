#include "pkit_run_process.hpp"


#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace pkit_test_tools {

using namespace std::chrono;

std::string pkit_binary() { return PKIT_BINARY; }

pkit_process::pkit_process(const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
                           grouping where, const std::string& stdin_path) {
  out_path_ = (std::filesystem::temp_directory_path() / ("pkit-run-out-" + std::to_string(::getpid()) + "-" +
                                                         std::to_string(steady_clock::now().time_since_epoch().count())))
                  .string();
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  if (!stdin_path.empty()) posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
  std::vector<std::string> argv{pkit_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> av;
  for (auto& a : argv) av.push_back(a.data());
  av.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> ev;
  for (auto& e : env) ev.push_back(e.data());
  ev.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (where == grouping::own_group) {
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
  } else if (where == grouping::own_session) {
    // glibc's child calls setsid() before the file actions: the session leader's open
    // of a terminal (no O_NOCTTY) makes it the controlling one.
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  }
  int rc = ::posix_spawn(&pid_, av[0], &fa, &attr, av.data(), ev.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  ::close(err[1]);
  if (rc != 0) {
    ::close(err[0]);
    throw std::system_error(rc, std::system_category(), "posix_spawn pkit");
  }
  err_.reset(err[0]);
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
}

pkit_process::~pkit_process() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
  }
  if (pidfd_ >= 0) ::close(pidfd_);
  std::error_code ec;
  std::filesystem::remove(out_path_, ec);
}

std::optional<nlohmann::json> pkit_process::wait_event(const std::function<bool(const nlohmann::json&)>& match,
                                                       milliseconds deadline) {
  auto until = steady_clock::now() + deadline;
  std::string line;
  while (err_.next_line(line, until)) {
    if (line.empty() || line.front() != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && match(j)) return j;
  }
  return std::nullopt;
}

std::optional<std::string> pkit_process::wait_line(const std::string& text, milliseconds deadline) {
  auto until = steady_clock::now() + deadline;
  std::string line;
  while (err_.next_line(line, until))
    if (line.find(text) != std::string::npos) return line;
  return std::nullopt;
}

std::optional<int> pkit_process::wait_exit(milliseconds deadline, stderr_while_waiting reading) {
  if (reaped_) return code_;
  std::vector<line_pipe*> pipes;
  if (reading == stderr_while_waiting::read) pipes.push_back(&err_);
  if (!await_exit_reading(pidfd_, deadline, pipes)) return std::nullopt;
  int st = 0;
  if (::waitpid(pid_, &st, 0) != pid_) return std::nullopt;
  reaped_ = true;
  code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  // Drain stderr (the write end is closed now, unless a child inherited it).
  err_.drain();
  return code_;
}

std::string pkit_process::stdout_text() const {
  std::ifstream in(out_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string pkit_process::stderr_text() const { return err_.text_so_far(); }

void pkit_process::close_stderr() { err_.close(); }

bool pkit_process::stderr_writer_blocked() const {
  // "NR fd buf count ...", arguments in hex; a task on a CPU reads "running" instead.
  const std::string asleep_writing = std::to_string(SYS_write) + " 0x2 ";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
    std::ifstream in(task.path() / "syscall");
    std::string line;
    if (std::getline(in, line) && line.rfind(asleep_writing, 0) == 0) return true;
  }
  return false;
}

std::function<bool(const nlohmann::json&)> is_event(const std::string& name, const std::string& kind, int run) {
  return [=](const nlohmann::json& j) {
    return j.value("program", "") == name && j.value("event", "") == kind && (run <= 0 || j.value("run", 0) == run);
  };
}

bool gone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return true;
  std::string all;
  std::getline(in, all);
  auto close = all.rfind(')');
  return close == std::string::npos || (close + 2 < all.size() && all[close + 2] == 'Z');
}

bool all_gone(const std::vector<pid_t>& pids, milliseconds deadline) {
  auto until = steady_clock::now() + deadline;
  for (;;) {
    bool any = false;
    for (pid_t p : pids) any = any || !gone(p);
    if (!any) return true;
    if (steady_clock::now() >= until) return false;
    // Polling /proc is the only way to watch processes that are not our children.
    std::this_thread::sleep_for(milliseconds(20));
  }
}

namespace {

// Polls /proc/PID/status until the mask on line `field` ("SigIgn:") holds `sig`.
bool wait_mask(pid_t pid, const std::string& field, int sig, milliseconds deadline) {
  auto until = steady_clock::now() + deadline;
  for (;;) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(field, 0) != 0) continue;
      auto mask = std::stoull(line.substr(field.size()), nullptr, 16);
      if (mask & (1ull << (sig - 1))) return true;
    }
    if (steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

}  // namespace

bool wait_ignores(pid_t pid, int sig, milliseconds deadline) { return wait_mask(pid, "SigIgn:", sig, deadline); }
bool wait_catches(pid_t pid, int sig, milliseconds deadline) { return wait_mask(pid, "SigCgt:", sig, deadline); }

std::vector<pid_t> group_members(pid_t pgid) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    if (::getpgid(pid) == pgid && !gone(pid)) out.push_back(pid);
  }
  return out;
}

}  // namespace pkit_test_tools
