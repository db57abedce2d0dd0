// Behaviour of pkit::process running external programs (pkit::command): argv, PATH
// lookup, environment, cwd, stdio, process groups, resource limits, passed fds,
// readiness notification, graceful/forced stop, exec failures and validation.
//
// The programs are the helper pkit_test_child (see tests/helper) and, where a shell is
// the simplest faithful child, /bin/sh.

#define BOOST_TEST_MODULE libpkit process (programs)
#include "test_support.hpp"

#include <pkit/command.hpp>
#include <pkit/process.hpp>
#include <pkit/spawn_error.hpp>

#include <future>
#include <memory>
#include <latch>
#include <thread>

#include <sys/resource.h>
#include <sys/syscall.h>

using namespace pkit_test;
using namespace std::chrono_literals;

namespace {

/// Set before any thread exists, so the children's inherited environment is known.
struct environment_fixture {
  environment_fixture() { ::setenv("PKIT_TEST_INHERITED", "from-parent", 1); }
};

/// Runs `cmd` with stdout to a pipe, returns {stdout, exit code}.
struct run_result {
  std::string out;
  int code = -1000;
};
run_result run_capture(pkit::command cmd, pkit::process_options o = {}) {
  o.out = pkit::stdio::pipe();
  pkit::process p{std::move(cmd), std::move(o)};
  p.start();
  pkit::unique_fd out = p.take_stdout_pipe();
  run_result r;
  r.out = read_all(out.get());
  r.code = p.join();
  return r;
}

/// Checks that a failed start left nothing behind: no child of ours in any state.
void check_no_child_left() {
  BOOST_TEST(children_of_self().empty(), "children left: " << children_of_self().size());
  BOOST_TEST(zombie_children().empty());
}

/// Starts and joins one program, so lazily created state (the reaper) exists before a
/// test counts descriptors.
void warm_up() {
  pkit::process p{child_command({"exit", "0"})};
  p.start(pkit::wait);
  p.join();
}

struct kill_on_exit {
  pkit::process& p;
  ~kill_on_exit() {
    std::error_code ec;
    if (p.is_alive()) p.kill(ec);
  }
};

std::string canonical_child() { return std::filesystem::canonical(child_path()).string(); }

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(environment_fixture);

// ---------------------------------------------------------------------------
// argv, PATH, start(wait)
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_program_runs_with_the_given_argv_and_its_exit_code_is_returned) {
  const auto r = run_capture(child_command({"argc", "a", "bc"}));
  const std::size_t bytes = child_path().size() + std::string("argc").size() + 1 + 2;
  BOOST_TEST(r.out == "4 " + std::to_string(bytes) + "\n");
  BOOST_TEST(r.code == 0);

  pkit::process p{child_command({"exit", "7"})};
  p.start();
  BOOST_TEST(p.join() == 7);
}

BOOST_AUTO_TEST_CASE(start_with_wait_returns_once_the_program_has_been_executed) {
  pkit::process p{child_command({"pause"})};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);
  BOOST_TEST(read_link("/proc/" + std::to_string(pid) + "/exe") == canonical_child());
  BOOST_TEST(p.is_alive());
  p.terminate(pkit::wait);
  BOOST_TEST(p.exitcode() == std::optional<int>{-SIGTERM});
}

BOOST_AUTO_TEST_CASE(a_program_name_without_a_slash_is_looked_up_in_path) {
  pkit::process p{pkit::command{"sleep", "0"}};
  BOOST_TEST(p.name() == "sleep");
  p.start(pkit::wait);
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(path_lookup_uses_the_path_of_the_child_environment) {
  const auto dir = std::filesystem::path(canonical_child()).parent_path().string();
  const auto name = std::filesystem::path(canonical_child()).filename().string();
  pkit::command cmd{name, "exit", "7"};
  cmd.env = {"PATH=/nonexistent-pkit-dir:" + dir};
  pkit::process p{cmd};
  p.start();
  BOOST_TEST(p.join() == 7);
}

BOOST_AUTO_TEST_CASE(a_program_process_is_named_after_argv0_unless_options_name_it) {
  pkit::process p{child_command({"exit", "0"})};
  BOOST_TEST(p.name() == child_path());
  pkit::process_options o;
  o.name = "my-service";
  pkit::process named{child_command({"exit", "0"}), o};
  BOOST_TEST(named.name() == "my-service");
}

BOOST_AUTO_TEST_CASE(a_program_killing_itself_reports_minus_the_signal) {
  pkit::process p{child_command({"kill-self", "USR1"})};
  p.start();
  BOOST_TEST(p.join() == -SIGUSR1);
  BOOST_TEST(p.status() == std::optional<pkit::exit_status>{pkit::exit_status::killed(SIGUSR1)});
}

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_child_inherits_the_parent_environment_by_default) {
  const auto r = run_capture(child_command({"env", "PKIT_TEST_INHERITED"}));
  BOOST_TEST(r.out == "from-parent\n");
  BOOST_TEST(r.code == 0);
}

BOOST_AUTO_TEST_CASE(clear_env_starts_the_child_from_an_empty_environment) {
  auto cmd = child_command({"env", "PKIT_TEST_INHERITED"});
  cmd.clear_env = true;
  const auto r = run_capture(cmd);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(r.code == 4);  // the helper's "unset" code

  auto with_one = child_command({"env", "PKIT_TEST_ADDED"});
  with_one.clear_env = true;
  with_one.env = {"PKIT_TEST_ADDED=only-me"};
  const auto r2 = run_capture(with_one);
  BOOST_TEST(r2.out == "only-me\n");
  BOOST_TEST(r2.code == 0);
}

