// pkit_fault_probe -- scenarios of the fault tests that need a process of their own.
//
// Some faults can only be provoked in a fresh process: one whose stdout is a pipe with
// unflushed text in it, one that inherited SIGCHLD=SIG_IGN across exec, one that runs as
// an unprivileged user under RLIMIT_NPROC, one that is pid 1 of its own pid namespace.
// The fault tests run this program through pkit and check its output and exit code.
//
// Usage: pkit_fault_probe MODE
//
//   stdio-once             (S2) with stdout a pipe, prints unflushed text, starts a fork
//                          server, spawns callables that return / throw / exit_child /
//                          std::exit, and exits normally. Prints markers (PARENT, ATEXIT,
//                          DTOR, STDEXIT, MAIN-END, CASE) that the test counts.
//   sigchld-ignored        (R4) sets SIGCHLD to SIG_IGN and execs itself as
//                          sigchld-ignored-child, which checks that children exiting with 3
//                          are reported as exited(3).
//   nproc                  (S4) drops to uid/gid 65534 (when root), sets RLIMIT_NPROC to 0
//                          and checks that start() fails fast with EAGAIN, leaves nothing
//                          behind, and works again once the limit is restored.
//   pid-reuse              (R6) in a new pid namespace, forces a reaped child's pid onto a
//                          sentinel (ns_last_pid) and checks that terminate/signal/kill/stop
//                          on the old handle do not reach it.
//   group-reuse            (R6, groups) in a new pid namespace, stops a kill_group leader and,
//                          from its on_exit, gives its old pid (= pgid) to a sentinel leading
//                          its own group; checks that the stop sends it nothing.
//   pty-ctrl-c             (T2) leads a session on a new pty with pkit children, gets a ^C
//                          typed at the terminal; the children survive it, a same-group
//                          control child does not.
//   daemon                 (T4) starts echo children from the main thread and from a thread
//                          that ends, checks they survive it, prints "PIDS ..." and blocks
//                          until killed (the test SIGKILLs it).
//   no-fork-on-invalid     (B2) in a new pid namespace, checks through ns_last_pid that a
//                          rejected argv/env creates no task at all.
//
// Exit codes: 0 pass, 1 fail (FAIL lines on stdout say why), 77 the scenario cannot run
// here (a SKIP line says why), 100 bad usage. Diagnostics are written with write(2), never
// through stdio, so that they cannot be duplicated by a fork.

#include "proc_util.hpp"

#include <pkit/errc.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <termios.h>
#include <grp.h>
#include <sched.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using faults::steady;

constexpr int exit_pass = 0;
constexpr int exit_fail = 1;
constexpr int exit_skip = 77;
constexpr int exit_usage = 100;

void say(const std::string& line) { faults::write_all(STDOUT_FILENO, line + "\n"); }

int failures = 0;
void fail(const std::string& what) {
  ++failures;
  say("FAIL: " + what);
}
[[noreturn]] void skip(const std::string& why) {
  say("SKIP: " + why);
  ::_exit(exit_skip);
}

std::string status_text(const std::optional<pkit::exit_status>& st) {
  return st ? st->to_string() : std::string{"no exit within the deadline"};
}

std::string helper_path() {
  const char* p = std::getenv("PKIT_TEST_CHILD");
  return p != nullptr ? p : "";
}

// ---------------------------------------------------------------------------
// S2: stdio-once
// ---------------------------------------------------------------------------

bool markers = false;  // only the stdio-once mode writes the ATEXIT / DTOR markers

void atexit_marker() {
  if (markers) say("ATEXIT " + std::to_string(::getpid()));
}

struct dtor_marker {
  ~dtor_marker() {
    if (markers) say("DTOR " + std::to_string(::getpid()));
  }
} the_dtor_marker;

class throwing_subclass : public pkit::process {
public:
  throwing_subclass() : pkit::process(pkit::process_options{}) {}

protected:
  void run() override { throw std::runtime_error("run() of a subclass threw"); }
};

// Starts `p`, checks the child did not come back here, and that it ends with `want`.
void expect_exit(const std::string& name, pkit::process& p, pkit::exit_status want,
                 pid_t parent, bool std_exit = false) {
  std::error_code ec;
  const pid_t pid = p.start(ec);
  if (::getpid() != parent) {
    // The child returned from start() into the caller's code: the fault itself.
    say("ESCAPED " + name + " " + std::to_string(::getpid()));
    ::_exit(99);
  }
  if (ec) {
    fail(name + ": start failed: " + ec.message());
    return;
  }
  if (std_exit) say("STDEXIT " + std::to_string(pid));
  auto st = p.join_status(10s);
  const bool ok = st && *st == want;
  say("CASE " + name + " got=" + status_text(st) + " want=" + want.to_string() +
      (ok ? " ok" : " MISMATCH"));
  if (!ok) fail(name + ": " + status_text(st) + ", expected " + want.to_string());
  if (!st) {
    p.kill();
    p.join_status(5s);
  }
}

