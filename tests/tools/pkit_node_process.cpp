#include "pkit_node_process.hpp"

#include <cerrno>
#include <csignal>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace pkit_test_tools {

using namespace std::chrono;

namespace {
/// A pipe whose ends not taken are closed on destruction: a constructor that throws
/// halfway leaves no descriptor behind.
struct owned_pipe {
  int fd[2] = {-1, -1};
  owned_pipe() {
    if (::pipe2(fd, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
  }
  owned_pipe(const owned_pipe&) = delete;
  owned_pipe& operator=(const owned_pipe&) = delete;
  ~owned_pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  int take(int end) { return std::exchange(fd[end], -1); }
};
}  // namespace

pkit_node_process::pkit_node_process(const std::vector<std::string>& args, const std::vector<std::string>& wrapper) {
  owned_pipe in, out, err;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in.fd[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err.fd[1], 2);
  std::vector<std::string> argv = wrapper;
  argv.insert(argv.end(), {PKIT_BINARY, "node"});
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> av;
  for (auto& a : argv) av.push_back(a.data());
  av.push_back(nullptr);
  int rc = ::posix_spawnp(&pid_, av[0], &fa, nullptr, av.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::system_error(rc, std::system_category(), "posix_spawn pkit node");
  stdin_writer_ = in.take(1);
  out_.reset(out.take(0));
  err_.reset(err.take(0));
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
}

pkit_node_process::~pkit_node_process() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
  }
  if (pidfd_ >= 0) ::close(pidfd_);
  if (stdin_writer_ >= 0) ::close(stdin_writer_);
}

std::optional<std::uint16_t> pkit_node_process::wait_listening(milliseconds deadline) {
  auto line = out_.wait_for("listening on ", steady_clock::now() + deadline);
  if (!line) return std::nullopt;
  auto colon = line->rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  return static_cast<std::uint16_t>(std::stoul(line->substr(colon + 1)));
}

std::optional<std::string> pkit_node_process::wait_stdout(const std::string& text, milliseconds deadline) {
  return out_.wait_for(text, steady_clock::now() + deadline);
}

std::optional<std::string> pkit_node_process::wait_stderr(const std::string& text, milliseconds deadline) {
  return err_.wait_for(text, steady_clock::now() + deadline);
}

std::optional<int> pkit_node_process::wait_exit(milliseconds deadline) {
  if (reaped_) return code_;
  if (!await_exit_reading(pidfd_, deadline, {&out_, &err_})) return std::nullopt;
  int st = 0;
  if (::waitpid(pid_, &st, 0) != pid_) return std::nullopt;
  reaped_ = true;
  code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return code_;
}

bool wait_pid_gone(pid_t pid, milliseconds deadline) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  int n;
  do n = ::poll(&p, 1, static_cast<int>(deadline.count()));
  while (n < 0 && errno == EINTR);
  ::close(fd);
  return n == 1;
}

}  // namespace pkit_test_tools
