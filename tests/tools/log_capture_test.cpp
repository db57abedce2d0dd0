// pkit::tool::log_capture and the actor layer's output capture hook: children's output
// through real pipes (tests/helper/pkit_test_child), to real rotated files.
//
// Waits are on events: a listener's line, a reply, a down message; /proc is polled (with
// a deadline) only for what nothing announces (a child blocked in write, a pipe's EOF
// processed by the reader).

#define BOOST_TEST_MODULE log_capture
#include <boost/test/unit_test.hpp>

#include <pkit/actors/error.hpp>
#include <pkit/actors/messages.hpp>
#include <pkit/actors/output_capture.hpp>
#include <pkit/actors/process_actor.hpp>
#include <pkit/actors/supervisor.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>
#include <pkit/tool/log_capture.hpp>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actor_stopper.hpp"
#include "proc_stat.hpp"
#include "temp_dir.hpp"
#include "test_child_path.hpp"

namespace {

using namespace std::chrono_literals;
namespace pa = pkit::actors;
namespace fs = std::filesystem;
using pkit::tool::captured_line;
using pkit::tool::log_capture;
using pkit::tool::output_spec;
using pkit_test_common::actor_stopper;
using pkit_test_common::child_path;
using pkit_test_common::temp_dir;

constexpr auto event_timeout = 10s;

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = event_timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(2ms);
  }
}

output_spec log_to(const fs::path& path, std::uint64_t max_bytes = 1u << 20, std::uint32_t keep = 3) {
  output_spec s;
  s.mode = output_spec::kind::log;
  s.path = path;
  s.max_bytes = max_bytes;
  s.keep = keep;
  return s;
}

/// Lines a listener received, with a wait for the one that matters.
struct line_log {
  std::mutex m;
  std::condition_variable cv;
  std::vector<captured_line> lines;

  log_capture::listener fn() {
    return [this](const captured_line& l) {
      std::lock_guard<std::mutex> lock(m);
      lines.push_back(l);
      cv.notify_all();
    };
  }
  bool wait_for(const std::function<bool(const captured_line&)>& pred) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, event_timeout,
                       [&] { return std::any_of(lines.begin(), lines.end(), pred); });
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(m);
    return lines.size();
  }
};

/// One record of a log file: "YYYY-MM-DDTHH:MM:SS.mmmZ" + marker + text.
struct record {
  char marker = '?';
  std::string text;
};

constexpr std::size_t stamp_size = 24;

std::vector<record> records_of(const fs::path& file) {
  std::vector<record> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    BOOST_TEST_REQUIRE(line.size() > stamp_size, "short record in " << file << ": '" << line << "'");
    BOOST_TEST_REQUIRE(line[stamp_size - 1] == 'Z', "no timestamp: '" << line << "'");
    BOOST_TEST_REQUIRE(line[10] == 'T');
    out.push_back({line[stamp_size], line.substr(stamp_size + 1)});
  }
  return out;
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

/// The pidfds open in this program.
std::size_t open_pidfds() {
  std::size_t n = 0;
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/proc/self/fd", ec))
    if (fs::read_symlink(e.path(), ec).string() == "anon_inode:[pidfd]") ++n;
  return n;
}

long vm_rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kb = 0;
      in >> kb;
      return kb;
    }
    in.ignore(4096, '\n');
  }
  return -1;
}

/// True while `pid` sleeps in write(2) (x86_64 syscall 1; on another architecture: in
/// any system call): what a child on a full pipe does.
bool blocked_in_write(pid_t pid) {
  auto st = pkit_test_proc::read_proc_stat(pid);
  if (!st || st->state != 'S') return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
  std::string nr;
  in >> nr;
#if defined(__x86_64__)
  return nr == "1";
#else
  return !nr.empty() && nr != "running";
#endif
}

struct configured {
  caf::actor_system_config cfg;
  configured() { pa::init(cfg); }
};

/// An actor system whose output capture is `capture` (removed again at the end).
struct system_fixture : configured {
  caf::actor_system system{cfg};
  std::shared_ptr<log_capture> capture;

