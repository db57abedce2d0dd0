// Fault tests for descriptors (FAULTS.md: F1, F2). A child gets only the descriptors it
// is given: 0, 1, 2 and its pass_fds, whatever other threads open meanwhile, whatever the
// fd numbers and RLIMIT_NOFILE are.

#define BOOST_TEST_MODULE pkit fault tests: descriptors
#include "fault_fork_server.hpp"

#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include <sys/resource.h>
#include <sys/wait.h>

using namespace faults;
using pkit::exit_status;

namespace {

int print_fds() { return write_all(STDOUT_FILENO, list_own_fds() + "\n") ? 0 : 3; }

// The fork server of this program, started by the global fixture before any thread. It
// holds descriptors of its own (its sockets), which its children must not see either.
pkit::fork_server start_server() {
  pkit::fork_server::registry targets;
  targets.add("fds", [](const std::vector<std::string>&) { return print_fds(); });
  targets.add("pause", [](const std::vector<std::string>&) {
    for (;;) ::pause();
    return 0;
  });
  return pkit::fork_server::start(std::move(targets));
}

using server_fixture = fork_server_fixture<start_server>;
BOOST_TEST_GLOBAL_FIXTURE(server_fixture);

enum class kind { program, callable, server_child };
const char* kind_name(kind k) {
  return k == kind::program ? "program" : k == kind::callable ? "callable" : "fork-server child";
}

// Starts a child of kind `k` that prints its open descriptors, with stdin and stderr on
// /dev/null, stdout a pipe, and `pass`; returns what it printed (without the newline).
std::string fds_seen_by(kind k, std::vector<std::pair<int, int>> pass = {}) {
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::pipe();
  o.err = pkit::stdio::null();
  o.pass_fds = std::move(pass);
  std::unique_ptr<pkit::process> p;
  switch (k) {
    case kind::program: p = std::make_unique<pkit::process>(helper_cmd({"fds"}), std::move(o)); break;
    case kind::callable: p = std::make_unique<pkit::process>(print_fds, std::move(o)); break;
    case kind::server_child: p = std::make_unique<pkit::process>(server().target("fds"), std::move(o)); break;
  }
  std::error_code ec;
  p->start(ec);
  if (ec) return "start failed: " + ec.message();
  pkit::unique_fd out = p->take_stdout_pipe();
  std::vector<std::string> text;
  const bool eof = drain({out.get()}, text, steady::now() + 10s);
  auto st = p->join_status(10s);
  if (!st) {
    p->kill();
    p->join_status(5s);
  }
  if (!eof) return "no EOF on stdout within 10 s (a child holds it?)";
  if (st != exit_status::exited(0)) return "child " + describe(st);
  std::string s = text[0];
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// The descriptors this program was started with (static initialisation runs before the
// global fixture starts the fork server, and before any pkit object exists): not pkit's.
const std::vector<int> inherited_fds = own_fds();

// pkit's descriptors in this process that a foreign spawn would inherit (no FD_CLOEXEC):
// "fd -> target" each; empty when there is none.
std::string inheritable_pkit_fds() {
  std::string found;
  for (int fd : own_fds()) {
    if (std::find(inherited_fds.begin(), inherited_fds.end(), fd) != inherited_fds.end()) continue;
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || (flags & FD_CLOEXEC) != 0) continue;  // closed meanwhile, or fine
    char target[256] = {};
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    (void)::readlink(link.c_str(), target, sizeof target - 1);
    found += " " + std::to_string(fd) + " -> " + target;
  }
  return found;
}

// Sets RLIMIT_NOFILE for the scope.
class nofile_guard {
public:
  nofile_guard() { ::getrlimit(RLIMIT_NOFILE, &saved_); }
  ~nofile_guard() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  nofile_guard(const nofile_guard&) = delete;
  nofile_guard& operator=(const nofile_guard&) = delete;
  const rlimit& saved() const { return saved_; }

private:
  rlimit saved_{};
};

}  // namespace

BOOST_AUTO_TEST_SUITE(fd_faults)

