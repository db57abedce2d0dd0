#include "pkit_ctl_client.hpp"

#include "pkit_run_process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace pkit_test_tools {

using namespace std::chrono;

namespace {

// Reads from `fd` into `buffer` until it holds a line; false at the deadline or EOF.
bool read_line(int fd, std::string& buffer, std::string& line, milliseconds deadline) {
  auto until = steady_clock::now() + deadline;
  for (;;) {
    if (auto nl = buffer.find('\n'); nl != std::string::npos) {
      line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      return true;
    }
    auto left = duration_cast<milliseconds>(until - steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    char buf[65536];
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    buffer.append(buf, static_cast<std::size_t>(got));
  }
}

}  // namespace

ctl_result run_ctl(const std::string& socket, const std::vector<std::string>& args, milliseconds deadline) {
  std::vector<std::string> all{"ctl", "--socket", socket};
  all.insert(all.end(), args.begin(), args.end());
  pkit_process p(all);
  ctl_result r;
  r.code = p.wait_exit(deadline).value_or(-1);
  r.out = p.stdout_text();
  r.err = p.stderr_text();
  return r;
}

ctl_stream::ctl_stream(const std::string& socket, const std::vector<std::string>& args)
    : ctl_stream([&] {
        std::vector<std::string> all{"--socket", socket};
        all.insert(all.end(), args.begin(), args.end());
        return all;
      }()) {}

ctl_stream::ctl_stream(const std::vector<std::string>& ctl_args) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::vector<std::string> argv{pkit_binary(), "ctl"};
  argv.insert(argv.end(), ctl_args.begin(), ctl_args.end());
  std::vector<char*> av;
  for (auto& a : argv) av.push_back(a.data());
  av.push_back(nullptr);
  int rc = ::posix_spawn(&pid_, av[0], &fa, nullptr, av.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    throw std::system_error(rc, std::system_category(), "posix_spawn pkit ctl");
  }
  out_fd_ = out[0];
}

ctl_stream::~ctl_stream() {
  if (!reaped_) stop(SIGKILL);
  if (out_fd_ >= 0) ::close(out_fd_);
}

std::optional<std::string> ctl_stream::next_line(milliseconds deadline) {
  std::string line;
  if (!read_line(out_fd_, buffer_, line, deadline)) return std::nullopt;
  return line;
}

int ctl_stream::stop(int sig, milliseconds deadline) {
  if (reaped_) return code_;
  ::kill(pid_, sig);
  // No pidfd needed: a short poll of waitpid bounded by the deadline (the child is ours).
  for (auto until = steady_clock::now() + deadline;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return code_;
    }
    if (steady_clock::now() >= until) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
      reaped_ = true;
      return -1;
    }
    pollfd none{-1, 0, 0};
    ::poll(&none, 0, 5);
  }
}

raw_client::raw_client(const std::string& socket) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::system_error(errno, std::system_category(), "socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd_);
    throw std::system_error(e, std::system_category(), "connect " + socket);
  }
}

raw_client::~raw_client() {
  if (fd_ >= 0) ::close(fd_);
}

bool raw_client::send(const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<nlohmann::json> raw_client::read_reply(milliseconds deadline) {
  std::string line;
  if (!read_line(fd_, buffer_, line, deadline)) return std::nullopt;
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace pkit_test_tools