  explicit system_fixture(std::shared_ptr<log_capture> c) : capture(std::move(c)) {
    pa::set_output_capture(system, capture);
  }
  ~system_fixture() { pa::set_output_capture(system, nullptr); }
};

pkit::process piped_child(std::vector<std::string> args, bool with_stdin = false) {
  args.insert(args.begin(), child_path());
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  if (with_stdin) o.in = pkit::stdio::pipe();
  return pkit::process(pkit::command{std::move(args)}, std::move(o));
}

// The fork server starts before any thread exists (a global fixture runs first): its
// target "say TEXT" writes TEXT, without a newline, to stdout and exits 0.
std::optional<pkit::fork_server> server_instance;

struct fork_server_fixture {
  fork_server_fixture() {
    pkit::fork_server::registry r;
    r.add("say", [](const std::vector<std::string>& args) -> int {
      const std::string& text = args.at(0);
      return ::write(1, text.data(), text.size()) == static_cast<ssize_t>(text.size()) ? 0 : 3;
    });
    server_instance.emplace(pkit::fork_server::start(std::move(r)));
  }
  ~fork_server_fixture() { server_instance.reset(); }
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(fork_server_fixture);

BOOST_AUTO_TEST_CASE(three_runs_through_a_supervisor_are_logged_line_by_line_and_a_killed_runs_partial_line_stands_alone) {
  temp_dir dir;
  const fs::path file = dir.path() / "w.log";
  auto capture = std::make_shared<log_capture>();
  capture->configure("w", 1, log_to(file));
  line_log seen;
  auto handle = capture->add_listener("w", seen.fn());
  constexpr int lines = 2000;

  std::vector<std::string> pids;
  {
    system_fixture fx(capture);
    pa::child_spec child;
    child.id = "w";
    child.process.name = "w";
    child.process.argv = {child_path(), "lines-then-partial", std::to_string(lines), "1"};
    child.process.stdout_path = "capture";
    pa::supervisor_spec spec{"root", {}, {child}};
    spec.flags.intensity = 10;
    caf::scoped_actor self{fx.system};
    auto sup = pa::spawn_supervisor(fx.system, spec);
    actor_stopper stop_sup{sup};  // however the block ends: the system would wait for it
    self->monitor(sup);
    // Each run: wait until its last whole line came through, then kill it (runs 1, 2) with
    // its partial line still in the pipe; the supervisor starts the next one.
    for (int run = 1; run <= 3; ++run) {
      std::string pid;
      BOOST_TEST_REQUIRE(seen.wait_for([&](const captured_line& l) {
        const auto sp = l.text.find(' ');
        if (sp == std::string::npos || l.text.substr(sp + 1) != std::to_string(lines)) return false;
        if (std::find(pids.begin(), pids.end(), l.text.substr(0, sp)) != pids.end()) return false;
        pid = l.text.substr(0, sp);
        return true;
      }), "run " << run << " did not write its lines");
      pids.push_back(pid);
      if (run < 3) BOOST_TEST_REQUIRE(::kill(std::stoi(pid), SIGKILL) == 0);
    }
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);  // a supervisor heeds no other sender
    bool down = false;
    self->receive([&](caf::down_msg&) { down = true; }, caf::after(event_timeout) >> [] {});
    BOOST_TEST_REQUIRE(down);
  }
  BOOST_TEST_REQUIRE(eventually([&] { return capture->open_pipes() == 0; }), "a run's pipe never reached EOF");
  capture->stop();

