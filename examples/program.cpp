// External programs (beyond process-kit): the same pkit::process runs a pkit::command --
// argv, environment, working directory, standard streams, resource limits, a readiness
// protocol -- spawned with clone(CLONE_VM|CLONE_VFORK) + exec, safe in a multithreaded
// program. A failed start (missing binary, no permission, bad directory) is reported by
// start() as an error naming the program, the stage that failed and the errno, not as an
// anonymous exit code 127.

#include "check.hpp"

#include <cstdio>

// [snippet]
#include <pkit/errc.hpp>
#include <pkit/process.hpp>

#include <cerrno>
#include <string>
#include <system_error>
#include <unistd.h>

// Reads `fd` until end of file.
std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) != 0;) {
    if (n > 0) text.append(buffer, static_cast<std::size_t>(n));
    else if (errno != EINTR) throw std::system_error(errno, std::system_category(), "read");
  }
  return text;
}

void run_a_program() {
  pkit::command cmd{"sh", "-c", "echo \"$GREETING from $(pwd), HOME=${HOME-unset}\"; exit 3"};
  cmd.env = {"GREETING=hello", "HOME"};  // set GREETING, remove HOME
  cmd.cwd = "/";

  pkit::process_options options;
  options.out = pkit::stdio::pipe();  // stdin and stderr stay inherited
  pkit::process program{cmd, options};

  program.start();
  pkit::unique_fd out = program.take_stdout_pipe();
  std::string text = read_all(out.get());  // until the program's stdout closes
  int exitcode = program.join();

  check(text == "hello from /, HOME=unset\n", "it printed: " + text.substr(0, text.size() - 1));
  check(exitcode == 3, "its exit code is 3");
}
// [/snippet]

// [snippet]
void limit_a_program() {
  pkit::command cmd{"sh", "-c", "ulimit -n"};
  cmd.limits = {{RLIMIT_NOFILE, 64, 64}};  // {resource, soft, hard}, set before exec

  pkit::process_options options;
  options.out = pkit::stdio::pipe();
  pkit::process program{cmd, options};
  program.start();
  std::string text = read_all(program.take_stdout_pipe().get());

  check(program.join() == 0 && text == "64\n", "ulimit -n in the child: 64");
}
// [/snippet]

// [snippet]
#include <chrono>

using namespace std::chrono_literals;

void wait_until_ready() {
  // The program says it is ready by writing a newline to fd 3 (s6's notification-fd).
  pkit::process_options options;
  options.notify_fd = 3;
  pkit::process server{pkit::command{"sh", "-c", "sleep 0.2; echo >&3; exec sleep 10"},
                       options};

  auto begin = std::chrono::steady_clock::now();
  server.start(pkit::wait);  // returns after the newline
  check(std::chrono::steady_clock::now() - begin >= 200ms, "start(wait) waited for it");
  server.terminate(pkit::wait);

  options.ready_timeout = 200ms;
  pkit::process silent{pkit::command{"sleep", "10"}, options};  // never writes the newline
  std::error_code ec;
  silent.start(pkit::wait, ec);  // kills and reaps the child after 200 ms
  check(ec == pkit::errc::start_timeout, "no newline within 200 ms: " + ec.message());
}
// [/snippet]

// [snippet]
void failed_starts() {
  pkit::process missing{pkit::command{"/no/such/program", "--help"}};
  std::error_code ec;
  missing.start(ec);
  pkit::spawn_failure why = missing.last_failure().value();
  std::printf("  %s\n", why.to_string().c_str());
  check(why.stage == "exec" && ec == std::errc::no_such_file_or_directory, "exec: ENOENT");

  pkit::process not_executable{pkit::command{"/etc/passwd"}};
  try {
    not_executable.start();  // the throwing form: pkit::spawn_error
    check(false, "start() throws");
  } catch (const pkit::spawn_error& e) {
    std::printf("  %s\n", e.what());
    check(e.failure().stage == "exec" && e.code() == std::errc::permission_denied,
          "exec: EACCES");
  }

  pkit::command nowhere{"true"};
  nowhere.cwd = "/no/such/directory";
  pkit::process lost{nowhere};
  lost.start(ec);
  std::string stage = lost.last_failure().value().stage;
  check(stage == "chdir" && ec == std::errc::no_such_file_or_directory, "chdir: ENOENT");
}
// [/snippet]

int main() {
  return run_example("program", [] {
    std::printf("argv, env, cwd and a stdout pipe:\n");
    run_a_program();
    std::printf("resource limits:\n");
    limit_a_program();
    std::printf("readiness (notify_fd):\n");
    wait_until_ready();
    std::printf("failed starts:\n");
    failed_starts();
  });
}