// F1. Another thread keeps creating inheritable descriptors (pipe() without O_CLOEXEC)
// while children are started: each child sees only 0, 1, 2 and what it was passed. (A
// forked callable inherits even the parent's close-on-exec descriptors, since it never
// execs.)
BOOST_AUTO_TEST_CASE(children_see_only_their_streams_while_another_thread_opens_inheritable_fds) {
  watchdog dog{"F1", 120s};
  std::atomic<long> opened{0};
  std::jthread opener([&opened](std::stop_token stop) {
    std::deque<int> held;
    while (!stop.stop_requested()) {
      int p[2];
      if (::pipe(p) == 0) {  // deliberately without O_CLOEXEC
        held.push_back(p[0]);
        held.push_back(p[1]);
        opened.fetch_add(2);
      }
      while (held.size() > 64) {
        ::close(held.front());
        held.pop_front();
      }
    }
    for (int fd : held) ::close(fd);
  });

  pkit::unique_fd passed{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
  BOOST_TEST_REQUIRE(passed.get() >= 0);
  int wrong = 0, total = 0;
  std::string first;
  for (int i = 0; i < 600 && wrong < 5; ++i) {
    const kind k = static_cast<kind>(i % 3);
    const bool with_pass = i % 4 == 0;
    const std::string want = with_pass ? "0 1 2 7" : "0 1 2";
    const std::string seen =
        with_pass ? fds_seen_by(k, {{7, passed.get()}}) : fds_seen_by(k);
    ++total;
    if (seen != want && wrong++ == 0)
      first = std::string{kind_name(k)} + " saw '" + seen + "', expected '" + want + "'";
  }
  opener.request_stop();
  opener.join();
  BOOST_TEST(opened.load() > 0, "the opener thread never ran");
  BOOST_TEST(wrong == 0, wrong << " of " << total << " children saw foreign descriptors; first: " << first);
}

// F1, the parent's side. Every descriptor pkit keeps in this process — the parent ends of
// stdio pipes, notify pipes and sockets, pidfds, status pipes, the reaper's epoll and
// timers, the fork server's socket — is close-on-exec: otherwise a child spawned by other
// code of the program (or by a library) inherits it, and a stdin write end held there
// means pkit's child never sees EOF; a held pidfd or socket keeps resources alive.
BOOST_AUTO_TEST_CASE(every_descriptor_pkit_holds_in_the_parent_is_close_on_exec) {
  watchdog dog{"F1 parent side", 60s};
  const std::string before = inheritable_pkit_fds();
  BOOST_TEST_REQUIRE(before.empty(), "not pkit's, yet new since static initialisation:" << before);
  auto piped = [] {
    pkit::process_options o;
    o.in = pkit::stdio::pipe();
    o.out = pkit::stdio::pipe();
    o.err = pkit::stdio::pipe();
    o.stop = pkit::stop_policy{SIGKILL, 0ms, true};
    return o;
  };
  std::vector<std::unique_ptr<pkit::process>> running;
  {
    auto o = piped();
    o.notify_fd = 3;
    o.on_ready = [](pkit::process&, std::error_code) {};  // the reaper watches the notify pipe
    running.push_back(std::make_unique<pkit::process>(helper_cmd({"pause"}), std::move(o)));
  }
  {
    auto o = piped();
    o.notify_socket = true;
    o.on_ready = [](pkit::process&, std::error_code) {};  // ... the socket and a pidfd copy
    running.push_back(std::make_unique<pkit::process>(helper_cmd({"pause"}), std::move(o)));
  }
  running.push_back(std::make_unique<pkit::process>(
      [] {
        for (;;) ::pause();
        return 0;
      },
      piped()));
  running.push_back(std::make_unique<pkit::process>(server().target("pause"), piped()));
  for (auto& p : running) {
    std::error_code ec;
    p->start(ec);
    BOOST_TEST_REQUIRE(!ec, ec.message());
  }
  // A stop under way holds a deadline timer of its own.
  auto obstinate = piped();
  obstinate.stop = pkit::stop_policy{SIGTERM, 60s, true};
  pkit::process stopping{helper_cmd({"ignore-term"}), std::move(obstinate)};
  stopping.start();
  {
    const pkit::unique_fd out = stopping.take_stdout_pipe();
    std::string line;
    char c;
    while (line.find('\n') == std::string::npos && ::read(out.get(), &c, 1) == 1) line += c;
    BOOST_TEST_REQUIRE(line == "ready\n", "the obstinate child did not start: " << line);
  }
  stopping.stop_async();
  const std::string running_fds = inheritable_pkit_fds();
  BOOST_TEST(running_fds.empty(), "inheritable while children run:" << running_fds);
  for (auto& p : running) {
    p->kill();
    (void)p->join_status(10s);
  }
  stopping.kill();
  (void)stopping.join_status(10s);
  running.clear();
  const std::string after = inheritable_pkit_fds();
  BOOST_TEST(after.empty(), "inheritable after the children ended:" << after);
}

// F2. With RLIMIT_NOFILE lowered below the descriptors actually open (fds 500-540), a
// close loop bounded by the limit misses them; the child must see none of them.
BOOST_AUTO_TEST_CASE(fds_above_a_lowered_rlimit_nofile_do_not_survive_into_the_child) {
  watchdog dog{"F2 low", 60s};
  pkit::unique_fd null_fd{::open("/dev/null", O_RDWR | O_CLOEXEC)};
  BOOST_TEST_REQUIRE(null_fd.get() >= 0);
  std::vector<pkit::unique_fd> high;
  for (int fd = 500; fd <= 540; ++fd) {
    // Half inheritable, half close-on-exec (a forked callable inherits both kinds).
    const int got = ::dup3(null_fd.get(), fd, fd % 2 == 0 ? 0 : O_CLOEXEC);
    BOOST_TEST_REQUIRE(got == fd, "cannot open fd " << fd << ": " << std::strerror(errno));
    high.emplace_back(got);
  }
  nofile_guard guard;
  rlimit low = guard.saved();
  low.rlim_cur = 256;
  BOOST_TEST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);

  for (kind k : {kind::program, kind::callable}) {
    for (int round = 0; round < 10; ++round) {
      const std::string seen = fds_seen_by(k);
      BOOST_TEST(seen == "0 1 2", kind_name(k) << " with RLIMIT_NOFILE 256 and fds 500-540 open saw '" << seen << "'");
    }
  }
  // A passed descriptor above the limit still arrives, at its requested number.
  const std::string seen = fds_seen_by(kind::program, {{3, 520}});
  BOOST_TEST(seen == "0 1 2 3", "program passed fd 520 as 3 saw '" << seen << "'");
}