  const auto recs = records_of(file);
  BOOST_TEST(recs.size() == 3u * (lines + 1));
  std::map<std::string, std::vector<std::string>> by_pid;
  for (const auto& r : recs) {
    BOOST_TEST(r.marker == ' ');
    const auto sp = r.text.find(' ');
    BOOST_TEST_REQUIRE(sp != std::string::npos, "merged or broken record '" << r.text << "'");
    by_pid[r.text.substr(0, sp)].push_back(r.text.substr(sp + 1));
  }
  BOOST_TEST(by_pid.size() == 3u);
  for (const auto& pid : pids) {
    const auto& got = by_pid[pid];
    BOOST_TEST_REQUIRE(got.size() == std::size_t{lines + 1}, "run " << pid << ": " << got.size() << " records");
    for (int i = 0; i < lines; ++i) BOOST_TEST_REQUIRE(got[static_cast<std::size_t>(i)] == std::to_string(i + 1));
    BOOST_TEST(got.back() == "partial");  // no newline was written: terminated at EOF, alone
  }
}

BOOST_AUTO_TEST_CASE(twenty_children_started_side_by_side_each_get_their_own_complete_file) {
  temp_dir dir;
  auto capture = std::make_shared<log_capture>();
  constexpr int children = 20;
  constexpr int lines = 500;
  line_log seen;
  std::vector<log_capture::listener_handle> handles;
  pa::supervisor_spec spec{"root", {}, {}};
  spec.flags.start_concurrency = 8;  // starts, and so attach() calls, on several workers at once
  for (int i = 0; i < children; ++i) {
    const std::string name = "c" + std::to_string(i);
    capture->configure(name, 1, log_to(dir.path() / (name + ".log")));
    handles.push_back(capture->add_listener(name, seen.fn()));
    pa::child_spec c;
    c.id = name;
    c.process.name = name;
    c.process.argv = {child_path(), "write-lines", std::to_string(lines), "16"};
    c.process.stdout_path = "capture";
    c.restart = pa::restart_type::temporary;
    spec.children.push_back(c);
  }
  {
    system_fixture fx(capture);
    caf::scoped_actor self{fx.system};
    auto sup = pa::spawn_supervisor(fx.system, spec);
    actor_stopper stop_sup{sup};  // however the block ends: the system would wait for it
    self->monitor(sup);
    const std::string number = std::to_string(lines);
    const std::string last = std::string(8 - number.size(), '0') + number + std::string(16 - 8, 'x');
    BOOST_TEST_REQUIRE(eventually([&] {
      std::lock_guard<std::mutex> lock(seen.m);
      return std::count_if(seen.lines.begin(), seen.lines.end(),
                           [&](const captured_line& l) { return l.text == last; }) == children;
    }), "not every child's last line came through");
    BOOST_TEST_REQUIRE(eventually([&] { return capture->open_pipes() == 0; }));
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    self->receive([](caf::down_msg&) {}, caf::after(event_timeout) >> [] {});
  }
  capture->stop();
  for (int i = 0; i < children; ++i) {
    const auto recs = records_of(dir.path() / ("c" + std::to_string(i) + ".log"));
    BOOST_TEST_REQUIRE(recs.size() == std::size_t{lines}, "c" << i);
    for (int n = 0; n < lines; ++n)
      BOOST_TEST_REQUIRE(std::stoi(recs[static_cast<std::size_t>(n)].text.substr(0, 8)) == n + 1);
  }
}