int mode_stdio_once() {
  markers = true;
  const pid_t parent = ::getpid();
  say("PARENT " + std::to_string(parent));
  std::atexit(atexit_marker);

  // stdout is a pipe, so stdio buffers all of this until exit.
  std::printf("BEFORE-SERVER|");

  pkit::fork_server::registry targets;
  targets.add("return", [](const std::vector<std::string>& a) { return std::stoi(a.at(0)); });
  targets.add("throw", [](const std::vector<std::string>&) -> int {
    throw std::runtime_error("a fork-server target threw");
  });
  targets.add("exit-child", [](const std::vector<std::string>& a) -> int {
    pkit::exit_child(std::stoi(a.at(0)));
  });
  targets.add("print", [](const std::vector<std::string>&) {
    std::printf("SRV-TEXT|");  // unflushed: the child's own output, flushed at its end
    return 0;
  });
  auto server = pkit::fork_server::start(std::move(targets));

  std::printf("BEFORE-SPAWN|");
  std::cout << "COUT-BEFORE|";

  using pkit::exit_status;
  {
    pkit::process p{[] {}};
    expect_exit("return-void", p, exit_status::exited(0), parent);
  }
  {
    pkit::process p{[] { return 3; }};
    expect_exit("return-3", p, exit_status::exited(3), parent);
  }
  {
    pkit::process p{[]() -> int { throw std::runtime_error("a callable threw"); }};
    expect_exit("throw-runtime-error", p, exit_status::exited(1), parent);
  }
  {
    pkit::process p{[]() -> int { throw 42; }};
    expect_exit("throw-int", p, exit_status::exited(1), parent);
  }
  {
    pkit::process p{[] { pkit::exit_child(4); }};
    expect_exit("exit-child-4", p, exit_status::exited(4), parent);
  }
  {
    pkit::process p{[] { throw pkit::exit_request{5}; }};
    expect_exit("exit-request-5", p, exit_status::exited(5), parent);
  }
  {
    // The user's own choice: runs atexit handlers and static destructors in the child.
    pkit::process p{[] { std::exit(6); }};
    expect_exit("std-exit-6", p, exit_status::exited(6), parent, true);
  }
  {
    pkit::process p{[] { std::printf("FORKED-TEXT|"); }};
    expect_exit("print", p, exit_status::exited(0), parent);
  }
  {
    pkit::process p{pkit::target([](int a, int b) { return a + b; }, 3, 4)};
    expect_exit("target-args", p, exit_status::exited(7), parent);
  }
  {
    throwing_subclass p;
    expect_exit("subclass-run-throws", p, exit_status::exited(1), parent);
  }
  {
    pkit::process p{server.target("return", {"3"})};
    expect_exit("server-return-3", p, exit_status::exited(3), parent);
  }
  {
    pkit::process p{server.target("throw")};
    expect_exit("server-throw", p, exit_status::exited(1), parent);
  }
  {
    pkit::process p{server.target("exit-child", {"4"})};
    expect_exit("server-exit-child-4", p, exit_status::exited(4), parent);
  }
  {
    pkit::process p{server.target("print")};
    expect_exit("server-print", p, exit_status::exited(0), parent);
  }

  server.shutdown();
  std::printf("AFTER|");
  say("MAIN-END " + std::to_string(::getpid()));
  return failures == 0 ? exit_pass : exit_fail;  // exit() flushes the text above once
}

// ---------------------------------------------------------------------------
// R4: sigchld-ignored
// ---------------------------------------------------------------------------

int mode_sigchld_ignored(const char* self) {
  struct sigaction sa{};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGCHLD, &sa, nullptr) != 0) {
    fail(std::string{"sigaction: "} + std::strerror(errno));
    return exit_fail;
  }
  // Like a launcher that ignores SIGCHLD and execs the supervisor: SIG_IGN survives exec.
  ::execl("/proc/self/exe", self, "sigchld-ignored-child", static_cast<char*>(nullptr));
  fail(std::string{"exec: "} + std::strerror(errno));
  return exit_fail;
}