// F2, the other half: with a huge RLIMIT_NOFILE (1048576 where allowed) a close loop up to
// the limit makes every spawn slow; spawning must keep working (timing is reported, not
// asserted, as CI machines vary too much).
BOOST_AUTO_TEST_CASE(spawning_under_a_huge_rlimit_nofile_still_gives_children_only_their_streams) {
  watchdog dog{"F2 high", 120s};
  nofile_guard guard;
  rlimit huge{1048576, 1048576};
  if (::setrlimit(RLIMIT_NOFILE, &huge) != 0) {
    huge.rlim_max = guard.saved().rlim_max;
    huge.rlim_cur = huge.rlim_max;
    BOOST_TEST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &huge) == 0);
    BOOST_TEST_MESSAGE("F2: cannot raise RLIMIT_NOFILE to 1048576 (no CAP_SYS_RESOURCE); using the hard limit "
                       << huge.rlim_cur);
  }
  // An inheritable descriptor near the top of the range.
  pkit::unique_fd null_fd{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
  BOOST_TEST_REQUIRE(null_fd.get() >= 0);
  pkit::unique_fd top{::dup2(null_fd.get(), static_cast<int>(huge.rlim_cur) - 10)};
  BOOST_TEST_REQUIRE(top.get() >= 0, "dup2: " << std::strerror(errno));

  for (kind k : {kind::program, kind::callable}) {
    const auto t0 = steady::now();
    constexpr int n = 100;
    int wrong = 0;
    std::string first;
    for (int i = 0; i < n; ++i) {
      const std::string seen = fds_seen_by(k);
      if (seen != "0 1 2" && wrong++ == 0) first = seen;
    }
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0).count() / n;
    BOOST_TEST(wrong == 0, kind_name(k) << ": " << wrong << " children saw foreign descriptors; first: '" << first << "'");
    BOOST_TEST_MESSAGE("F2: RLIMIT_NOFILE " << huge.rlim_cur << ", fd " << top.get() << " open: " << kind_name(k)
                                            << " start-to-exit " << us << " us on average");
  }
}

