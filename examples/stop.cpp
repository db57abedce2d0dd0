// Stop policies and process groups (beyond process-kit).
//
// stop() is a graceful-then-forced stop, like systemd's KillSignal= + TimeoutStopSec=:
// send the policy's signal, wait up to its timeout, then SIGKILL. Each child leads its own
// process group (process_options::new_process_group, on by default), and with
// stop_policy::kill_group (also the default) both signals reach the whole group, so the
// descendants a child left behind are stopped with it.

#include "check.hpp"

#include <cerrno>
#include <poll.h>
#include <string>
#include <sys/syscall.h>
#include <system_error>
#include <unistd.h>

// Reads one line (without its '\n') from `fd`.
std::string read_line(int fd) {
  std::string line;
  for (char c;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n == 0 || (n == 1 && c == '\n')) return line;
    if (n == 1) line += c;
    else if (errno != EINTR) throw std::system_error(errno, std::system_category(), "read");
  }
}

// Waits up to 5 s for a process that is not our child to exit (its pidfd turns readable).
bool wait_until_gone(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;  // already gone
  pollfd p{fd, POLLIN, 0};
  int ready = ::poll(&p, 1, 5000);
  ::close(fd);
  return ready == 1;
}

// [snippet]
#include <pkit/process.hpp>

#include <chrono>
#include <csignal>

using namespace std::chrono_literals;

void stop_a_stubborn_program() {
  // Ignores SIGTERM; writes a newline to fd 3 (notify_fd) once its trap is set.
  pkit::command stubborn{"sh", "-c", "trap '' TERM; echo >&3; while :; do sleep 1; done"};

  pkit::process_options options;
  options.notify_fd = 3;
  options.stop = pkit::stop_policy{.signal = SIGTERM, .timeout = 300ms};
  pkit::process process{stubborn, options};
  process.start(pkit::wait);

  auto begin = std::chrono::steady_clock::now();
  pkit::exit_status status = process.stop();  // SIGTERM, 300 ms of grace, then SIGKILL
  auto took = std::chrono::steady_clock::now() - begin;

  check(status.is_killed() && status.signal() == SIGKILL, status.to_string());
  check(took >= 300ms, "SIGKILL came only after the 300 ms of grace");
}

void stop_a_process_group() {
  // The shell leaves a grandchild behind: `sleep 60` in the background.
  pkit::process_options options;
  options.out = pkit::stdio::pipe();
  pkit::process shell{pkit::command{"sh", "-c", "sleep 60 & echo $!; wait"}, options};
  shell.start();
  pid_t grandchild = std::stoi(read_line(shell.take_stdout_pipe().get()));

  shell.stop();  // the default policy: SIGTERM to the shell's whole process group
  check(wait_until_gone(grandchild), "the grandchild was stopped with the shell");
}
// [/snippet]

int main() {
  return run_example("stop", [] {
    std::printf("a program that ignores SIGTERM:\n");
    stop_a_stubborn_program();
    std::printf("a program that leaves a grandchild behind:\n");
    stop_a_process_group();
  });
}