BOOST_AUTO_TEST_CASE(a_fork_server_targets_output_is_captured_per_run_after_its_launch) {
  auto capture = std::make_shared<log_capture>();
  line_log seen;
  auto handle = capture->add_listener("say", seen.fn());
  system_fixture fx(capture);
  pa::process_spec spec;
  spec.name = "say";
  spec.target = "say";
  spec.args = {"hello"};
  spec.stdout_path = "capture";
  auto actor = pa::spawn_process(fx.system, spec, &*server_instance);
  actor_stopper stop_actor{actor};
  caf::scoped_actor self{fx.system};
  for (int run = 1; run <= 3; ++run) {
    bool ok = false;
    self->request(actor, event_timeout, pa::start_atom_v)
        .receive([&](std::int32_t) { ok = true; }, [&](caf::error& e) { BOOST_TEST_MESSAGE(fx.system.render(e)); });
    BOOST_TEST_REQUIRE(ok, "run " << run << " did not start");
    self->request(actor, event_timeout, pa::join_atom_v).receive([](pkit::exit_status&) {}, [](caf::error&) {});
    // Its "hello" has no newline: the line comes at the run's EOF, tagged with the run.
    BOOST_TEST_REQUIRE(seen.wait_for([&](const captured_line& l) {
      return l.text == "hello" && l.run == static_cast<std::uint64_t>(run);
    }), "run " << run << "'s output was not captured");
  }
  BOOST_TEST(seen.size() == 3u);
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(a_capture_spec_without_a_capture_fails_to_start_at_stage_capture) {
  configured c;
  caf::actor_system system{c.cfg};
  pa::process_spec spec;
  spec.name = "nocap";
  spec.argv = {child_path(), "exit", "0"};
  spec.stderr_path = "capture";
  auto actor = pa::spawn_process(system, spec);
  actor_stopper stop_actor{actor};
  caf::scoped_actor self{system};
  caf::error err;
  self->request(actor, event_timeout, pa::start_atom_v)
      .receive([](std::int32_t) {}, [&](caf::error& e) { err = std::move(e); });
  BOOST_TEST_REQUIRE((err == pa::error::start_failed), system.render(err));
  auto f = pa::start_failure_of(err);
  BOOST_TEST_REQUIRE(f.has_value());
  BOOST_TEST(f->stage == "capture");
  BOOST_TEST(f->name == "nocap");
  self->send_exit(actor, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(ten_thousand_lines_rotated_at_4_KiB_are_all_kept_whole_in_order) {
  temp_dir dir;
  const fs::path file = dir.path() / "r.log";
  constexpr std::uint64_t max_bytes = 4096;
  constexpr int lines = 10000;
  constexpr std::size_t width = 32;
  // 10,000 records of 24 + 1 + 32 + 1 bytes: ~143 files of 4 KiB; 250 are kept.
  log_capture capture;
  capture.configure("r", 1, log_to(file, max_bytes, 250));
  auto p = piped_child({"write-lines", std::to_string(lines), std::to_string(width)});
  p.start();
  capture.attach("r", 1, 1, p.take_stdout_pipe());
  BOOST_TEST(p.join() == 0);
  BOOST_TEST_REQUIRE(eventually([&] { return capture.open_pipes() == 0; }));
  capture.stop();

  // Oldest first: r.N.log ... r.1.log, r.log.
  std::vector<fs::path> files;
  for (int i = 250; i >= 1; --i)
    if (fs::path f = dir.path() / ("r." + std::to_string(i) + ".log"); fs::exists(f)) files.push_back(f);
  files.push_back(file);
  BOOST_TEST(files.size() > 100u);
  BOOST_TEST(!fs::exists(dir.path() / "r.251.log"));
  int expected = 1;
  for (const auto& f : files) {
    BOOST_TEST(fs::file_size(f) <= max_bytes, f << " has " << fs::file_size(f) << " bytes");
    for (const auto& r : records_of(f)) {
      BOOST_TEST_REQUIRE(r.marker == ' ');
      BOOST_TEST_REQUIRE(r.text.size() == width, "split record '" << r.text << "' in " << f);
      BOOST_TEST_REQUIRE(std::stoi(r.text.substr(0, 8)) == expected, "in " << f);
      ++expected;
    }
  }
  BOOST_TEST(expected == lines + 1);
}

BOOST_AUTO_TEST_CASE(retention_keeps_the_newest_files_only) {
  temp_dir dir;
  const fs::path file = dir.path() / "k.log";
  log_capture capture;
  capture.configure("k", 1, log_to(file, 4096, 3));
  auto p = piped_child({"write-lines", "2000", "32"});
  p.start();
  capture.attach("k", 1, 1, p.take_stdout_pipe());
  BOOST_TEST(p.join() == 0);
  BOOST_TEST_REQUIRE(eventually([&] { return capture.open_pipes() == 0; }));
  capture.stop();
  for (int i = 1; i <= 3; ++i) BOOST_TEST(fs::exists(dir.path() / ("k." + std::to_string(i) + ".log")));
  BOOST_TEST(!fs::exists(dir.path() / "k.4.log"));
  const auto newest = records_of(file);
  BOOST_TEST_REQUIRE(!newest.empty());
  BOOST_TEST(newest.back().text.substr(0, 8) == "00002000");
  // The kept files hold consecutive lines, the newest last.
  int next = 0;
  for (const char* name : {"k.3.log", "k.2.log", "k.1.log", "k.log"})
    for (const auto& r : records_of(dir.path() / name)) {
      const int n = std::stoi(r.text.substr(0, 8));
      if (next != 0) BOOST_TEST_REQUIRE(n == next);
      next = n + 1;
    }
}

BOOST_AUTO_TEST_CASE(a_line_longer_than_the_limit_is_written_in_marked_pieces) {
  temp_dir dir;
  const fs::path file = dir.path() / "long.log";
  log_capture capture;
  capture.configure("long", 1, log_to(file));
  auto p = piped_child({"write-lines", "1", "40000"});
  p.start();
  capture.attach("long", 1, 1, p.take_stdout_pipe());
  BOOST_TEST(p.join() == 0);
  BOOST_TEST_REQUIRE(eventually([&] { return capture.open_pipes() == 0; }));
  capture.stop();
  const auto recs = records_of(file);
  BOOST_TEST_REQUIRE(recs.size() == 3u);  // 16384 + 16384 + 7232
  BOOST_TEST(recs[0].marker == '+');
  BOOST_TEST(recs[1].marker == '+');
  BOOST_TEST(recs[2].marker == ' ');
  BOOST_TEST(recs[0].text.size() == 16384u);
  BOOST_TEST(recs[0].text.size() + recs[1].text.size() + recs[2].text.size() == 40000u);
  BOOST_TEST(recs[0].text.substr(0, 8) == "00000001");
}

BOOST_AUTO_TEST_CASE(a_bad_configuration_is_refused_naming_what_is_wrong) {
  temp_dir dir;
  log_capture capture;
  BOOST_CHECK_THROW(capture.configure("x", 3, log_to(dir.path() / "x.log")), std::invalid_argument);
  BOOST_CHECK_THROW(capture.configure("x", 1, log_to(dir.path() / "x.log", 0)), std::invalid_argument);
  BOOST_CHECK_THROW(capture.configure("x", 1, log_to("")), std::invalid_argument);
  // A directory where the file's parent should be a directory is a plain file: cannot open.
  { std::ofstream(dir.path() / "plain") << "x"; }
  try {
    capture.configure("x", 1, log_to(dir.path() / "plain" / "x.log"));
    BOOST_FAIL("a log under a plain file was accepted");
  } catch (const std::exception& e) {
    BOOST_TEST(std::string(e.what()).find("plain") != std::string::npos, e.what());
  }
  // inherit / null: no file, no error.
  BOOST_CHECK_NO_THROW(capture.configure("x", 1, output_spec{}));
}

namespace {

/// A sink that writes only as many records as it is granted: a disk the test controls.
struct gated_sink final : log_capture::line_sink {
  std::mutex m;
  std::condition_variable cv;
  std::uint64_t permits = 0;
  std::uint64_t written = 0;
  bool open = false;

  void write(std::string_view, bool) override {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return open || permits > 0; });
    if (!open) --permits;
    ++written;
    cv.notify_all();
  }
  void flush() override {}
  void grant(std::uint64_t n) {
    std::lock_guard<std::mutex> lock(m);
    permits += n;
    cv.notify_all();
  }
  void open_gate() {
    std::lock_guard<std::mutex> lock(m);
    open = true;
    cv.notify_all();
  }
  bool wait_written(std::uint64_t n) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, event_timeout, [&] { return written >= n; });
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_child_faster_than_the_disk_is_blocked_in_write_and_pkits_memory_stays_bounded) {
  auto sink = std::make_shared<gated_sink>();
  log_capture::options o;
  o.make_sink = [sink](const output_spec&) { return sink; };
  log_capture capture(o);
  capture.configure("flood", 1, log_to("/nonexistent/unused.log"));
  auto p = piped_child({"flood"});
  const pid_t pid = p.start();
  capture.attach("flood", 1, 1, p.take_stdout_pipe());

  // The reader waits in the sink's first write; the pipe fills; the child blocks.
  BOOST_TEST_REQUIRE(eventually([&] { return blocked_in_write(pid); }), "the flooding child never blocked");
  const long rss_before = vm_rss_kb();
  std::uint64_t granted = 0;
  for (int round = 0; round < 10; ++round) {
    granted += 20000;
    sink->grant(20000);
    BOOST_TEST_REQUIRE(sink->wait_written(granted));
    BOOST_TEST_REQUIRE(eventually([&] { return blocked_in_write(pid); }), "round " << round);
  }
  const long rss_after = vm_rss_kb();
  BOOST_TEST_MESSAGE("VmRSS " << rss_before << " kB -> " << rss_after << " kB over " << granted << " lines");
  // 200,000 lines (~1.2 MB) went through; what the reader holds is one read buffer and one
  // partial line. (Under ASan, freed memory stays in its quarantine: RSS measures that.)
#if defined(__SANITIZE_ADDRESS__)
  BOOST_TEST_MESSAGE("ASan build: VmRSS bound not checked");
#else
  BOOST_TEST(rss_after - rss_before < 2048);
#endif
  sink->open_gate();
  p.kill();
  p.join();
  BOOST_TEST_REQUIRE(eventually([&] { return capture.open_pipes() == 0; }));
  capture.stop();
}

BOOST_AUTO_TEST_CASE(a_listener_gets_lines_live_and_its_history_and_nothing_after_its_handle_is_gone) {
  log_capture capture;  // no file configured: lines go to listeners only
  auto p = piped_child({"echo"}, true);
  p.start();
  capture.attach("e", 1, 1, p.take_stdout_pipe());
  pkit::unique_fd in = p.take_stdin_pipe();
  line_log first;
  auto h1 = capture.add_listener("e", first.fn());
  auto say = [&](const std::string& s) {
    const std::string line = s + "\n";
    BOOST_TEST_REQUIRE(::write(in.get(), line.data(), line.size()) == static_cast<ssize_t>(line.size()));
  };
  say("hello");
  BOOST_TEST_REQUIRE(first.wait_for([](const captured_line& l) { return l.text == "hello"; }));
  say("world");
  BOOST_TEST_REQUIRE(first.wait_for([](const captured_line& l) { return l.text == "world"; }));

  line_log second;
  std::vector<captured_line> history;
  auto h2 = capture.add_listener("e", second.fn(), [&](const std::vector<captured_line>& h) { history = h; });
  BOOST_TEST_REQUIRE(history.size() == 2u);
  BOOST_TEST(history[0].text == "hello");
  BOOST_TEST(history[1].text == "world");
  BOOST_TEST(history[1].stream == 1);
  BOOST_TEST(history[1].run == 1u);

  h1.reset();
  const std::size_t first_count = first.size();
  say("again");
  BOOST_TEST_REQUIRE(second.wait_for([](const captured_line& l) { return l.text == "again"; }));
  BOOST_TEST(first.size() == first_count);
  in.reset();
  BOOST_TEST(p.join() == 0);
  BOOST_TEST_REQUIRE(eventually([&] { return capture.open_pipes() == 0; }));
}

// A child printing empty lines forever: each line costs a record in the history even
// without text, so the history must count records, not only text bytes.
BOOST_AUTO_TEST_CASE(the_history_of_a_child_printing_only_empty_lines_stays_bounded) {
  log_capture::options opts;
  opts.history_bytes = 1024;
  log_capture capture(opts);
  int fds[2];
  BOOST_TEST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  pkit::unique_fd write_end(fds[1]);
  capture.attach("blank", 1, 1, pkit::unique_fd(fds[0]));
  line_log seen;
  auto h = capture.add_listener("blank", seen.fn());
  const std::string blanks(100000, '\n');
  for (std::size_t done = 0; done < blanks.size();) {
    const auto n = ::write(write_end.get(), blanks.data() + done, blanks.size() - done);
    BOOST_TEST_REQUIRE(n > 0);
    done += static_cast<std::size_t>(n);
  }
  BOOST_TEST_REQUIRE(::write(write_end.get(), "end\n", 4) == 4);
  BOOST_TEST_REQUIRE(seen.wait_for([](const captured_line& l) { return l.text == "end"; }));
  std::vector<captured_line> history;
  auto h2 = capture.add_listener("blank", seen.fn(), [&](const std::vector<captured_line>& h) { history = h; });
  BOOST_TEST(history.size() <= 1024u / sizeof(captured_line) + 1, "history of " << history.size() << " lines");
  BOOST_TEST_REQUIRE(!history.empty());
  BOOST_TEST(history.back().text == "end");
}

BOOST_AUTO_TEST_CASE(a_hundred_captured_runs_of_a_process_actor_leak_no_fd) {
  auto capture = std::make_shared<log_capture>();
  temp_dir dir;
  capture->configure("leak", 1, log_to(dir.path() / "leak.log"));
  capture->configure("leak", 2, log_to(dir.path() / "leak.log"));  // shared with stdout
  system_fixture fx(capture);
  pa::process_spec spec;
  spec.name = "leak";
  spec.argv = {child_path(), "write", "1", "out"};
  spec.stdout_path = "capture";
  spec.stderr_path = "capture";
  auto actor = pa::spawn_process(fx.system, spec);
  actor_stopper stop_actor{actor};
  caf::scoped_actor self{fx.system};
  auto run_once = [&] {
    bool ok = false;
    self->request(actor, event_timeout, pa::start_atom_v).receive([&](std::int32_t) { ok = true; }, [](caf::error&) {});
    BOOST_TEST_REQUIRE(ok);
    self->request(actor, event_timeout, pa::join_atom_v)
        .receive([&](pkit::exit_status&) {}, [&](caf::error&) { ok = false; });
    BOOST_TEST_REQUIRE(ok);
  };
  // A run's pidfd may still be open as its join is answered: libpkit closes it on the
  // reaper thread after the exit's callbacks, which report it to the actor
  // (run_control.cpp). Seen under ASan with two suites at once: one descriptor more, a
  // pidfd, gone within 500 ms — in the count after the runs, or in the baseline. So each
  // count is taken once the runs' pidfds are closed; a leaked one never closes.
  const std::size_t pidfds_before = open_pidfds();
  const auto runs_collected = [&] {
    return eventually([&] { return capture->open_pipes() == 0 && open_pidfds() == pidfds_before; });
  };
  run_once();  // the actor system's and libpkit's own descriptors are made on first use
  BOOST_TEST_REQUIRE(runs_collected());
  const std::size_t baseline = open_fds();
  for (int i = 0; i < 100; ++i) run_once();
  BOOST_TEST(runs_collected(), open_pidfds() << " pidfds, " << pidfds_before << " before");
  BOOST_TEST(open_fds() == baseline);
  self->send_exit(actor, caf::exit_reason::user_shutdown);
  capture->stop();
  // Each run's partial "out" (no newline) is a line of its own; stderr said nothing.
  const auto recs = records_of(dir.path() / "leak.log");
  BOOST_TEST(recs.size() == 101u);
  BOOST_TEST(std::all_of(recs.begin(), recs.end(), [](const record& r) { return r.text == "out"; }));
}

// REVIEW D13: a tail's history and its live lines must not interleave. The history is
// handed over inside add_listener, under the lock that delivery takes, before the live
// listener is hooked: a line read meanwhile (here: written by the history's consumer
// itself, so it is surely pending) reaches the listener only after the whole history.
BOOST_AUTO_TEST_CASE(a_listeners_history_comes_before_any_live_line) {
  log_capture capture;
  int fds[2];
  BOOST_TEST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  pkit::unique_fd write_end(fds[1]);
  capture.attach("h", 1, 1, pkit::unique_fd(fds[0]));
  line_log seen;
  auto h1 = capture.add_listener("h", seen.fn());
  BOOST_TEST_REQUIRE(::write(write_end.get(), "old\n", 4) == 4);
  BOOST_TEST_REQUIRE(seen.wait_for([](const captured_line& l) { return l.text == "old"; }));

  line_log tail;  // what a `ctl tail` sink receives, history and live lines in one sequence
  auto tail_fn = tail.fn();
  auto h2 = capture.add_listener("h", tail_fn, [&](const std::vector<captured_line>& history) {
    // The reader reads this line now and waits for the lock to deliver it.
    BOOST_TEST_REQUIRE(::write(write_end.get(), "new\n", 4) == 4);
    for (const auto& l : history) tail_fn(l);
  });
  BOOST_TEST_REQUIRE(tail.wait_for([](const captured_line& l) { return l.text == "new"; }));
  std::lock_guard<std::mutex> lock(tail.m);
  BOOST_TEST_REQUIRE(tail.lines.size() == 2u);
  BOOST_TEST(tail.lines[0].text == "old");
  BOOST_TEST(tail.lines[1].text == "new");
}

// REVIEW D18: logs may hold secrets, and as root pkit writes into a log_dir a service user
// may be able to write: files 0640, new directories 0750, and a symbolic link planted at
// a log path is refused, never followed (neither at open nor at a rotation's reopen).
BOOST_AUTO_TEST_CASE(log_files_are_0640_in_0750_directories_and_a_planted_link_is_refused) {
  temp_dir dir;
  const mode_t saved_umask = ::umask(022);
  log_capture capture;
  const fs::path file = dir.path() / "new" / "sub" / "a.log";
  capture.configure("a", 1, log_to(file));
  struct stat st {};
  BOOST_TEST_REQUIRE(::lstat(file.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0640u);
  BOOST_TEST_REQUIRE(::lstat(file.parent_path().c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0750u);
  BOOST_TEST_REQUIRE(::lstat(file.parent_path().parent_path().c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0750u);

  const fs::path victim = dir.path() / "victim";
  { std::ofstream(victim) << "precious\n"; }
  const fs::path planted = dir.path() / "planted.log";
  fs::create_symlink(victim, planted);
  try {
    capture.configure("b", 1, log_to(planted));
    BOOST_FAIL("a log path that is a symbolic link was opened");
  } catch (const std::exception& e) {
    BOOST_TEST(std::string(e.what()).find("symbolic link") != std::string::npos, e.what());
    BOOST_TEST(std::string(e.what()).find(planted.string()) != std::string::npos, e.what());
  }

  // At a rotation's reopen (keep = 0: FILE starts over in place, no rename moves the
  // link away): a link planted at FILE meanwhile must not truncate its target.
  const fs::path rotated = dir.path() / "r.log";
  capture.configure("r", 1, log_to(rotated, 64, 0));
  int fds[2];
  BOOST_TEST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  pkit::unique_fd write_end(fds[1]);
  capture.attach("r", 1, 1, pkit::unique_fd(fds[0]));
  line_log seen;
  auto h = capture.add_listener("r", seen.fn());
  const std::string first = std::string(60, 'x') + "\n";
  BOOST_TEST_REQUIRE(::write(write_end.get(), first.data(), first.size()) == static_cast<ssize_t>(first.size()));
  BOOST_TEST_REQUIRE(seen.wait_for([](const captured_line& l) { return l.text.size() == 60; }));
  // The next record rotates; the service user swaps the file's name for a link first.
  fs::rename(rotated, dir.path() / "moved.log");
  fs::create_symlink(victim, rotated);
  BOOST_TEST_REQUIRE(::write(write_end.get(), "second\n", 7) == 7);
  BOOST_TEST_REQUIRE(seen.wait_for([](const captured_line& l) { return l.text == "second"; }));
  write_end.reset();
  BOOST_TEST_REQUIRE(eventually([&] { return capture.open_pipes() == 0; }));
  capture.stop();
  std::ifstream in(victim);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(content == "precious\n");
  ::umask(saved_umask);
}