int mode_sigchld_ignored_child() {
  struct sigaction sa{};
  ::sigaction(SIGCHLD, nullptr, &sa);
  if (sa.sa_handler != SIG_IGN) {
    say("FAIL: set-up: SIGCHLD was not ignored at entry");
    return 2;
  }
  const std::string helper = helper_path();
  if (helper.empty()) {
    say("FAIL: set-up: PKIT_TEST_CHILD is not set");
    return 2;
  }

  // Each kind of child exits with 3; join and on_exit must both say so.
  auto check = [](const std::string& name, auto make) {
    std::mutex m;
    std::optional<pkit::exit_status> seen;
    pkit::process_options o;
    o.on_exit = [&](pkit::process& p) {
      std::lock_guard<std::mutex> lock(m);
      seen = p.status();
    };
    pkit::process p{make(), std::move(o)};
    std::error_code ec;
    p.start(ec);
    if (ec) {
      fail(name + ": start failed: " + ec.message());
      return;
    }
    const auto st = p.join_status(10s);
    say("CASE " + name + " " + status_text(st));
    if (st != pkit::exit_status::exited(3))
      fail(name + ": join reported " + status_text(st) + ", expected exited with code 3");
    std::lock_guard<std::mutex> lock(m);
    if (seen != pkit::exit_status::exited(3))
      fail(name + ": on_exit saw " + status_text(seen) + ", expected exited with code 3");
    if (!st) {
      p.kill();
      p.join_status(5s);
    }
  };
  check("program", [&] { return pkit::command{helper, "exit", "3"}; });
  check("callable", [] { return pkit::callable_target{[] { return 3; }}; });
  check("program again", [&] { return pkit::command{helper, "exit", "3"}; });

  ::sigaction(SIGCHLD, nullptr, &sa);
  say(std::string{"INFO: SIGCHLD disposition after pkit use: "} +
      (sa.sa_handler == SIG_IGN ? "SIG_IGN" : sa.sa_handler == SIG_DFL ? "SIG_DFL" : "a handler"));
  return failures == 0 ? exit_pass : exit_fail;
}

// ---------------------------------------------------------------------------
// S4: nproc
// ---------------------------------------------------------------------------

int mode_nproc() {
  if (::geteuid() == 0) {
    // Root (and CAP_SYS_RESOURCE / CAP_SYS_ADMIN) is exempt from RLIMIT_NPROC.
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)
      skip(std::string{"cannot drop to uid/gid 65534: "} + std::strerror(errno));
    ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);  // keep /proc/self readable for ourselves
  }

  // Warm up: the reaper thread and any lazy state exist before the limit bites.
  {
    pkit::process w{[] { return 0; }};
    w.start();
    if (w.join_status(10s) != pkit::exit_status::exited(0)) fail("warm-up callable did not exit 0");
    pkit::process c{pkit::command{"/bin/true"}};
    c.start();
    if (c.join_status(10s) != pkit::exit_status::exited(0)) fail("warm-up /bin/true did not exit 0");
  }

  rlimit old{};
  ::getrlimit(RLIMIT_NPROC, &old);
  rlimit none = old;
  none.rlim_cur = 0;  // any new task (process or thread) of this user now fails: EAGAIN
  if (::setrlimit(RLIMIT_NPROC, &none) != 0) skip(std::string{"setrlimit: "} + std::strerror(errno));

  // Is the limit enforced for us at all (no capability exempts us)?
  const pid_t raw = ::fork();
  if (raw == 0) ::_exit(0);
  if (raw > 0) {
    ::waitpid(raw, nullptr, 0);
    ::setrlimit(RLIMIT_NPROC, &old);
    skip("fork() still succeeds under RLIMIT_NPROC=0 (privileged?)");
  }

  const int fds_before = faults::open_fd_count();
  const auto children_before = faults::own_children();

  auto expect_eagain = [&](const std::string& name, pkit::process& p, bool wait) {
    std::error_code ec;
    const auto t0 = steady::now();
    const pid_t pid = wait ? p.start(pkit::wait, ec) : p.start(ec);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
    say("CASE " + name + " pid=" + std::to_string(pid) + " error=" + ec.message() + " stage=" +
        (p.last_failure() ? p.last_failure()->stage : std::string{"-"}) + " ms=" +
        std::to_string(ms.count()));
    if (!ec) {
      fail(name + ": start succeeded under RLIMIT_NPROC=0");
      p.kill();
      p.join_status(5s);
      return;
    }
    if (ec != std::errc::resource_unavailable_try_again)
      fail(name + ": error " + ec.message() + " (" + ec.category().name() + ":" +
           std::to_string(ec.value()) + "), expected EAGAIN");
    if (!p.last_failure()) fail(name + ": no last_failure() after a failed start");
    if (ms >= 1000ms) fail(name + ": the failure took " + std::to_string(ms.count()) + " ms (>= 1 s)");
    if (p.is_alive()) fail(name + ": is_alive() after a failed start");
    if (p.pid()) fail(name + ": pid() set after a failed start");
    // The throwing overload reports the same, typed.
    try {
      wait ? p.start(pkit::wait) : p.start();
      fail(name + ": throwing start() succeeded");
    } catch (const pkit::spawn_error& e) {
      if (e.code() != std::errc::resource_unavailable_try_again)
        fail(name + ": spawn_error " + e.what());
    } catch (const std::exception& e) {
      fail(name + ": start() threw something else than spawn_error: " + e.what());
    }
  };

  {
    pkit::process p{pkit::command{"/bin/true"}};
    expect_eagain("program", p, false);
  }
  {
    pkit::process p{pkit::command{"/bin/true"}};
    expect_eagain("program-wait", p, true);
  }
  {
    pkit::process p{[] { return 0; }};
    expect_eagain("callable", p, false);
  }
  {
    pkit::process p{[] { return 0; }};
    expect_eagain("callable-wait", p, true);
  }

  const int fds_after = faults::open_fd_count();
  if (fds_after != fds_before)
    fail("open fds: " + std::to_string(fds_before) + " before, " + std::to_string(fds_after) + " after");
  if (faults::own_children() != children_before) fail("children were left behind");

  // The limit lifted, the same program works again: nothing in pkit stayed broken.
  ::setrlimit(RLIMIT_NPROC, &old);
  {
    pkit::process p{[] { return 0; }};
    std::error_code ec;
    p.start(ec);
    if (ec) {
      fail("after restoring the limit: start failed: " + ec.message());
    } else if (p.join_status(10s) != pkit::exit_status::exited(0)) {
      fail("after restoring the limit: the child did not exit 0");
    }
  }
  return failures == 0 ? exit_pass : exit_fail;
}