BOOST_AUTO_TEST_CASE(env_entries_add_and_override_variables) {
  auto add = child_command({"env", "PKIT_TEST_ADDED"});
  add.env = {"PKIT_TEST_ADDED=a=b c"};
  BOOST_TEST(run_capture(add).out == "a=b c\n");

  auto override_ = child_command({"env", "PKIT_TEST_INHERITED"});
  override_.env = {"PKIT_TEST_INHERITED=overridden"};
  BOOST_TEST(run_capture(override_).out == "overridden\n");
}

BOOST_AUTO_TEST_CASE(a_bare_name_in_env_removes_the_variable) {
  auto cmd = child_command({"env", "PKIT_TEST_INHERITED"});
  cmd.env = {"PKIT_TEST_INHERITED"};
  const auto r = run_capture(cmd);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(r.code == 4);
}

BOOST_AUTO_TEST_CASE(env_entries_apply_in_order) {
  auto removed_last = child_command({"env", "PKIT_TEST_X"});
  removed_last.env = {"PKIT_TEST_X=1", "PKIT_TEST_X"};
  BOOST_TEST(run_capture(removed_last).code == 4);

  auto set_last = child_command({"env", "PKIT_TEST_X"});
  set_last.env = {"PKIT_TEST_X=1", "PKIT_TEST_X", "PKIT_TEST_X=2"};
  const auto r = run_capture(set_last);
  BOOST_TEST(r.out == "2\n");
  BOOST_TEST(r.code == 0);
}

BOOST_AUTO_TEST_CASE(env_changes_do_not_touch_the_parent_environment) {
  auto cmd = child_command({"env", "PKIT_TEST_INHERITED"});
  cmd.env = {"PKIT_TEST_INHERITED", "PKIT_TEST_NEW=1"};
  run_capture(cmd);
  BOOST_TEST(std::string(::getenv("PKIT_TEST_INHERITED")) == "from-parent");
  BOOST_TEST(::getenv("PKIT_TEST_NEW") == nullptr);
}

// ---------------------------------------------------------------------------
// Working directory
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(cwd_sets_the_working_directory_of_the_child) {
  temp_dir dir;
  auto cmd = child_command({"cwd"});
  cmd.cwd = dir.path().string();
  const auto r = run_capture(cmd);
  BOOST_TEST(r.out == dir.path().string() + "\n");
  BOOST_TEST(r.code == 0);
  BOOST_TEST(std::filesystem::current_path() != dir.path());
}

// chdir() would stop at a NUL: "/\0/nonexistent" would run the child in /.
// Refused before anything is opened: a stdout file is neither created nor truncated.
BOOST_AUTO_TEST_CASE(a_cwd_with_a_nul_byte_is_refused_before_any_spawn) {
  warm_up();
  temp_dir dir;
  const auto fds_before = open_fds();
  auto cmd = child_command({"exit", "0"});
  cmd.cwd = std::string("/\0/nonexistent", 15);
  pkit::process_options o;
  o.out = pkit::stdio::file(dir.file("out.txt"));
  pkit::process p{cmd, o};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == pkit::errc::invalid_argument, ec.message());
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "validate");
  BOOST_TEST(!p.pid().has_value());
  BOOST_TEST(!std::filesystem::exists(dir.file("out.txt")));
  check_no_child_left();
  check_fds_unchanged(fds_before);
}

BOOST_AUTO_TEST_CASE(a_bad_cwd_fails_start_at_the_chdir_stage_and_leaves_nothing_behind) {
  warm_up();
  const auto fds_before = open_fds();
  auto cmd = child_command({"exit", "0"});
  cmd.cwd = "/nonexistent-pkit-dir/sub";
  pkit::process p{cmd};

  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == std::errc::no_such_file_or_directory);
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "chdir");
  BOOST_TEST(p.last_failure()->error == ec);
  BOOST_TEST(!p.is_alive());
  BOOST_TEST(!p.pid().has_value());
  check_no_child_left();
  check_fds_unchanged(fds_before);
}

// ---------------------------------------------------------------------------
// Standard streams
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(null_connects_the_streams_to_dev_null) {
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::null();
  o.err = pkit::stdio::null();
  pkit::process p{child_command({"pause"}), o};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);
  for (int fd : {0, 1, 2}) BOOST_TEST(fd_target(pid, fd) == "/dev/null", "fd " << fd);
  p.terminate(pkit::wait);
}

BOOST_AUTO_TEST_CASE(a_null_stdin_gives_the_child_an_immediate_eof) {
  pkit::process_options o;
  o.in = pkit::stdio::null();
  const auto r = run_capture(child_command({"echo"}), o);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(r.code == 0);
}

BOOST_AUTO_TEST_CASE(inherit_shares_the_parent_streams) {
  pkit::process p{child_command({"pause"})};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);
  for (int fd : {0, 1, 2}) {
    BOOST_TEST(fd_target(pid, fd) == fd_target(::getpid(), fd), "fd " << fd);
  }
  BOOST_TEST(!p.take_stdin_pipe());
  BOOST_TEST(!p.take_stdout_pipe());
  BOOST_TEST(!p.take_stderr_pipe());
  p.terminate(pkit::wait);
}

