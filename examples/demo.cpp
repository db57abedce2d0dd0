// pkit_demo: a guided tour of pkit on real processes.
//
// Each step starts real child processes, prints what happens to them (pids, exit statuses,
// errors) and checks the outcome. The program exits with 0 when every step went as
// expected, 1 otherwise. Run it with `bash tools/demo.sh`.

#include <pkit/errc.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>
#include <pkit/process_pool.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <exception>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

// ---- the tour's bookkeeping ------------------------------------------------------------

int steps = 0;
int failed_steps = 0;
bool step_failed = false;

void say(const char* format, ...) __attribute__((format(printf, 1, 2)));
void say(const char* format, ...) {
  std::va_list args;
  va_start(args, format);
  std::printf("    ");
  std::vprintf(format, args);
  std::printf("\n");
  va_end(args);
}

void expect(bool ok, const std::string& what) {
  std::printf("    %s %s\n", ok ? "[ok]    " : "[FAILED]", what.c_str());
  if (!ok) step_failed = true;
}

template <class Step>
void step(const char* title, Step&& body) {
  ++steps;
  step_failed = false;
  std::printf("\n%d. %s\n", steps, title);
  try {
    body();
  } catch (const std::exception& e) {
    expect(false, std::string("unexpected exception: ") + e.what());
  }
  if (step_failed) ++failed_steps;
}

std::string status_of(pkit::process& p) {
  auto status = p.status();
  return status ? status->to_string() : "no status";
}

std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) != 0;) {
    if (n > 0) text.append(buffer, static_cast<std::size_t>(n));
    else if (errno != EINTR) break;
  }
  return text;
}

long long ms_since(steady_clock::time_point begin) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - begin)
      .count();
}

// ---- what the children run -------------------------------------------------------------

int count_words(const std::string& text) {
  std::istringstream in{text};
  int words = 0;
  for (std::string word; in >> word;) ++words;
  std::printf("      (child %d: \"%s\" has %d words)\n", getpid(), text.c_str(), words);
  return words;
}

int sleep_then_return(int ms, int code) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return code;
}

int greet(const std::vector<std::string>& args) {  // a fork-server target
  std::printf("      (child %d, forked by the fork server %d: hello, %s)\n", getpid(), getppid(),
              args.at(0).c_str());
  return static_cast<int>(args.at(0).size());
}

// ---- the steps -------------------------------------------------------------------------

void a_callable() {
  pkit::process p{pkit::target(count_words, "fork a child, run a callable")};
  pid_t pid = p.start();
  say("p.start() forked child %d to run count_words(\"fork a child, run a callable\")", pid);
  int code = p.join();
  say("p.join() -> %d (%s)", code, status_of(p).c_str());
  expect(code == 6, "the exit code is the callable's result");
}

void blocking_start_then_sigterm() {
  pkit::process p{[] { std::this_thread::sleep_for(30s); }};
  pid_t pid = p.start(pkit::wait);
  say("p.start(pkit::wait) returned: child %d is ready to run its 30 s sleep", pid);
  ::kill(pid, SIGTERM);
  say("kill(%d, SIGTERM) sent at once", pid);
  std::optional<int> code = p.join(5s);
  say("p.join(5s) -> %s (%s)", code ? std::to_string(*code).c_str() : "no value",
      status_of(p).c_str());
  expect(code == -SIGTERM, "the immediate SIGTERM was honoured, not lost");
}

void blocking_terminate() {
  pkit::process p{[] { std::this_thread::sleep_for(30s); }};
  pid_t pid = p.start();
  say("child %d sleeps for 30 s; p.join(100ms) -> %s", pid,
      p.join(100ms) ? "a value" : "no value (still running)");
  auto begin = steady_clock::now();
  p.terminate(pkit::wait);
  say("p.terminate(pkit::wait) returned after %lld ms (%s); is_alive() = %s",
      ms_since(begin), status_of(p).c_str(), p.is_alive() ? "true" : "false");
  expect(!p.is_alive() && p.exitcode() == -SIGTERM, "gone and reaped when terminate returns");
}

void exit_callback() {
  std::atomic<pid_t> seen{0};
  std::atomic<int> calls{0};
  pkit::process_options options;
  options.on_exit = [&](pkit::process& proc) {
    seen = proc.pid().value_or(-1);
    ++calls;
    std::printf("      (on_exit on the reaper thread: child %d %s)\n", seen.load(),
                status_of(proc).c_str());
  };
  pkit::process p{pkit::target(sleep_then_return, 200, 7), options};
  pid_t pid = p.start();
  say("child %d will exit with 7 after 200 ms; nobody terminates it", pid);
  p.join();
  say("after p.join(): on_exit saw pid %d, %d call(s)", seen.load(), calls.load());
  expect(seen == pid && calls == 1, "on_exit ran exactly once, with the run's pid");
}

void restart() {
  std::mutex mutex;
  std::vector<std::string> log;
  pkit::process_options options;
  options.on_exit = [&](pkit::process& proc) {
    std::lock_guard lock{mutex};
    log.push_back(std::to_string(proc.pid().value_or(-1)) + " " + status_of(proc));
  };
  pkit::process p{pkit::target(sleep_then_return, 300, 0), options};
  pid_t first = p.start();
  pid_t second = p.restart(pkit::restart_policy::graceful);
  say("restart(graceful): waited for %d to end by itself, started %d", first, second);
  pid_t third = p.restart(pkit::restart_policy::forced);
  say("restart(forced): stopped %d, started %d", second, third);
  p.join();
  std::lock_guard lock{mutex};
  for (const std::string& line : log) say("run %s", line.c_str());
  expect(log.size() == 3 && p.runs() == 3, "three runs of one process object");
  expect(log.size() == 3 && log[1].ends_with("(SIGTERM)"), "the forced restart terminated run 2");
}