// ---------------------------------------------------------------------------
// T2: pty-ctrl-c
// ---------------------------------------------------------------------------

volatile sig_atomic_t sigint_seen = 0;
int sigint_pipe = -1;
extern "C" void on_sigint(int) {
  sigint_seen = 1;
  const char c = 'i';
  [[maybe_unused]] ssize_t n = ::write(sigint_pipe, &c, 1);
}

// The session side: leads a new session on the pty slave (its group is the terminal's
// foreground group), catches SIGINT, starts pkit children, reports ready on `ready_fd`,
// waits for the ^C, and checks what it did to the children.
int pty_session(const char* slave, int ready_fd) {
  if (::setsid() < 0) return exit_fail;
  const int tty = ::open(slave, O_RDWR);
  if (tty < 0 || ::ioctl(tty, TIOCSCTTY, 0) != 0) {
    fail(std::string{"cannot take the pty as controlling terminal: "} + std::strerror(errno));
    return exit_fail;
  }
  ::dup2(tty, STDIN_FILENO);
  int sp[2];
  if (::pipe2(sp, O_CLOEXEC) != 0) return exit_fail;
  sigint_pipe = sp[1];
  struct sigaction sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  if (::tcgetpgrp(tty) != ::getpgrp()) fail("the probe is not the terminal's foreground group");

  std::atomic<int> exits{0};
  auto options = [&](bool own_group) {
    pkit::process_options o;
    o.new_process_group = own_group;
    o.on_exit = [&](pkit::process&) { exits.fetch_add(1); };
    return o;
  };
  const std::string helper = helper_path();
  pkit::process program{pkit::command{helper, "pause"}, options(true)};
  pkit::process callable{[] {
                           for (;;) ::pause();
                         },
                         options(true)};
  // The control: a child left in our group must get the ^C (else nothing was sent).
  pkit::process control{pkit::command{helper, "pause"}, options(false)};
  program.start(pkit::wait);
  callable.start(pkit::wait);
  control.start(pkit::wait);
  faults::write_all(ready_fd, "r");
  ::close(ready_fd);

  pollfd pfd{sp[0], POLLIN, 0};
  int ready = -1;
  do ready = ::poll(&pfd, 1, 10000);  // the handler itself interrupts the poll: EINTR
  while (ready < 0 && errno == EINTR);
  if (ready != 1 || sigint_seen == 0) fail("no SIGINT reached the probe within 10 s of the ^C");
  // The control shows the ^C went to the whole foreground group; its exit also orders us
  // after the kernel's delivery to that group.
  const auto control_st = control.join_status(10s);
  if (control_st != pkit::exit_status::killed(SIGINT))
    fail("control (same group): " + status_text(control_st) + ", expected killed by SIGINT");
  if (exits.load() != 1) fail(std::to_string(exits.load() - 1) + " pkit children exited after the ^C");
  // What ends them now is the stop's SIGTERM: had the ^C reached them, a pending or
  // delivered SIGINT would have ended them first.
  for (auto* p : {&program, &callable}) {
    if (!p->is_alive()) fail(p->name() + ": not alive after the ^C");
    const auto st = p->stop();
    say("CASE " + p->name() + " " + st.to_string());
    if (st != pkit::exit_status::killed(SIGTERM))
      fail(p->name() + ": ended " + st.to_string() + ", expected killed by SIGTERM (from the stop)");
  }
  return failures == 0 ? exit_pass : exit_fail;
}