BOOST_AUTO_TEST_CASE(a_stdout_file_is_created_and_truncated) {
  temp_dir dir;
  const auto path = dir.file("out.txt");
  write_text_file(path, "OLD CONTENT THAT IS LONGER");
  pkit::process_options o;
  o.out = pkit::stdio::file(path);
  pkit::process p{child_command({"write", "1", "hello"}), o};
  p.start();
  BOOST_TEST(p.join() == 0);
  BOOST_TEST(read_text_file(path) == "hello");

  const auto fresh = dir.file("fresh.txt");
  o.out = pkit::stdio::file(fresh);
  pkit::process q{child_command({"write", "1", "new"}), o};
  q.start();
  BOOST_TEST(q.join() == 0);
  BOOST_TEST(read_text_file(fresh) == "new");
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat st{};
  BOOST_TEST_REQUIRE(::stat(fresh.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == (0644u & ~mask));
}

BOOST_AUTO_TEST_CASE(a_stdout_file_with_append_is_appended_to) {
  temp_dir dir;
  const auto path = dir.file("log.txt");
  write_text_file(path, "abc;");
  pkit::process_options o;
  o.out = pkit::stdio::file(path, true);
  for (const char* text : {"one;", "two;"}) {
    pkit::process p{child_command({"write", "1", text}), o};
    p.start();
    BOOST_TEST(p.join() == 0);
  }
  BOOST_TEST(read_text_file(path) == "abc;one;two;");
}

BOOST_AUTO_TEST_CASE(a_stdin_file_is_read_by_the_child) {
  temp_dir dir;
  const auto path = dir.file("in.txt");
  write_text_file(path, "file contents\nline 2\n");
  pkit::process_options o;
  o.in = pkit::stdio::file(path);
  const auto r = run_capture(child_command({"echo"}), o);
  BOOST_TEST(r.out == "file contents\nline 2\n");
  BOOST_TEST(r.code == 0);
}

// A FIFO named as stdin with no writer must not hold start() (a CAF worker, for an actor)
// in open() until some writer comes; the child reads end-of-file instead. Before, open()
// blocked: the case then lets it go by opening the writer itself, and fails.
BOOST_AUTO_TEST_CASE(a_stdin_fifo_without_a_writer_does_not_hold_start) {
  temp_dir dir;
  const auto path = dir.file("in.fifo");
  BOOST_TEST_REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  pkit::process_options o;
  o.in = pkit::stdio::file(path);
  pkit::process p{child_command({"echo"}), o};
  auto started = std::async(std::launch::async, [&] { p.start(); });
  const bool prompt = started.wait_for(event_timeout) == std::future_status::ready;
  // Release the old code, blocked in open() for a writer. Non-blocking: a start that
  // had failed or closed its end meanwhile leaves no reader, and the open fails (ENXIO).
  if (!prompt) pkit::unique_fd writer{::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)};
  started.get();
  BOOST_TEST(prompt, "start() waited in open() for a writer of the stdin FIFO");
  BOOST_TEST(p.join() == 0);
}

// A directory opens read-only without error; the child would fail on its first read with
// nothing naming the stream. start() refuses it, leaving no fd and no child.
BOOST_AUTO_TEST_CASE(a_stdin_directory_fails_start_at_the_open_stdio_stage) {
  warm_up();
  temp_dir dir;
  const auto fds_before = open_fds();
  pkit::process_options o;
  o.in = pkit::stdio::file(dir.path().string());
  pkit::process p{child_command({"echo"}), o};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == std::errc::is_a_directory, ec.message());
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "open stdio");
  check_no_child_left();
  check_fds_unchanged(fds_before);
}

// open() reads a path up to its first NUL: "/dev/null\0/etc/x" would quietly open
// another file than the one given. Refused as an invalid argument.
BOOST_AUTO_TEST_CASE(a_stdio_path_with_a_nul_byte_is_refused) {
  warm_up();
  temp_dir dir;
  const auto path = dir.file("out.txt");
  pkit::process_options o;
  o.out = pkit::stdio::file(path + std::string("\0.ignored", 9));
  pkit::process p{child_command({"write", "1", "x"}), o};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == pkit::errc::invalid_argument, ec.message());
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "open stdio");
  BOOST_TEST(!std::filesystem::exists(path));
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(a_stderr_file_receives_the_child_stderr) {
  temp_dir dir;
  const auto path = dir.file("err.txt");
  pkit::process_options o;
  o.err = pkit::stdio::file(path);
  pkit::process p{child_command({"write", "2", "oops"}), o};
  p.start();
  BOOST_TEST(p.join() == 0);
  BOOST_TEST(read_text_file(path) == "oops");
}

BOOST_AUTO_TEST_CASE(a_stdio_file_that_cannot_be_opened_fails_start_at_the_open_stdio_stage) {
  warm_up();
  const auto fds_before = open_fds();
  pkit::process_options o;
  o.out = pkit::stdio::file("/nonexistent-pkit-dir/out.txt");
  pkit::process p{child_command({"exit", "0"}), o};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == std::errc::no_such_file_or_directory);
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "open stdio");
  check_no_child_left();
  check_fds_unchanged(fds_before);
}