void stop_policy() {
  pkit::process_options options;
  options.notify_fd = 3;
  options.stop = pkit::stop_policy{.signal = SIGTERM, .timeout = 300ms};
  pkit::process p{pkit::command{"sh", "-c", "trap '' TERM; echo >&3; while :; do sleep 1; done"},
                  options};
  pid_t pid = p.start(pkit::wait);
  say("child %d (sh) ignores SIGTERM; it wrote a newline to fd 3 once its trap was set", pid);
  auto begin = steady_clock::now();
  pkit::exit_status status = p.stop();
  say("p.stop(): SIGTERM, 300 ms of grace, then SIGKILL -> %s after %lld ms",
      status.to_string().c_str(), ms_since(begin));
  expect(status.is_killed() && status.signal() == SIGKILL, "escalated to SIGKILL");
}

void a_program() {
  pkit::command cmd{"sh", "-c", "echo \"$GREETING from $(pwd)\"; exit 5"};
  cmd.env = {"GREETING=hello"};
  cmd.cwd = "/";
  pkit::process_options options;
  options.out = pkit::stdio::pipe();
  pkit::process p{cmd, options};
  pid_t pid = p.start();
  say("started program %d: sh -c '...' with GREETING=hello, cwd /, stdout to a pipe", pid);
  std::string text = read_all(p.take_stdout_pipe().get());
  if (!text.empty() && text.back() == '\n') text.pop_back();
  int code = p.join();
  say("read from the pipe: \"%s\"; the program %s", text.c_str(), status_of(p).c_str());
  expect(text == "hello from /" && code == 5, "output and exit code as expected");
}

void an_exec_failure() {
  pkit::process p{pkit::command{"/no/such/program"}};
  std::error_code ec;
  p.start(ec);
  auto failure = p.last_failure();
  say("p.start() -> error %d (%s)", ec.value(), ec.message().c_str());
  if (failure) say("last_failure(): stage \"%s\": %s", failure->stage.c_str(),
                   failure->to_string().c_str());
  expect(failure && failure->stage == "exec" && ec == std::errc::no_such_file_or_directory,
         "reported by start() with its stage and errno, not as exit code 127");
}

void a_pool() {
  pkit::process_pool pool{2};
  auto begin = steady_clock::now();
  std::vector<pkit::process_pool::task> tasks;
  for (int i = 1; i <= 4; ++i) {
    tasks.push_back(pool.execute(pkit::target(sleep_then_return, 200, i)));
    auto pid = tasks.back().pid();
    say("t=%3lld ms: task %d started as pid %d (slots busy: %zu/%zu)", ms_since(begin), i,
        pid ? *pid : -1, pool.busy(), pool.slots());
  }
  bool ok = true;
  for (int i = 1; i <= 4; ++i) ok = ok && tasks[i - 1].join() == i;
  pool.close();
  long long took = ms_since(begin);
  say("four 200 ms tasks on two slots took %lld ms: two waves", took);
  expect(ok, "each task's exit code is its own");
  expect(took >= 400, "never more than two tasks at a time");
}

void a_fork_server(const pkit::fork_server& server) {
  say("the fork server (pid %d) was started first, while this program had one thread",
      server.pid());
  std::vector<std::future<std::string>> runs;
  for (std::string name : {"ada", "grace", "linus"}) {
    runs.push_back(std::async(std::launch::async, [&server, name] {
      pkit::process p{server.target("greet", {name})};
      pid_t pid = p.start();
      int code = p.join();
      return "thread ran \"greet " + name + "\" as child " + std::to_string(pid) + ": exit code " +
             std::to_string(code);
    }));
  }
  std::vector<std::string> lines;
  for (auto& run : runs) lines.push_back(run.get());
  for (const std::string& line : lines) say("%s", line.c_str());
  expect(lines[0].ends_with("exit code 3") && lines[1].ends_with("exit code 5") &&
             lines[2].ends_with("exit code 5"),
         "three threads ran server targets safely");
}

}  // namespace

int main() {
  // The fork server first, while this program still has a single thread.
  pkit::fork_server::registry targets;
  targets.add("greet", greet);
  pkit::fork_server server = pkit::fork_server::start(std::move(targets));

  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("pkit demo: real child processes of this program (pid %d)\n", getpid());

  step("A C++ callable with bound arguments, run in a child", a_callable);
  step("Blocking start, then an immediate SIGTERM", blocking_start_then_sigterm);
  step("Blocking terminate", blocking_terminate);
  step("An exit callback", exit_callback);
  step("Restart: graceful, then forced", restart);
  step("A stop policy: SIGTERM, a grace period, then SIGKILL", stop_policy);
  step("An external program: argv, env, cwd and a stdout pipe", a_program);
  step("An exec failure, with its stage and errno", an_exec_failure);
  step("A process pool with two slots", a_pool);
  step("A fork server, used from three threads", [&] { a_fork_server(server); });

  if (failed_steps == 0) {
    std::printf("\nAll %d steps went as expected.\n", steps);
    return 0;
  }
  std::printf("\n%d of %d steps did NOT go as expected.\n", failed_steps, steps);
  return 1;
}