int mode_pty_ctrl_c() {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0)
    skip(std::string{"no pty: "} + std::strerror(errno));
  const std::string slave = ::ptsname(master);
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return exit_fail;
  const pid_t session = ::fork();
  if (session == 0) {
    ::close(master);
    ::close(ready[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    ::_exit(pty_session(slave.c_str(), ready[1]));
  }
  ::close(ready[1]);
  char c;
  if (::read(ready[0], &c, 1) != 1) {
    fail("the session side did not get ready");
  } else if (::write(master, "\x03", 1) != 1) {  // ^C typed at the terminal
    fail(std::string{"write to the pty master: "} + std::strerror(errno));
  }
  int st = 0;
  while (::waitpid(session, &st, 0) < 0 && errno == EINTR) {
  }
  ::close(master);
  if (!WIFEXITED(st)) {
    fail("the session side died of signal " + std::to_string(WTERMSIG(st)));
    return exit_fail;
  }
  return failures == 0 ? WEXITSTATUS(st) : exit_fail;
}

// ---------------------------------------------------------------------------
// T4: daemon
// ---------------------------------------------------------------------------

// Checks that `p` (an echo child on pipes) answers a ping: a child with SIGKILL pending
// cannot return from its read(2), so an answer proves no parent-death signal reached it.
bool answers(pkit::process& p, int in, int out) {
  if (!faults::write_all(in, "?\n")) return false;
  pollfd pfd{out, POLLIN, 0};
  char buf[8];
  return ::poll(&pfd, 1, 10000) == 1 && ::read(out, buf, sizeof buf) > 0 && p.is_alive();
}

// The daemon: starts echo children (a program and a callable) on the main thread and from
// a short-lived thread that then ends; checks the latter survive its end; prints
// "PIDS p1 p2 p3 p4" and blocks — the test SIGKILLs it and watches the children die.
int mode_daemon() {
  const std::string helper = helper_path();
  auto echo_options = [] {
    pkit::process_options o;
    o.in = pkit::stdio::pipe();
    o.out = pkit::stdio::pipe();
    return o;
  };
  auto echo_callable = [] {
    char buf[256];
    for (;;) {
      const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EINTR)) break;  // the daemon died: only the parent-death signal may end us
      if (n > 0) faults::write_all(STDOUT_FILENO, std::string_view{buf, static_cast<std::size_t>(n)});
    }
    for (;;) ::pause();
  };
  std::vector<std::unique_ptr<pkit::process>> kids;
  kids.push_back(std::make_unique<pkit::process>(pkit::command{helper, "echo-then-pause"}, echo_options()));
  kids.push_back(std::make_unique<pkit::process>(echo_callable, echo_options()));
  kids.push_back(std::make_unique<pkit::process>(pkit::command{helper, "echo-then-pause"}, echo_options()));
  kids.push_back(std::make_unique<pkit::process>(echo_callable, echo_options()));
  kids[0]->start(pkit::wait);
  kids[1]->start(pkit::wait);
  pid_t tid = 0;
  std::thread short_lived([&] {
    tid = static_cast<pid_t>(::gettid());
    kids[2]->start(pkit::wait);
    kids[3]->start(pkit::wait);
  });
  short_lived.join();
  // pthread_join may return before the kernel finished the thread's exit (when a
  // parent-death signal is sent): wait until the task is gone (bounded).
  const std::string task = "/proc/self/task/" + std::to_string(tid);
  for (int i = 0; i < 100000 && ::access(task.c_str(), F_OK) == 0; ++i) std::this_thread::yield();
  if (::access(task.c_str(), F_OK) == 0) fail("the short-lived thread's task did not go away");
  std::string pids = "PIDS";
  for (std::size_t i = 0; i < kids.size(); ++i) {
    pkit::unique_fd in = kids[i]->take_stdin_pipe();
    pkit::unique_fd out = kids[i]->take_stdout_pipe();
    if (!answers(*kids[i], in.get(), out.get()))
      fail("child " + std::to_string(i) + (i >= 2 ? " (started from the short-lived thread)" : "") +
           " does not answer: killed?");
    pids += " " + std::to_string(*kids[i]->pid());
    (void)in.release();  // keep the children's stdin open: they must not end by EOF
    (void)out.release();
  }
  if (failures != 0) return exit_fail;
  say(pids);
  for (;;) ::pause();
}

// ---------------------------------------------------------------------------
// pid namespace scenarios
// ---------------------------------------------------------------------------