BOOST_AUTO_TEST_CASE(stdout_and_stderr_pipes_carry_a_megabyte_each_to_the_parent) {
  constexpr std::size_t bytes = 1024 * 1024;
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  o.err = pkit::stdio::pipe();
  pkit::process p{child_command({"spew", std::to_string(bytes)}), o};
  p.start();
  pkit::unique_fd out = p.take_stdout_pipe();
  pkit::unique_fd err = p.take_stderr_pipe();
  BOOST_TEST_REQUIRE(static_cast<bool>(out));
  BOOST_TEST_REQUIRE(static_cast<bool>(err));
  BOOST_TEST(!p.take_stdout_pipe());  // moved out

  // Both pipes must be drained concurrently: the child alternates 64 KiB chunks.
  std::size_t got_out = 0, got_err = 0;
  bool out_open = true, err_open = true;
  const auto deadline = std::chrono::steady_clock::now() + event_timeout;
  char buf[64 * 1024];
  while ((out_open || err_open) && std::chrono::steady_clock::now() < deadline) {
    pollfd fds[2] = {{out_open ? out.get() : -1, POLLIN, 0}, {err_open ? err.get() : -1, POLLIN, 0}};
    if (::poll(fds, 2, 1000) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        BOOST_TEST_REQUIRE(std::string_view(buf, static_cast<std::size_t>(n)).find_first_not_of('x') ==
                           std::string_view::npos);
        (i == 0 ? got_out : got_err) += static_cast<std::size_t>(n);
      }
    }
  }
  BOOST_TEST(got_out == bytes);
  BOOST_TEST(got_err == bytes);
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(a_stdin_pipe_feeds_the_child) {
  pkit::process_options o;
  o.in = pkit::stdio::pipe();
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command({"echo"}), o};
  p.start();
  {
    pkit::unique_fd in = p.take_stdin_pipe();
    BOOST_TEST_REQUIRE(write_all(in.get(), "hello through stdin\n"));
  }  // closed: EOF for the child
  BOOST_TEST(read_all(p.take_stdout_pipe().get()) == "hello through stdin\n");
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(an_fd_stream_duplicates_a_descriptor_of_the_caller) {
  auto pipe = make_pipe();
  pkit::process_options o;
  o.out = pkit::stdio::fd(pipe.write.get());
  pkit::process p{child_command({"write", "1", "via-fd"}), o};
  p.start();
  pipe.write.reset();  // the child holds its own copy
  BOOST_TEST(read_all(pipe.read.get()) == "via-fd");
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(an_fd_stream_can_serve_as_stdin_and_stderr) {
  auto in = make_pipe();
  auto err = make_pipe();
  pkit::process_options o;
  o.in = pkit::stdio::fd(in.read.get());
  o.out = pkit::stdio::fd(err.write.get());  // echo stdin -> stdout, which is err pipe
  o.err = pkit::stdio::fd(err.write.get());
  pkit::process p{child_command({"echo"}), o};
  p.start();
  in.read.reset();
  err.write.reset();
  BOOST_TEST_REQUIRE(write_all(in.write.get(), "ping"));
  in.write.reset();
  BOOST_TEST(read_all(err.read.get()) == "ping");
  BOOST_TEST(p.join() == 0);
}

// ---------------------------------------------------------------------------
// Process groups
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_program_leads_a_new_process_group_by_default) {
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command({"pgid"}), o};
  const pid_t pid = p.start();
  std::istringstream is(read_all(p.take_stdout_pipe().get()));
  pid_t cpid = 0, pgid = 0, sid = 0;
  is >> cpid >> pgid >> sid;
  BOOST_TEST(cpid == pid);
  BOOST_TEST(pgid == pid);
  BOOST_TEST(sid == ::getsid(0));
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(the_new_process_group_exists_as_soon_as_start_returns) {
  // setpgid is done by the parent too, so there is no window after start() in which a
  // signal to the group would miss the child.
  pkit::process p{child_command({"pause"})};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start();
  BOOST_TEST(::getpgid(pid) == pid);
  p.terminate(pkit::wait);
}

BOOST_AUTO_TEST_CASE(without_new_process_group_a_program_stays_in_the_parent_group) {
  pkit::process_options o;
  o.new_process_group = false;
  const auto r = run_capture(child_command({"pgid"}), o);
  std::istringstream is(r.out);
  pid_t cpid = 0, pgid = 0;
  is >> cpid >> pgid;
  BOOST_TEST(pgid == ::getpgrp());
  BOOST_TEST(cpid != ::getpgrp());
}

// ---------------------------------------------------------------------------
// Resource limits
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(resource_limits_are_set_in_the_child_before_exec) {
  auto cmd = child_command({"rlimit", "nofile"});
  cmd.limits.push_back({RLIMIT_NOFILE, 64, 128});
  const auto r = run_capture(cmd);
  BOOST_TEST(r.out == "64 128\n");
  BOOST_TEST(r.code == 0);

  rlimit own{};
  ::getrlimit(RLIMIT_NOFILE, &own);
  BOOST_TEST(own.rlim_cur != 64u);  // the parent's limit is untouched
}

BOOST_AUTO_TEST_CASE(several_resource_limits_apply_together) {
  auto cmd = child_command({"rlimit", "core"});
  cmd.limits.push_back({RLIMIT_NOFILE, 100, 200});
  cmd.limits.push_back({RLIMIT_CORE, 0, 0});
  BOOST_TEST(run_capture(cmd).out == "0 0\n");
}

BOOST_AUTO_TEST_CASE(an_invalid_resource_limit_fails_start_at_the_setrlimit_stage) {
  auto cmd = child_command({"exit", "0"});
  cmd.limits.push_back({RLIMIT_NOFILE, 200, 100});  // soft above hard
  pkit::process p{cmd};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == std::errc::invalid_argument);
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "setrlimit");
  check_no_child_left();
}

// ---------------------------------------------------------------------------
// Descriptors
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(pass_fds_gives_the_child_the_descriptor_under_the_requested_number) {
  auto pipe = make_pipe();
  pkit::process_options o;
  o.pass_fds.emplace_back(7, pipe.write.get());
  pkit::process p{child_command({"write", "7", "hello fd 7"}), o};
  p.start();
  pipe.write.reset();
  BOOST_TEST(read_all(pipe.read.get()) == "hello fd 7");
  BOOST_TEST(p.join() == 0);
}

