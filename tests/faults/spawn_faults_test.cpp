// Fault tests for spawning (FAULTS.md: S1, S2, S3, S4, B2). Each case provokes one way
// real process libraries have failed and fails on the naive implementation.

#define BOOST_TEST_MODULE pkit fault tests: spawn
#include "fault_fork_server.hpp"

#include <pkit/errc.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>

#include <atomic>
#include <cstdio>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

using namespace faults;
using pkit::exit_status;

namespace {

// A logger guarded by a mutex, like any application's: the lock a child must never
// inherit in the locked state.
class logger {
public:
  void log(std::string_view line) {
    std::lock_guard<std::mutex> lock(m_);
    append(line);
  }
  // Holds the lock for `hold` (a long formatting job, say), widening the window in which
  // another thread's fork would copy it locked.
  void log_holding(std::string_view line, std::chrono::microseconds hold) {
    std::lock_guard<std::mutex> lock(m_);
    append(line);
    const auto until = steady::now() + hold;
    while (steady::now() < until) {
    }
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(m_);
    return total_;
  }

private:
  void append(std::string_view line) {
    buffer_.append(line);
    buffer_ += '\n';
    total_ += line.size() + 1;
    if (buffer_.size() > (1u << 16)) buffer_.clear();
  }
  std::mutex m_;
  std::string buffer_;
  std::size_t total_ = 0;
};

logger the_log;

// A child's work in S1: log, allocate, write to std::cout (its stdout is /dev/null).
int log_and_allocate(const std::string& tag) {
  the_log.log("child " + tag + " starts");
  std::vector<std::unique_ptr<std::string>> junk;
  for (int i = 0; i < 64; ++i) junk.push_back(std::make_unique<std::string>(256, 'c'));
  std::cout << "child " << tag << " allocated " << junk.size() << std::endl;
  the_log.log("child " + tag + " ends");
  return 0;
}

// The fork server of this test program. It must be forked before any thread exists, so
// it is started by the global fixture, before the first test case runs.
pkit::fork_server start_server() {
  pkit::fork_server::registry targets;
  targets.add("log-and-allocate",
              [](const std::vector<std::string>& args) { return log_and_allocate(args.at(0)); });
  targets.add("return", [](const std::vector<std::string>& a) { return std::stoi(a.at(0)); });
  targets.add("throw", [](const std::vector<std::string>&) -> int {
    throw std::runtime_error("server-target-threw");
  });
  targets.add("exit-child", [](const std::vector<std::string>& a) -> int {
    pkit::exit_child(std::stoi(a.at(0)));
  });
  return pkit::fork_server::start(std::move(targets));
}

using server_fixture = fork_server_fixture<start_server>;
BOOST_TEST_GLOBAL_FIXTURE(server_fixture);

// Starts `p` through one of its three start APIs — 0: start(ec), 1: start(wait, ec),
// 2: the throwing start() — and returns the failure's stage ("" on success); `ec` gets the
// error either way.
std::string start_through(int api, pkit::process& p, std::error_code& ec) {
  std::string stage;
  if (api == 0) p.start(ec);
  if (api == 1) p.start(pkit::wait, ec);
  if (api == 2) {
    try {
      p.start();
    } catch (const pkit::spawn_error& e) {
      ec = e.code();
      stage = e.failure().stage;
    }
  }
  if (stage.empty() && p.last_failure()) stage = p.last_failure()->stage;
  return stage;
}

// A started child and when it was started.
struct in_flight {
  std::unique_ptr<pkit::process> p;
  steady::time_point started;
  int index = 0;
};

// Children of `n` starts (made by `make(i)`), at most `window` running at once, each of
// which must exit 0 within `limit` of its start. With `wait_odd`, every odd start is
// start(wait), bounded by the options' ready_timeout. Stops at the first hang (a
// deadlocked child would otherwise cost `limit` for each of the rest).
struct batch_result {
  int started = 0, start_failures = 0, hung = 0, wrong = 0;
  std::string first_problem;
};

batch_result run_batch(int n, std::size_t window, std::chrono::milliseconds limit,
                       const std::function<std::unique_ptr<pkit::process>(int)>& make,
                       bool wait_odd = false) {
  batch_result r;
  std::deque<in_flight> flying;
  auto collect = [&](in_flight& f) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(f.started + limit - steady::now());
    auto st = f.p->join_status(std::max(left, std::chrono::milliseconds{1}));
    if (!st) {
      ++r.hung;
      if (r.first_problem.empty())
        r.first_problem = "child #" + std::to_string(f.index) + " (pid " +
                          std::to_string(f.p->pid().value_or(-1)) + ") did not exit within " +
                          std::to_string(limit.count()) + " ms of its start";
      f.p->kill();
      f.p->join_status(5s);
    } else if (!st->success()) {
      ++r.wrong;
      if (r.first_problem.empty())
        r.first_problem = "child #" + std::to_string(f.index) + " " + st->to_string();
    }
  };
  for (int i = 0; i < n && r.hung == 0; ++i) {
    auto p = make(i);
    std::error_code ec;
    const auto t0 = steady::now();
    if (wait_odd && i % 2 == 1) {
      p->start(pkit::wait, ec);
    } else {
      p->start(ec);
    }
    if (ec) {
      ++r.start_failures;
      if (r.first_problem.empty())
        r.first_problem = "start #" + std::to_string(i) + ": " +
                          (p->last_failure() ? p->last_failure()->to_string() : ec.message());
      continue;
    }
    ++r.started;
    flying.push_back({std::move(p), t0, i});
    if (flying.size() >= window) {
      collect(flying.front());
      flying.pop_front();
    }
  }
  for (auto& f : flying) {
    if (r.hung == 0) {
      collect(f);
    } else {  // one hang is enough: do not wait `limit` for each of the rest
      f.p->kill();
      f.p->join_status(5s);
    }
  }
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(spawn_faults)

// S1. A callable forked from a multithreaded parent can inherit a lock (logger,
// allocator, stdio) that another thread held at fork time, and hang forever. Children of
// the fork server are forked from a process that never has threads, so none ever hangs.
BOOST_AUTO_TEST_CASE(fork_server_children_never_hang_on_locks_held_by_busy_parent_threads) {
  watchdog dog{"S1 fork server", 120s};
  auto& srv = server();

  std::atomic<long> rounds{0};
  std::vector<std::jthread> hammers;  // stopped and joined on every way out
  for (int t = 0; t < 8; ++t) {
    hammers.emplace_back([&rounds, t](std::stop_token stop) {
      // Lowest priority: the hammers take every idle cycle (and get preempted while
      // holding their locks, which is the point) without starving the spawning thread.
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
      const std::string tag = "hammer " + std::to_string(t);
      while (!stop.stop_requested()) {
        std::vector<std::unique_ptr<char[]>> blocks;
        for (std::size_t k = 1; k <= 16; ++k) blocks.push_back(std::make_unique<char[]>(k * 1000));
        the_log.log(tag);
        std::cout << std::flush;  // takes stdout's lock
        std::fflush(stdout);
        rounds.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::null();
  o.ready_timeout = 5s;  // the start deadline of the start(wait) half
  auto r = run_batch(
      2000, 32, 5s,
      [&](int i) {
        return std::make_unique<pkit::process>(srv.target("log-and-allocate", {std::to_string(i)}), o);
      },
      true);

  hammers.clear();

  BOOST_TEST(rounds.load() > 0, "the hammer threads never ran");
  BOOST_TEST(r.start_failures == 0, r.start_failures << " starts failed; first: " << r.first_problem);
  BOOST_TEST(r.hung == 0, "a child hung: " << r.first_problem);
  BOOST_TEST(r.wrong == 0, r.wrong << " children did not exit 0; first: " << r.first_problem);
  if (r.hung == 0) BOOST_TEST(r.started == 2000);
}

// S1 and L1 together. pkit once kept on_exit callbacks from running during a fork of the
// fork start method, by holding a lock around both — the lock a callback waiting for the
// caller's own mutex then deadlocked (FAULTS L1). Callbacks now run under no pkit lock,
// like any thread of the application's, so a callable that needs the application's
// locks belongs in a fork server: here every on_exit callback holds the application's
// logger lock for 1 ms while children are started back to back, and every child logs —
// none may hang.
BOOST_AUTO_TEST_CASE(fork_server_children_never_inherit_a_lock_held_by_an_on_exit_callback) {
  watchdog dog{"S1 on_exit lock", 120s};
  auto& srv = server();
  std::atomic<int> reports{0};
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::null();
  o.on_exit = [&](pkit::process&) {
    the_log.log_holding("on_exit: a child ended", 1ms);
    reports.fetch_add(1);
  };
  constexpr int n = 300;
  auto r = run_batch(n, n + 1, 5s, [&](int i) {
    return std::make_unique<pkit::process>(srv.target("log-and-allocate", {std::to_string(i)}), o);
  });
  BOOST_TEST(r.start_failures == 0, r.start_failures << " starts failed; first: " << r.first_problem);
  BOOST_TEST(r.hung == 0, "a child hung: " << r.first_problem);
  BOOST_TEST(r.wrong == 0, r.wrong << " children did not exit 0; first: " << r.first_problem);
  BOOST_TEST(reports.load() == r.started);
}

// S2. An exception, a return or exit() in the child must not unwind into the caller's
// code: the child ends in the trampoline with the documented code, exactly one process
// ends per start, and the code after start() runs in the parent only.
BOOST_AUTO_TEST_CASE(a_child_that_returns_throws_or_exits_ends_with_its_code_and_never_resumes_the_caller) {
  watchdog dog{"S2 codes", 60s};
  const pid_t me = ::getpid();

  struct subclass_throws : pkit::process {
    explicit subclass_throws(pkit::process_options o) : pkit::process(std::move(o)) {}
    void run() override { throw std::runtime_error("subclass-run-threw"); }
  };
  struct subclass_exits : pkit::process {
    explicit subclass_exits(pkit::process_options o) : pkit::process(std::move(o)) {}
    void run() override { pkit::exit_child(17); }
  };
  using maker = std::function<std::unique_ptr<pkit::process>(pkit::process_options)>;
  auto callable = [](auto f) -> maker {
    return [f](pkit::process_options o) { return std::make_unique<pkit::process>(f, std::move(o)); };
  };
  auto& srv = server();
  auto served = [&srv](std::string name, std::vector<std::string> args = {}) -> maker {
    return [&srv, name, args](pkit::process_options o) {
      return std::make_unique<pkit::process>(srv.target(name, args), std::move(o));
    };
  };

  struct expectation {
    std::string name;
    maker make;
    exit_status want;
    std::string stderr_has;  // the exception's message on the child's stderr
  };
  // std::exit in a child is the user's own call (it runs the atexit handlers it inherited);
  // it is exercised in the probe (next test), not in this Boost.Test program.
  const std::vector<expectation> cases = {
      {"return void", callable([] {}), exit_status::exited(0), ""},
      {"return 42", callable([] { return 42; }), exit_status::exited(42), ""},
      {"throw std::runtime_error", callable([]() -> int { throw std::runtime_error("callable-threw"); }),
       exit_status::exited(1), "callable-threw"},
      {"throw int", callable([]() -> int { throw 7; }), exit_status::exited(1), ""},
      {"exit_child(9)", callable([] { pkit::exit_child(9); }), exit_status::exited(9), ""},
      {"throw exit_request{11}", callable([] { throw pkit::exit_request{11}; }), exit_status::exited(11), ""},
      {"target(f, 20, 3)",
       [](pkit::process_options o) {
         return std::make_unique<pkit::process>(pkit::target([](int a, int b) { return a + b; }, 20, 3),
                                                std::move(o));
       },
       exit_status::exited(23), ""},
      {"subclass run() throws",
       [](pkit::process_options o) { return std::make_unique<subclass_throws>(std::move(o)); },
       exit_status::exited(1), "subclass-run-threw"},
      {"subclass run() calls exit_child(17)",
       [](pkit::process_options o) { return std::make_unique<subclass_exits>(std::move(o)); },
       exit_status::exited(17), ""},
      {"server target returns 42", served("return", {"42"}), exit_status::exited(42), ""},
      {"server target throws", served("throw"), exit_status::exited(1), "server-target-threw"},
      {"server target calls exit_child(9)", served("exit-child", {"9"}), exit_status::exited(9), ""},
  };

  for (const auto& c : cases) {
    for (int round = 0; round < 20; ++round) {
      pkit::process_options o;
      o.in = pkit::stdio::null();
      o.out = pkit::stdio::null();
      o.err = pkit::stdio::pipe();
      auto p = c.make(std::move(o));
      std::error_code ec;
      p->start(ec);
      if (::getpid() != me) ::_exit(99);  // the child came back out of start(): the fault
      BOOST_TEST_REQUIRE(!ec, c.name << ": start failed: " << ec.message());
      pkit::unique_fd err_pipe = p->take_stderr_pipe();
      std::vector<std::string> err;
      drain({err_pipe.get()}, err, steady::now() + 10s);
      auto st = p->join_status(10s);
      BOOST_TEST_REQUIRE(st.has_value(), c.name << ": no exit within 10 s");
      BOOST_TEST(*st == c.want, c.name << ": " << st->to_string() << ", expected " << c.want.to_string());
      if (!c.stderr_has.empty())
        BOOST_TEST(err[0].find(c.stderr_has) != std::string::npos,
                   c.name << ": stderr lacks the exception's message: '" << err[0] << "'");
      BOOST_TEST(!p->is_alive());
    }
  }
}

// S2, the copied-state half: a child must run none of the parent's atexit handlers or
// static destructors (unless it calls std::exit itself) and must not write out the
// parent's unflushed stdio buffers a second time. Checked on a purpose-written program
// whose stdout is a pipe (fully buffered), so unflushed text is really there to leak.
BOOST_AUTO_TEST_CASE(text_buffered_before_a_spawn_appears_once_and_no_child_runs_the_parents_atexit) {
  watchdog dog{"S2 stdio", 90s};
  captured c = run_captured(pkit::command{probe(), "stdio-once"}, 60s);
  BOOST_TEST_REQUIRE(c.started, c.start_error);
  BOOST_TEST_REQUIRE(c.status.has_value(), "the probe did not end; output:\n" << c.out << c.err);
  BOOST_TEST(c.status->success(), "probe " << c.status->to_string() << "; output:\n" << c.out);

  for (const char* text : {"BEFORE-SERVER|", "BEFORE-SPAWN|", "COUT-BEFORE|", "FORKED-TEXT|",
                           "SRV-TEXT|", "AFTER|"})
    BOOST_TEST(count_of(c.out, text) == 1u,
               "'" << text << "' appears " << count_of(c.out, text) << " times; output:\n" << c.out);

  pid_t parent = -1;
  std::set<pid_t> std_exit_children;
  std::map<std::string, std::vector<pid_t>> markers;
  for (const auto& line : lines_of(c.out)) {
    std::istringstream in{line};
    std::string word;
    in >> word;
    long pid = -1;
    if (word == "PARENT" && in >> pid) parent = static_cast<pid_t>(pid);
    if (word == "STDEXIT" && in >> pid) std_exit_children.insert(static_cast<pid_t>(pid));
    if ((word == "ATEXIT" || word == "DTOR" || word == "MAIN-END") && in >> pid)
      markers[word].push_back(static_cast<pid_t>(pid));
    if (word == "ESCAPED" || word == "FAIL:") BOOST_TEST(false, "probe: " << line);
  }
  BOOST_TEST_REQUIRE(parent > 0, "no PARENT line; output:\n" << c.out);
  BOOST_TEST(std_exit_children.size() == 1u);
  for (const char* marker : {"ATEXIT", "DTOR", "MAIN-END"}) {
    int by_parent = 0;
    for (pid_t pid : markers[marker]) {
      if (pid == parent) {
        ++by_parent;
      } else if (std::string{marker} == "MAIN-END" || !std_exit_children.count(pid)) {
        BOOST_TEST(false, marker << " written by process " << pid
                                 << ", which is neither the parent nor a child that called std::exit");
      }
    }
    BOOST_TEST(by_parent == 1, marker << " written " << by_parent << " times by the parent");
  }
}

// S3. A failed exec must come back as an error naming the errno and the stage, the
// failed child must be reaped, and no descriptor may leak — a thousand times over.
BOOST_AUTO_TEST_CASE(a_thousand_failed_execs_each_report_their_errno_and_leave_no_zombie_or_fd) {
  watchdog dog{"S3", 120s};
  char dir_template[] = "/tmp/pkit-faults-XXXXXX";
  BOOST_TEST_REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  const std::string not_executable = dir + "/not-executable";
  {
    std::ofstream f{not_executable};
    f << "#!/bin/sh\nexit 0\n";
  }
  ::chmod(not_executable.c_str(), 0644);

  require_children_visible();
  // Warm up: the reaper and any lazily opened descriptor exist before we count.
  {
    pkit::process w{helper_cmd({"exit", "0"})};
    w.start();
    BOOST_TEST_REQUIRE(w.join_status(10s) == exit_status::exited(0));
  }
  const int fds_before = open_fd_count();
  const auto children_before = own_children();

  struct failing {
    std::string name;
    pkit::command cmd;
    std::errc want;
    std::string stage;
  };
  pkit::command bad_cwd = helper_cmd({"exit", "0"});
  bad_cwd.cwd = dir + "/no-such-directory";
  const std::vector<failing> cases = {
      {"missing binary", pkit::command{dir + "/no-such-binary"}, std::errc::no_such_file_or_directory, "exec"},
      {"missing from PATH", pkit::command{"pkit-fault-no-such-program"}, std::errc::no_such_file_or_directory,
       "exec"},
      {"non-executable file", pkit::command{not_executable}, std::errc::permission_denied, "exec"},
      {"directory", pkit::command{dir}, std::errc::permission_denied, "exec"},
      {"bad cwd", bad_cwd, std::errc::no_such_file_or_directory, "chdir"},
  };

  for (const auto& c : cases) {
    pkit::process p{c.cmd};  // reused: a failed start leaves it ready for the next
    int wrong = 0;
    std::string first;
    for (int i = 0; i < 1000; ++i) {
      std::error_code ec;
      const std::string stage = start_through(i % 3, p, ec);
      if (ec != c.want || stage != c.stage || p.is_alive()) {
        if (++wrong == 1)
          first = "iteration " + std::to_string(i) + ": error '" + ec.message() + "' stage '" + stage +
                  "' alive " + std::to_string(p.is_alive());
        if (!ec) {
          p.kill();
          p.join_status(5s);
        }
      }
    }
    BOOST_TEST(wrong == 0, c.name << ": " << wrong << " of 1000 starts misreported; first: " << first
                                  << " (expected '" << std::make_error_code(c.want).message() << "' at stage '"
                                  << c.stage << "')");
    const auto zombies = own_zombies();
    BOOST_TEST(zombies.empty(), c.name << ": " << zombies.size() << " zombie children left");
    BOOST_TEST(own_children() == children_before, c.name << ": children were left behind");
    BOOST_TEST(open_fd_count() == fds_before,
               c.name << ": " << open_fd_count() << " fds open, " << fds_before << " before");
  }
  ::unlink(not_executable.c_str());
  ::rmdir(dir.c_str());
}

// S4. Out of processes (EAGAIN under RLIMIT_NPROC): start() must come back quickly with a
// typed error, leave nothing behind, and work again once the limit is lifted. Runs in the
// probe, as uid 65534, since root is exempt from RLIMIT_NPROC.
BOOST_AUTO_TEST_CASE(fork_failing_with_eagain_under_rlimit_nproc_is_a_fast_typed_error) {
  watchdog dog{"S4", 90s};
  expect_probe_passes("nproc");
}

// B2. An argv or environment the kernel would refuse (E2BIG), or that cannot be
// represented (NUL bytes, empty argv), is rejected with a typed error at the "validate"
// stage, before any child is created.
BOOST_AUTO_TEST_CASE(oversized_or_malformed_argv_and_env_are_rejected_before_any_child_exists) {
  watchdog dog{"B2", 90s};
  const std::error_code e2big = std::make_error_code(std::errc::argument_list_too_long);
  const std::error_code inval = pkit::errc::invalid_argument;
  const std::string program = helper();

  long arg_max = ::sysconf(_SC_ARG_MAX);
  std::size_t total = 3u << 20;  // 3 MiB, over the kernel's limit with the usual 8 MiB stack
  if (arg_max > 0 && static_cast<std::size_t>(arg_max) >= total) total = static_cast<std::size_t>(arg_max) + (1u << 20);

  struct bad {
    std::string name;
    pkit::command cmd;
    std::error_code want;
  };
  std::vector<bad> cases;
  {
    pkit::command c{program, "exit", "0"};
    c.env.push_back("BIG=" + std::string(200 * 1024, 'v'));
    cases.push_back({"a 200 KiB variable", c, e2big});
  }
  {
    pkit::command c{program, std::string(200 * 1024, 'a')};
    cases.push_back({"a 200 KiB argument", c, e2big});
  }
  {
    pkit::command c{program, "exit", "0"};
    for (std::size_t i = 0, n = 0; n < total; ++i) {
      c.env.push_back("V" + std::to_string(i) + "=" + std::string(100 * 1024, 'e'));
      n += c.env.back().size() + 1;
    }
    cases.push_back({"a " + std::to_string(total >> 20) + " MiB environment", c, e2big});
  }
  {
    pkit::command c{program};
    c.argv.insert(c.argv.end(), 100000, std::string(40, 'x'));
    cases.push_back({"100,000 arguments of 40 bytes", c, e2big});
  }
  cases.push_back({"\"a\\0b\" in argv", pkit::command{program, std::string("a\0b", 3)}, inval});
  {
    pkit::command c{program, "exit", "0"};
    c.env.push_back(std::string("V=a\0b", 5));
    cases.push_back({"\"a\\0b\" in env", c, inval});
  }
  {
    pkit::command c{program, "exit", "0"};
    c.env.push_back(std::string("V\0W=b", 5));
    cases.push_back({"NUL in a variable's name", c, inval});
  }
  cases.push_back({"an empty argv", pkit::command{}, inval});

  {
    pkit::process w{helper_cmd({"exit", "0"})};
    w.start();
    BOOST_TEST_REQUIRE(w.join_status(10s) == exit_status::exited(0));
  }
  const int fds_before = open_fd_count();
  const auto children_before = own_children();

  for (const auto& b : cases) {
    // A child, had one been created, would hold the write end of this pipe.
    int held[2];
    BOOST_TEST_REQUIRE(::pipe2(held, O_CLOEXEC) == 0);
    pkit::process_options o;
    o.pass_fds = {{3, held[1]}};
    for (auto api = 0; api < 3; ++api) {
      pkit::process p{b.cmd, o};
      std::error_code ec;
      const std::string stage = start_through(api, p, ec);
      BOOST_TEST(ec == b.want, b.name << " (api " << api << "): got '" << ec.message() << "', expected '"
                                      << b.want.message() << "'");
      BOOST_TEST(stage == "validate", b.name << " (api " << api << "): stage '" << stage << "'");
      BOOST_TEST(!p.pid().has_value());
      if (!ec) {
        p.kill();
        p.join_status(5s);
      }
    }
    ::close(held[1]);
    pollfd pf{held[0], POLLIN, 0};
    BOOST_TEST((::poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP) != 0),
               b.name << ": a child holds the pipe passed to it");
    ::close(held[0]);
    BOOST_TEST(own_children() == children_before, b.name << ": a child exists");
  }
  BOOST_TEST(open_fd_count() == fds_before);

  // The proof that no task was created at all, not even one reaped at once: in a pid
  // namespace of its own the probe watches the namespace's pid counter.
  expect_probe_passes("no-fork-on-invalid");
}

BOOST_AUTO_TEST_SUITE_END()