// Runs `scenario` as pid 1 of a new pid namespace and exits with its exit code.
[[noreturn]] void in_new_pid_namespace(int (*scenario)()) {
  if (::unshare(CLONE_NEWPID) != 0)
    skip(std::string{"unshare(CLONE_NEWPID): "} + std::strerror(errno));
  const pid_t init = ::fork();
  if (init < 0) {
    fail(std::string{"fork: "} + std::strerror(errno));
    ::_exit(exit_fail);
  }
  if (init == 0) {
    // If the probe is killed (a test's deadline), the namespace goes with it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    ::_exit(scenario());
  }
  int st = 0;
  while (::waitpid(init, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st)) say("FAIL: the namespace's init died of signal " + std::to_string(WTERMSIG(st)));
  // _exit, not return: once its init is gone no process can be created in the namespace,
  // and exit-time machinery that forks (LeakSanitizer's) would fail.
  ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : exit_fail);
}

long read_ns_last_pid() {
  std::ifstream f{"/proc/sys/kernel/ns_last_pid"};
  long v = -1;
  f >> v;
  return v;
}

bool write_ns_last_pid(long v) {
  const int fd = ::open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const std::string text = std::to_string(v);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// A sentinel with pid `want` (if the kernel gives it): leads its own process group, waits.
pid_t fork_sentinel(pid_t want) {
  if (!write_ns_last_pid(want - 1)) return -1;
  const pid_t s = ::fork();
  if (s == 0) {
    // Default dispositions, nothing blocked (we may be forked from pkit's reaper thread,
    // which blocks every signal), so the first fatal signal that arrives ends us.
    for (int sig : {SIGTERM, SIGINT, SIGUSR2, SIGHUP}) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::setpgid(0, 0);
    for (;;) ::pause();
  }
  if (s > 0) ::setpgid(s, s);
  return s;
}

// Ends the sentinel with SIGUSR2 and returns the signal it died of: SIGUSR2 unless a fatal
// signal had reached it before (the kernel fixes a group's exit signal when the first
// fatal signal is sent, so a later one cannot mask an earlier one).
int finish_sentinel(pid_t s) {
  ::kill(s, SIGUSR2);
  int st = 0;
  while (::waitpid(s, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFSIGNALED(st) ? WTERMSIG(st) : -1;
}

void poke_stale_handle(const std::string& name, pkit::process& p) {
  std::error_code ec;
  p.terminate(ec);
  if (ec) fail(name + ": terminate() after the exit: " + ec.message());
  p.signal(SIGKILL, ec);
  if (ec) fail(name + ": signal(SIGKILL) after the exit: " + ec.message());
  p.signal(SIGINT, ec);
  if (ec) fail(name + ": signal(SIGINT) after the exit: " + ec.message());
  p.kill(ec);
  if (ec) fail(name + ": kill() after the exit: " + ec.message());
}

int pid_reuse_scenario() {
  // pid 1 of a fresh namespace; still single-threaded, so the fork server may start.
  pkit::fork_server::registry targets;
  targets.add("zero", [](const std::vector<std::string>&) { return 0; });
  auto server = pkit::fork_server::start(std::move(targets));

  if (!write_ns_last_pid(read_ns_last_pid()))
    skip(std::string{"cannot write /proc/sys/kernel/ns_last_pid: "} + std::strerror(errno));

  const std::string helper = helper_path();
  int reused = 0;
  for (int kind = 0; kind < 3; ++kind) {
    const char* name = kind == 0 ? "program" : kind == 1 ? "callable" : "fork-server";
    bool done = false;
    for (int attempt = 0; attempt < 5 && !done; ++attempt) {
      std::optional<pkit::process> p;
      if (kind == 0) p.emplace(pkit::command{helper, "exit", "0"});
      if (kind == 1) p.emplace([] { return 0; });
      if (kind == 2) p.emplace(server.target("zero"));
      const pid_t old = p->start();
      if (p->join_status(10s) != pkit::exit_status::exited(0)) {
        fail(std::string{name} + ": the child did not exit 0");
        break;
      }
      const pid_t s = fork_sentinel(old);
      if (s < 0) {
        fail(std::string{name} + ": cannot fork the sentinel");
        break;
      }
      if (s != old) {
        finish_sentinel(s);
        continue;
      }
      done = true;
      ++reused;
      poke_stale_handle(name, *p);
      const auto st = p->stop();  // not running: returns the last status, signals nothing
      if (st != pkit::exit_status::exited(0))
        fail(std::string{name} + ": stop() after the exit returned " + st.to_string());
      const int sig = finish_sentinel(s);
      say(std::string{"CASE "} + name + " pid " + std::to_string(old) +
          " reused; sentinel ended by signal " + std::to_string(sig));
      if (sig != SIGUSR2)
        fail(std::string{name} + ": the sentinel that reused pid " + std::to_string(old) +
             " got signal " + std::to_string(sig) + " (" + sigabbrev_np(sig) +
             ") from the stale handle");
    }
  }

  // From inside on_exit: the run has been reaped (its pid is free) while pid() still
  // names it. Signals sent from the callback must not reach the pid's next owner.
  {
    std::mutex m;
    pid_t sentinel = -1, old = -1;
    bool poked = false;
    pkit::process_options o;
    o.on_exit = [&](pkit::process& self) {
      std::lock_guard<std::mutex> lock(m);
      if (!self.pid()) return;
      old = *self.pid();
      sentinel = fork_sentinel(old);
      if (sentinel == old) {
        poke_stale_handle("on_exit", self);
        poked = true;
      }
    };
    for (int attempt = 0; attempt < 5; ++attempt) {
      pkit::process p{pkit::command{helper, "exit", "0"}, o};
      p.start();
      const auto st = p.join_status(10s);
      std::lock_guard<std::mutex> lock(m);
      if (st != pkit::exit_status::exited(0)) fail("on_exit: the child did not exit 0");
      if (sentinel <= 0) {
        fail("on_exit: no sentinel was forked (pid() empty in on_exit?)");
        break;
      }
      const int sig = finish_sentinel(sentinel);
      if (!poked) continue;
      ++reused;
      say("CASE on_exit pid " + std::to_string(old) + " reused; sentinel ended by signal " +
          std::to_string(sig));
      if (sig != SIGUSR2)
        fail("on_exit: the sentinel that reused pid " + std::to_string(old) + " got signal " +
             std::to_string(sig) + " from the stale handle");
      break;
    }
  }
  if (reused == 0 && failures == 0) skip("could not force pid reuse through ns_last_pid");
  if (reused < 4 && failures == 0) say("INFO: pid reuse forced in only " + std::to_string(reused) + " of 4 cases");
  return failures == 0 ? exit_pass : exit_fail;
}

// R6, the group case: a leader stopped with kill_group is reaped before its on_exit runs;
// from on_exit a sentinel takes the old pid, so it leads a group whose id is the old pgid.
// Nothing the stop sends after the reap (a kill(-pgid) after the join, a late SIGKILL
// escalation) may reach the sentinel. Both a leader that dies of SIGTERM and one that
// ignores it (the SIGKILL escalation path), as a program and as a callable.
int group_reuse_scenario() {
  if (!write_ns_last_pid(read_ns_last_pid()))
    skip(std::string{"cannot write /proc/sys/kernel/ns_last_pid: "} + std::strerror(errno));
  const std::string helper = helper_path();
  int reused = 0;
  for (int kind = 0; kind < 4; ++kind) {
    const bool program = kind % 2 == 0;
    const bool ignores_term = kind >= 2;
    const std::string name = std::string{program ? "program" : "callable"} +
                             (ignores_term ? ", TERM ignored" : ", dies of TERM");
    for (int attempt = 0; attempt < 5; ++attempt) {
      std::mutex m;
      pid_t sentinel = -1, old = -1;
      pkit::process_options o;
      o.stop = pkit::stop_policy{SIGTERM, 300ms, true};
      o.out = pkit::stdio::pipe();
      o.on_exit = [&](pkit::process& self) {
        std::lock_guard<std::mutex> lock(m);
        if (!self.pid()) return;
        old = *self.pid();
        sentinel = fork_sentinel(old);  // pid == old pgid, leads its own group
      };
      std::optional<pkit::process> p;
      if (program) {
        if (ignores_term) p.emplace(pkit::command{helper, "ignore-term"}, o);  // prints "ready"
        else p.emplace(pkit::command{helper, "pause"}, o);
      } else {
        p.emplace(
            [ignores_term] {
              if (ignores_term) ::signal(SIGTERM, SIG_IGN);
              faults::write_all(STDOUT_FILENO, "ready\n");
              for (;;) ::pause();
            },
            o);
      }
      p->start();
      pkit::unique_fd out = p->take_stdout_pipe();
      if (ignores_term || !program) {
        char c = 0;  // "ready": the TERM disposition is set
        while (::read(out.get(), &c, 1) == 1 && c != '\n') {
        }
      }
      const auto st = p->stop();
      const auto want = ignores_term ? pkit::exit_status::killed(SIGKILL) : pkit::exit_status::killed(SIGTERM);
      std::lock_guard<std::mutex> lock(m);
      if (st != want) fail(name + ": stop() returned " + st.to_string() + ", expected " + want.to_string());
      if (sentinel <= 0) {
        fail(name + ": no sentinel was forked");
        break;
      }
      // Whatever the stop's machinery still had scheduled for this run has had its turn
      // once a later run of the same reaper has been reported (the reaper serialises them).
      {
        pkit::process later{pkit::command{helper, "exit", "0"}};
        later.start();
        later.join_status(10s);
      }
      const int sig = finish_sentinel(sentinel);
      if (sentinel != old) continue;
      ++reused;
      say("CASE group " + name + ": pgid " + std::to_string(old) + " reused; sentinel ended by signal " +
          std::to_string(sig));
      if (sig != SIGUSR2)
        fail("group " + name + ": the sentinel leading group " + std::to_string(old) + " got signal " +
             std::to_string(sig) + " (" + sigabbrev_np(sig) + ") from the stop");
      break;
    }
  }
  if (reused == 0 && failures == 0) skip("could not force pid reuse through ns_last_pid");
  return failures == 0 ? exit_pass : exit_fail;
}

int no_fork_scenario() {
  if (read_ns_last_pid() < 0) skip("cannot read /proc/sys/kernel/ns_last_pid");
  // Warm up: the reaper and any lazy state exist before we watch the pid counter.
  {
    pkit::process c{pkit::command{"/bin/true"}};
    c.start();
    c.join_status(10s);
    pkit::process f{[] { return 0; }};
    f.start();
    f.join_status(10s);
  }

  struct bad {
    std::string name;
    pkit::command cmd;
    std::error_code want;
  };
  std::vector<bad> cases;
  const std::error_code e2big = std::make_error_code(std::errc::argument_list_too_long);
  const std::error_code inval = pkit::errc::invalid_argument;
  {
    pkit::command c{"/bin/true"};
    c.env.push_back("BIG=" + std::string(200 * 1024, 'v'));
    cases.push_back({"200 KiB variable", c, e2big});
  }
  {
    pkit::command c{"/bin/true", std::string(200 * 1024, 'a')};
    cases.push_back({"200 KiB argument", c, e2big});
  }
  {
    pkit::command c{"/bin/true"};
    for (int i = 0; i < 32; ++i) c.env.push_back("V" + std::to_string(i) + "=" + std::string(100 * 1024, 'e'));
    cases.push_back({"3 MiB environment", c, e2big});
  }
  {
    pkit::command c{"/bin/true"};
    c.argv.insert(c.argv.end(), 100000, std::string(40, 'x'));
    cases.push_back({"100,000 arguments", c, e2big});
  }
  cases.push_back({"NUL in argv", pkit::command{"/bin/true", std::string("a\0b", 3)}, inval});
  {
    pkit::command c{"/bin/true"};
    c.env.push_back(std::string("V=a\0b", 5));
    cases.push_back({"NUL in env", c, inval});
  }
  cases.push_back({"empty argv", pkit::command{}, inval});

  for (auto& b : cases) {
    const long before = read_ns_last_pid();
    pkit::process p{b.cmd};
    std::error_code ec;
    p.start(ec);
    const long after = read_ns_last_pid();
    say("CASE " + b.name + ": " + ec.message() + "; ns_last_pid " + std::to_string(before) +
        " -> " + std::to_string(after));
    if (ec != b.want) fail(b.name + ": got '" + ec.message() + "', expected '" + b.want.message() + "'");
    if (after != before)
      fail(b.name + ": a task was created (ns_last_pid " + std::to_string(before) + " -> " +
           std::to_string(after) + ")");
    if (!ec) {
      p.kill();
      p.join_status(5s);
    }
  }
  // Positive control: a valid start does move the counter, so the check above can see one.
  {
    const long before = read_ns_last_pid();
    pkit::process p{pkit::command{"/bin/true"}};
    p.start();
    p.join_status(10s);
    if (read_ns_last_pid() == before) fail("control: a real spawn did not move ns_last_pid");
  }
  return failures == 0 ? exit_pass : exit_fail;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "stdio-once") return mode_stdio_once();
  if (mode == "sigchld-ignored") return mode_sigchld_ignored(argv[0]);
  if (mode == "sigchld-ignored-child") return mode_sigchld_ignored_child();
  if (mode == "nproc") return mode_nproc();
  if (mode == "pid-reuse") in_new_pid_namespace(pid_reuse_scenario);
  if (mode == "no-fork-on-invalid") in_new_pid_namespace(no_fork_scenario);
  if (mode == "daemon") return mode_daemon();
  if (mode == "pty-ctrl-c") return mode_pty_ctrl_c();
  if (mode == "group-reuse") in_new_pid_namespace(group_reuse_scenario);
  say("usage: pkit_fault_probe stdio-once|sigchld-ignored|nproc|pid-reuse|no-fork-on-invalid|group-reuse|pty-ctrl-c|daemon");
  return exit_usage;
}