namespace {

// The descriptors a child reports having when it is given `source` as its fd 7 (and
// /dev/null, a pipe, /dev/null as 0, 1, 2): exactly "0 1 2 7" is right.
void check_only_stdio_and_fd_7_arrive(int source) {
  pkit::process_options o;
  o.in = pkit::stdio::null();
  o.out = pkit::stdio::pipe();
  o.err = pkit::stdio::null();
  o.pass_fds.emplace_back(7, source);
  const auto r = run_capture(child_command({"fds"}), o);
  BOOST_TEST(r.out == "0 1 2 7\n");
  BOOST_TEST(r.code == 0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_program_child_gets_only_stdio_and_the_passed_fds) {
  auto pipe = make_pipe();
  auto unrelated = make_pipe();
  // A parent descriptor without close-on-exec must not leak either.
  pkit::unique_fd inheritable{::dup(unrelated.write.get())};
  BOOST_TEST_REQUIRE(inheritable.get() >= 0);
  check_only_stdio_and_fd_7_arrive(pipe.write.get());
}

BOOST_AUTO_TEST_CASE(a_program_started_by_a_parent_with_many_descriptors_gets_exactly_its_own) {
  // The child copies only the low part of the parent's descriptor table (up to the
  // highest source it needs): sources opened after hundreds of others — the passed fd
  // and stdout's pipe — must still arrive, and nothing else.
  rlimit lim{};
  BOOST_TEST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
  const rlim_t many_count = std::min<rlim_t>(2000, lim.rlim_cur > 100 ? lim.rlim_cur - 100 : 0);
  std::vector<pkit::unique_fd> many;
  for (rlim_t i = 0; i < many_count; ++i) many.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto pipe = make_pipe();
  BOOST_TEST_REQUIRE(pipe.write.get() > 500);
  check_only_stdio_and_fd_7_arrive(pipe.write.get());
}

BOOST_AUTO_TEST_CASE(pass_fds_can_swap_descriptor_numbers) {
  auto first = make_pipe();
  auto second = make_pipe();
  // Put the two write ends at fd numbers a and b, then ask for them swapped: the child's
  // a must be the parent's b and vice versa (a naive dup2 sequence clobbers one).
  pkit::unique_fd a{::fcntl(first.write.get(), F_DUPFD_CLOEXEC, 100)};
  pkit::unique_fd b{::fcntl(second.write.get(), F_DUPFD_CLOEXEC, 100)};
  BOOST_TEST_REQUIRE(a.get() >= 100);
  BOOST_TEST_REQUIRE(b.get() >= 100);
  first.write.reset();
  second.write.reset();

  pkit::process_options o;
  o.pass_fds = {{a.get(), b.get()}, {b.get(), a.get()}};
  {
    pkit::process p{child_command({"write", std::to_string(a.get()), "to-a"}), o};
    p.start();
    BOOST_TEST(p.join() == 0);
  }
  {
    pkit::process p{child_command({"write", std::to_string(b.get()), "to-b"}), o};
    p.start();
    BOOST_TEST(p.join() == 0);
  }
  a.reset();
  b.reset();
  BOOST_TEST(read_all(second.read.get()) == "to-a");
  BOOST_TEST(read_all(first.read.get()) == "to-b");
}

BOOST_AUTO_TEST_CASE(a_negative_child_fd_number_is_rejected_with_invalid_argument) {
  auto pipe = make_pipe();
  pkit::process_options o;
  o.pass_fds.emplace_back(-1, pipe.write.get());
  pkit::process p{child_command({"exit", "0"}), o};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == pkit::errc::invalid_argument);
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(duplicate_child_fd_numbers_are_rejected_with_invalid_argument) {
  auto a = make_pipe();
  auto b = make_pipe();
  pkit::process_options o;
  o.pass_fds = {{7, a.write.get()}, {7, b.write.get()}};
  pkit::process p{child_command({"exit", "0"}), o};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == pkit::errc::invalid_argument);
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(a_finished_program_run_leaves_no_descriptor_behind) {
  warm_up();
  const auto before = open_fds();
  {
    pkit::process_options o;
    o.in = pkit::stdio::pipe();
    o.out = pkit::stdio::pipe();
    o.err = pkit::stdio::pipe();
    o.notify_fd = 3;
    pkit::process p{child_command({"notify", "3", "0"}), o};
    p.start(pkit::wait);
    p.terminate(pkit::wait);
  }
  check_fds_unchanged(before);
  BOOST_TEST(zombie_children().empty());
}

// ---------------------------------------------------------------------------
// Signals at start
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_program_starts_with_default_dispositions_and_an_empty_signal_mask) {
  signal_disposition_guard ignore_usr1{SIGUSR1, SIG_IGN};
  signal_disposition_guard ignore_pipe{SIGPIPE, SIG_IGN};
  signal_block_guard block{SIGUSR2, SIGTERM};
  const auto r = run_capture(child_command({"signals"}));
  BOOST_TEST(r.code == 0);
  BOOST_TEST(all_zero_hex(status_field(r.out, "SigBlk:")), r.out);
  BOOST_TEST(all_zero_hex(status_field(r.out, "SigIgn:")), r.out);
  BOOST_TEST(all_zero_hex(status_field(r.out, "SigCgt:")), r.out);
}

BOOST_AUTO_TEST_CASE(a_sigterm_sent_right_after_start_kills_a_program_even_if_the_parent_ignores_it) {
  signal_disposition_guard ignore{SIGTERM, SIG_IGN};
  pkit::process p{child_command({"pause"})};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start();
  BOOST_TEST_REQUIRE(::kill(pid, SIGTERM) == 0);
  BOOST_TEST(p.join(event_timeout) == std::optional<int>{-SIGTERM});
}

// ---------------------------------------------------------------------------
// Readiness notification
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(start_with_wait_returns_only_after_the_readiness_newline) {
  // The shell writes a marker to stdout, then the newline to fd 3. If start(wait)
  // returns only after the newline, the marker is already in the pipe.
  pkit::process_options o;
  o.notify_fd = 3;
  o.out = pkit::stdio::pipe();
  pkit::process p{pkit::command{"/bin/sh", "-c",
                                "sleep 0.3; printf marker; printf '\\n' >&3; exec \"$0\" pause",
                                child_path()},
                  o};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  BOOST_TEST(read_available(p.take_stdout_pipe().get()) == "marker");
  BOOST_TEST(p.is_alive());
  p.terminate(pkit::wait);
}

BOOST_AUTO_TEST_CASE(start_with_wait_on_a_notifying_child_returns_once_it_stopped_sleeping) {
  // Helper mode `notify 3 300`: sleep 300 ms, write the newline, pause. Once start(wait)
  // has returned the child must be past its sleep (its current syscall is not a sleep).
  pkit::process_options o;
  o.notify_fd = 3;
  pkit::process p{child_command({"notify", "3", "300"}), o};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);
  std::istringstream is(read_text_file("/proc/" + std::to_string(pid) + "/syscall"));
  std::string current;
  is >> current;
  BOOST_TEST_MESSAGE("child's current syscall: " << current);
  BOOST_TEST_REQUIRE(!current.empty());
  BOOST_TEST(current != std::to_string(SYS_clock_nanosleep));
#ifdef SYS_nanosleep
  BOOST_TEST(current != std::to_string(SYS_nanosleep));
#endif
  p.terminate(pkit::wait);
}