// F3. A supervisor that does not drain its children's pipes blocks them; one that takes
// pipe EOF for the exit waits for every process holding the pipe. The helper writes
// 10 MiB to stdout and to stderr and exits, after forking a grandchild (its own group
// member, paused) that keeps stdout open. The exit is reported while the grandchild still
// holds stdout: join returns exited(0), and then the drained stdout is provably not at EOF
// (poll sees neither data nor hang-up) while the grandchild lives; it gets EOF only once
// the grandchild is killed.
BOOST_AUTO_TEST_CASE(ten_mebibytes_on_each_stream_drain_and_a_grandchild_holding_stdout_does_not_delay_the_exit) {
  watchdog dog{"F3", 90s};
  constexpr std::size_t bytes = 10u << 20;
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::pipe();
  o.err = pkit::stdio::pipe();
  pkit::process p{helper_cmd({"spew-hold", std::to_string(bytes)}), std::move(o)};
  const auto t0 = steady::now();
  p.start();
  pkit::unique_fd out = p.take_stdout_pipe();
  pkit::unique_fd err = p.take_stderr_pipe();

  // Drains both streams on a thread of its own while this one joins: stdout until 10 MiB
  // arrived (the grandchild keeps it from reaching EOF), stderr until EOF.
  std::size_t out_bytes = 0;
  std::string err_text;
  bool drained = false;
  std::jthread reader([&] {
    const auto deadline = steady::now() + 60s;
    bool err_open = true;
    while ((err_open || out_bytes < bytes) && steady::now() < deadline) {
      pollfd fds[2] = {{out.get(), POLLIN, 0}, {err.get(), static_cast<short>(err_open ? POLLIN : 0), 0}};
      if (::poll(fds, 2, 1000) <= 0) continue;
      char buf[65536];
      if (fds[0].revents != 0 && out_bytes < bytes) {
        const ssize_t n = ::read(out.get(), buf, sizeof buf);
        if (n > 0) out_bytes += static_cast<std::size_t>(n);
      }
      if (err_open && fds[1].revents != 0) {
        const ssize_t n = ::read(err.get(), buf, sizeof buf);
        if (n == 0) err_open = false;
        if (n > 0) err_text.append(buf, static_cast<std::size_t>(n));
      }
    }
    drained = !err_open && out_bytes == bytes;
  });
  const auto st = p.join_status(60s);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
  reader.join();
  if (!st) {
    p.kill();
    p.join_status(5s);
  }
  BOOST_TEST(st == exit_status::exited(0), describe(st));
  BOOST_TEST(drained, "stdout gave " << out_bytes << " bytes, stderr " << err_text.size() << " (want "
                                     << bytes << " each, stderr to EOF)");
  const std::string holder_line = err_text.substr(0, err_text.find('\n'));
  BOOST_TEST_REQUIRE(holder_line.starts_with("holder "), "no holder line on stderr");
  const pid_t holder = std::stoi(holder_line.substr(7));
  BOOST_TEST(err_text.size() == bytes + holder_line.size() + 1);

  // The exit has been reported: the grandchild still holds stdout, so nothing — no data,
  // no EOF — is readable on it. Exact, not a window: a paused process cannot close it.
  BOOST_TEST(proc_state(holder) == 'S', "the grandchild " << holder << " is not sleeping");
  pollfd still{out.get(), POLLIN, 0};
  BOOST_TEST(::poll(&still, 1, 0) == 0, "stdout is readable (or at EOF) while the grandchild holds it");
  BOOST_TEST_MESSAGE("F3: 2 x 10 MiB drained and exit reported in " << ms << " ms");

  BOOST_TEST_REQUIRE(::kill(holder, SIGKILL) == 0);
  std::vector<std::string> rest;
  BOOST_TEST(drain({out.get()}, rest, steady::now() + 10s), "no EOF on stdout after the grandchild died");
  siginfo_t si{};
  ::waitid(P_PID, static_cast<id_t>(holder), &si, WEXITED | WNOHANG);  // only if it was ours
}

BOOST_AUTO_TEST_SUITE_END()