BOOST_AUTO_TEST_CASE(a_child_that_never_notifies_fails_start_with_start_timeout_and_is_reaped) {
  warm_up();
  const auto fds_before = open_fds();
  pkit::process_options o;
  o.notify_fd = 3;
  o.ready_timeout = 100ms;
  pkit::process p{child_command({"pause"}), o};
  std::error_code ec;
  p.start(pkit::wait, ec);
  BOOST_TEST(ec == pkit::errc::start_timeout);
  BOOST_TEST(!p.is_alive());
  BOOST_TEST(!p.pid().has_value());
  check_no_child_left();
  check_fds_unchanged(fds_before);

  BOOST_CHECK_EXCEPTION(p.start(pkit::wait), std::system_error,
                        has_code(pkit::errc::start_timeout));
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(a_child_that_notifies_after_the_ready_timeout_fails_with_start_timeout) {
  pkit::process_options o;
  o.notify_fd = 3;
  o.ready_timeout = 50ms;
  pkit::process p{child_command({"notify", "3", "2000"}), o};
  std::error_code ec;
  p.start(pkit::wait, ec);
  BOOST_TEST(ec == pkit::errc::start_timeout);
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(a_child_that_dies_before_notifying_fails_with_died_before_ready) {
  pkit::process_options o;
  o.notify_fd = 3;
  pkit::process p{child_command({"exit", "3"}), o};
  std::error_code ec;
  p.start(pkit::wait, ec);
  BOOST_TEST(ec == pkit::errc::died_before_ready);
  BOOST_TEST(!p.is_alive());
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(the_notify_fd_is_the_only_extra_descriptor_a_notifying_child_gets) {
  pkit::process_options o;
  o.notify_fd = 3;
  o.in = pkit::stdio::null();
  o.err = pkit::stdio::null();
  const auto r = run_capture(child_command({"fds"}), o);
  BOOST_TEST(r.out == "0 1 2 3\n");
}

// ---------------------------------------------------------------------------
// Graceful then forced stop
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stop_kills_a_program_that_ignores_sigterm_after_the_timeout) {
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command({"ignore-term"}), o};
  kill_on_exit cleanup{p};
  const pid_t pid = p.start(pkit::wait);
  BOOST_TEST_REQUIRE(read_line(p.take_stdout_pipe().get()) == "ready");

  const auto s = p.stop(pkit::stop_policy{SIGTERM, 200ms, true});
  BOOST_TEST(s == pkit::exit_status::killed(SIGKILL));
  BOOST_TEST(!p.is_alive());
  BOOST_TEST(!proc_exists(pid));
}

BOOST_AUTO_TEST_CASE(stop_returns_the_exit_code_of_a_program_that_traps_sigterm) {
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command({"trap-term", "21"}), o};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  BOOST_TEST_REQUIRE(read_line(p.take_stdout_pipe().get()) == "ready");
  BOOST_TEST(p.stop(pkit::stop_policy{SIGTERM, event_timeout, true}) ==
             pkit::exit_status::exited(21));
}

BOOST_AUTO_TEST_CASE(stop_with_kill_group_stops_what_a_program_left_in_its_group) {
  // sh runs the helper in the background (same process group, no job control) and
  // prints its pid; both hold stdout, so EOF on it means both are dead.
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  pkit::process p{pkit::command{"/bin/sh", "-c", "\"$0\" pause & echo $!; wait", child_path()},
                  o};
  kill_on_exit cleanup{p};
  p.start(pkit::wait);
  pkit::unique_fd out = p.take_stdout_pipe();
  const pid_t grandchild = std::stoi(read_line(out.get()));
  BOOST_TEST(is_running(grandchild));

  const auto s = p.stop(pkit::stop_policy{SIGTERM, event_timeout, true});
  BOOST_TEST(s == pkit::exit_status::killed(SIGTERM));
  const bool died = eof_within(out.get());
  BOOST_TEST(died);
  if (!died) ::kill(grandchild, SIGKILL);
  reap_if_ours(grandchild);
}

BOOST_AUTO_TEST_CASE(destroying_a_running_program_process_stops_and_reaps_it) {
  pid_t pid = 0;
  {
    pkit::process_options o;
    o.out = pkit::stdio::pipe();
    o.stop = pkit::stop_policy{SIGTERM, 100ms, true};
    pkit::process p{child_command({"ignore-term"}), o};
    pid = p.start(pkit::wait);
    BOOST_TEST_REQUIRE(read_line(p.take_stdout_pipe().get()) == "ready");
  }
  BOOST_TEST(!is_unreaped_child(pid));
  BOOST_TEST(!proc_exists(pid));
}

// ---------------------------------------------------------------------------
// Exec failures
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_missing_program_fails_start_at_the_exec_stage_with_enoent) {
  warm_up();
  const auto fds_before = open_fds();
  const std::string missing = "/nonexistent-pkit-dir/no-such-program";
  pkit::process p{pkit::command{missing, "arg"}};

  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == std::errc::no_such_file_or_directory);
  BOOST_TEST(ec.category() == std::system_category());
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "exec");
  BOOST_TEST(p.last_failure()->program == missing);
  BOOST_TEST(p.last_failure()->error == ec);
  BOOST_TEST(!p.is_alive());
  BOOST_TEST(!p.pid().has_value());
  check_no_child_left();
  check_fds_unchanged(fds_before);

  try {
    p.start();
    BOOST_FAIL("start() of a missing program did not throw");
  } catch (const pkit::spawn_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find(missing) != std::string::npos, what);
    BOOST_TEST(what.find("exec") != std::string::npos, what);
    BOOST_TEST(e.code() == std::errc::no_such_file_or_directory);
    BOOST_TEST(e.failure().stage == "exec");
  }
  check_no_child_left();
  check_fds_unchanged(fds_before);
}

BOOST_AUTO_TEST_CASE(a_program_missing_from_path_fails_with_enoent) {
  pkit::process p{pkit::command{"pkit-no-such-program-on-path"}};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == std::errc::no_such_file_or_directory);
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "exec");
  BOOST_TEST(p.last_failure()->to_string().find("pkit-no-such-program-on-path") != std::string::npos);
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(a_file_without_execute_permission_fails_with_permission_denied) {
  temp_dir dir;
  const auto path = dir.file("not-executable");
  write_text_file(path, "#!/bin/sh\nexit 0\n", 0644);
  pkit::process p{pkit::command{path}};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == std::errc::permission_denied);
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "exec");
  BOOST_TEST(p.last_failure()->program == path);
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(a_directory_as_program_fails_with_permission_denied) {
  temp_dir dir;
  pkit::process p{pkit::command{dir.path().string()}};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == std::errc::permission_denied);
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "exec");
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(start_with_wait_reports_exec_failures_with_their_errno) {
  pkit::process p{pkit::command{"/nonexistent-pkit-dir/no-such-program"}};
  std::error_code ec;
  p.start(pkit::wait, ec);
  BOOST_TEST(ec == std::errc::no_such_file_or_directory);
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "exec");
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(repeated_failed_starts_leak_neither_descriptors_nor_zombies) {
  warm_up();
  const auto fds_before = open_fds();
  pkit::process p{pkit::command{"/nonexistent-pkit-dir/no-such-program"}};
  for (int i = 0; i < 20; ++i) {
    std::error_code ec;
    if (i % 2 == 0) {
      p.start(ec);
    } else {
      p.start(pkit::wait, ec);
    }
    BOOST_TEST_REQUIRE(ec == std::errc::no_such_file_or_directory);
  }
  check_no_child_left();
  check_fds_unchanged(fds_before);
}

// Threads spawning at the same moment (each keeps a stack of its own for its children's
// steps before exec): every child runs its own command, every failure reaches its own
// caller. (Children sharing one stack would not reliably show here: their frames are
// nearly alike. The stack is per thread by construction — thread_local.)
BOOST_AUTO_TEST_CASE(programs_spawned_from_many_threads_at_once_each_run_their_own_command) {
  constexpr int threads = 8, per_thread = 25;
  std::latch go(threads);
  std::vector<std::future<std::vector<std::string>>> results;
  for (int t = 0; t < threads; ++t)
    results.push_back(std::async(std::launch::async, [t, &go] {
      std::vector<std::string> wrong;
      go.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        const int code = (t * per_thread + i) % 200 + 1;
        pkit::process p{child_command({"exit", std::to_string(code)})};
        std::error_code ec;
        p.start(ec);
        if (ec) {
          wrong.push_back("start: " + ec.message());
          continue;
        }
        const int got = p.join();
        if (got != code) wrong.push_back("expected " + std::to_string(code) + ", got " + std::to_string(got));
      }
      // A missing program from every thread too: the exec stage's report travels back
      // through the child's stack frames.
      pkit::process missing{pkit::command{"/nonexistent-pkit-dir/no-such-program"}};
      std::error_code ec;
      missing.start(ec);
      if (ec != std::errc::no_such_file_or_directory) wrong.push_back("missing program: " + ec.message());
      return wrong;
    }));
  for (auto& r : results) {
    const auto wrong = r.get();
    BOOST_TEST(wrong.empty(), wrong.size() << " wrong, first: " << (wrong.empty() ? "" : wrong.front()));
  }
  check_no_child_left();
}

// The same with spawn_on_calling_thread: each worker creates its children itself (the
// per-thread path: its own spawn stack, no hand-off to the spawn thread), all threads at
// once. The children wait for EOF on a shared barrier pipe, so while they live each
// worker checks through /proc/self/task/TID/children that it is their parent (with the
// option ignored the spawn thread would be). A child made on its calling thread dies with
// that thread (PR_SET_PDEATHSIG), so every worker joins its children before it ends.
BOOST_AUTO_TEST_CASE(programs_spawned_on_their_calling_threads_from_many_threads_each_exit_with_their_own_code) {
  constexpr int threads = 8, per_thread = 12;
  auto barrier = make_pipe();
  std::latch spawned(threads + 1);
  std::vector<std::future<std::vector<std::string>>> results;
  for (int t = 0; t < threads; ++t)
    results.push_back(std::async(std::launch::async, [t, &spawned, &barrier] {
      std::vector<std::string> wrong;
      std::vector<std::unique_ptr<pkit::process>> mine;
      std::vector<pid_t> pids;
      for (int i = 0; i < per_thread; ++i) {
        const int code = (t * per_thread + i) % 200 + 1;
        pkit::process_options o;
        o.spawn_on_calling_thread = true;
        o.in = pkit::stdio::fd(barrier.read.get());
        mine.push_back(std::make_unique<pkit::process>(child_command({"exit-at-eof", std::to_string(code)}), o));
        std::error_code ec;
        const pid_t pid = mine.back()->start(ec);
        if (ec) wrong.push_back("start: " + ec.message());
        else pids.push_back(pid);
      }
      std::sort(pids.begin(), pids.end());
      const auto made_here = children_of_thread(static_cast<pid_t>(::gettid()));
      if (made_here != pids)
        wrong.push_back("this thread is the parent of " + std::to_string(made_here.size()) + " of its " +
                        std::to_string(pids.size()) + " children");
      spawned.arrive_and_wait();  // every child of every thread exists
      for (int i = 0; i < per_thread; ++i) {
        const int code = (t * per_thread + i) % 200 + 1;
        const auto got = mine[i]->join(event_timeout);
        if (got != code)
          wrong.push_back("expected " + std::to_string(code) + ", got " + (got ? std::to_string(*got) : "no exit"));
        if (!got) {
          mine[i]->kill();
          mine[i]->join(event_timeout);
        }
      }
      return wrong;  // the thread ends only after its children were joined
    }));
  spawned.arrive_and_wait();
  barrier.write.reset();  // EOF: every child exits with its code
  barrier.read.reset();
  for (auto& r : results) {
    const auto wrong = r.get();
    BOOST_TEST(wrong.empty(), wrong.size() << " wrong, first: " << (wrong.empty() ? "" : wrong.front()));
  }
  check_no_child_left();
}

BOOST_AUTO_TEST_CASE(last_failure_is_empty_until_a_start_fails) {
  pkit::process p{child_command({"exit", "0"})};
  BOOST_TEST(!p.last_failure().has_value());
  p.start();
  BOOST_TEST(!p.last_failure().has_value());
  p.join();
}

// ---------------------------------------------------------------------------
// Validation: rejected before anything is forked
// ---------------------------------------------------------------------------

namespace {
/// Starts `cmd` (passing a pipe as fd 3 so a child that did run could be noticed) and
/// checks it failed in validation with `expected`, before any child existed.
template <class Code>
void check_rejected_before_fork(pkit::command cmd, Code expected) {
  warm_up();
  const auto fds_before = open_fds();
  auto witness = make_pipe();
  pkit::process_options o;
  o.pass_fds.emplace_back(3, witness.write.get());
  pkit::process p{std::move(cmd), o};
  std::error_code ec;
  p.start(ec);
  BOOST_TEST(ec == expected);
  BOOST_TEST_REQUIRE(p.last_failure().has_value());
  BOOST_TEST(p.last_failure()->stage == "validate");
  BOOST_TEST(!p.pid().has_value());
  BOOST_CHECK_EXCEPTION(p.start(), std::system_error, has_code(expected));
  witness.write.reset();
  BOOST_TEST(read_all(witness.read.get()).empty());  // no child wrote to fd 3
  check_no_child_left();
  witness.read.reset();
  check_fds_unchanged(fds_before);
}
}  // namespace

BOOST_AUTO_TEST_CASE(an_empty_argv_is_rejected_with_invalid_argument) {
  check_rejected_before_fork(pkit::command{}, pkit::errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(an_embedded_nul_in_an_argument_is_rejected_with_invalid_argument) {
  check_rejected_before_fork(
      child_command({"write", "3", std::string("before\0after", 12)}),
      pkit::errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(an_embedded_nul_in_the_program_is_rejected_with_invalid_argument) {
  check_rejected_before_fork(pkit::command{std::string("/bin/sh\0x", 9), "-c", "echo x >&3"},
                             pkit::errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(an_embedded_nul_in_an_environment_entry_is_rejected_with_invalid_argument) {
  auto cmd = child_command({"write", "3", "ran"});
  cmd.env = {std::string("PKIT_A=x\0y", 10)};
  check_rejected_before_fork(cmd, pkit::errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(an_argument_over_the_kernel_string_limit_is_rejected_with_e2big) {
  // MAX_ARG_STRLEN is 32 pages (128 KiB) per string.
  check_rejected_before_fork(child_command({"write", "3", std::string(256 * 1024, 'a')}),
                             std::errc::argument_list_too_long);
}

BOOST_AUTO_TEST_CASE(arguments_over_the_total_kernel_limit_are_rejected_with_e2big) {
  // Each argument is under the per-string limit; together they exceed any ARG_MAX the
  // kernel allows (at most 3/4 of 8 MiB).
  std::vector<std::string> args{"write", "3", "ran"};
  for (int i = 0; i < 100; ++i) args.emplace_back(100 * 1024, 'b');
  check_rejected_before_fork(child_command(args), std::errc::argument_list_too_long);
}

BOOST_AUTO_TEST_CASE(an_environment_over_the_kernel_limit_is_rejected_with_e2big) {
  auto cmd = child_command({"write", "3", "ran"});
  cmd.env = {"PKIT_HUGE=" + std::string(256 * 1024, 'c')};
  check_rejected_before_fork(cmd, std::errc::argument_list_too_long);
}
