// How a child that runs C++ code (a callable forked by pkit::process, a fork-server
// target) ends: what the target wrote through iostreams reaches its stdout/stderr even
// without a newline or an explicit flush, and nothing the parent had buffered before the
// fork is written again by the child.
//
// Built twice (tests/libpkit/CMakeLists.txt): as libpkit_child_exit_test with the default
// std::ios::sync_with_stdio(true) (iostreams write straight into C stdio), and as
// libpkit_child_exit_unsynced_test with PKIT_TEST_UNSYNCED_IOSTREAMS, which calls
// std::ios::sync_with_stdio(false) before main (each standard stream then has a buffer
// of its own, which _exit would drop and a naive flush would write twice).

#define BOOST_TEST_MODULE libpkit child exit (iostreams)
#include "test_support.hpp"

#include <pkit/fork_server.hpp>
#include <pkit/process.hpp>
#include <pkit/target.hpp>

#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace pkit_test;

namespace {

#ifdef PKIT_TEST_UNSYNCED_IOSTREAMS
// Before main, so before Boost.Test writes anything and before the fork server exists.
const bool unsynced = [] {
  std::ios::sync_with_stdio(false);
  return true;
}();
#endif

// Text left in the parent's standard streams before a fork (no newline, no flush). In a
// child it is the parent's, not the child's: it must not reach the child's streams.
constexpr const char* parent_text = "[parent text, unflushed]";

void leave_unflushed_parent_text() {
  std::cout << parent_text;
  std::clog << parent_text;
}

// Called after a case: the parent's own text goes out (once) on the test's output.
void flush_parent_text() {
  std::cout << std::endl;
  std::clog << std::endl;
}

std::optional<pkit::fork_server> server;

pkit::fork_server::registry make_registry() {
  pkit::fork_server::registry targets;
  targets.add("cout", [](const std::vector<std::string>& a) {
    std::cout << a.at(0);
    return 0;
  });
  targets.add("cout-exit-child", [](const std::vector<std::string>& a) -> int {
    std::cout << a.at(0);
    pkit::exit_child(6);
  });
  return targets;
}

// The server is a copy of this program from before any thread existed (the reaper thread
// starts with the first process); it starts with text pending in its parent's streams.
struct server_fixture {
  server_fixture() {
    leave_unflushed_parent_text();
    server.emplace(pkit::fork_server::start(make_registry()));
    flush_parent_text();
  }
  ~server_fixture() { server.reset(); }
};

struct outcome {
  pkit::exit_status status;
  std::string out;
  std::string err;
};

// Starts `p` (stdout and stderr pipes), reads both pipes to EOF and joins it.
outcome run_capturing(pkit::process& p) {
  leave_unflushed_parent_text();
  p.start();
  auto out = p.take_stdout_pipe();
  auto err = p.take_stderr_pipe();
  outcome o{pkit::exit_status{}, read_all(out.get()), read_all(err.get())};
  o.status = p.join_status();
  flush_parent_text();
  return o;
}

pkit::process_options piped() {
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  o.err = pkit::stdio::pipe();
  return o;
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(server_fixture);

BOOST_AUTO_TEST_CASE(text_a_callable_writes_to_cout_without_a_newline_reaches_its_stdout_once) {
  pkit::process p{[] { std::cout << "x"; }, piped()};
  const outcome o = run_capturing(p);
  BOOST_TEST(o.status == pkit::exit_status::exited(0));
  BOOST_TEST(o.out == "x");
  BOOST_TEST(o.err == "");
}

BOOST_AUTO_TEST_CASE(text_a_callable_writes_to_clog_and_cerr_reaches_its_stderr_once) {
  pkit::process p{[] {
                    std::clog << "log,";
                    std::cerr << "err";
                    std::clog << ",log";
                  },
                  piped()};
  const outcome o = run_capturing(p);
  BOOST_TEST(o.status == pkit::exit_status::exited(0));
  BOOST_TEST(o.out == "");
  // Each stream's text, whole and once (the order between clog and cerr is only defined
  // when both go through C stdio).
  BOOST_TEST(o.err.size() == std::string("log,err,log").size());
  BOOST_TEST(o.err.find("err") != std::string::npos);
  BOOST_TEST(o.err.find("log,") != std::string::npos);
  BOOST_TEST(o.err.find(",log") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(cout_text_is_flushed_when_the_callable_returns_a_code) {
  pkit::process p{[] {
                    std::cout << "code";
                    return 3;
                  },
                  piped()};
  const outcome o = run_capturing(p);
  BOOST_TEST(o.status == pkit::exit_status::exited(3));
  BOOST_TEST(o.out == "code");
}

BOOST_AUTO_TEST_CASE(cout_text_is_flushed_when_the_callable_calls_exit_child) {
  pkit::process p{[] {
                    std::cout << "exit_child";
                    pkit::exit_child(4);
                  },
                  piped()};
  const outcome o = run_capturing(p);
  BOOST_TEST(o.status == pkit::exit_status::exited(4));
  BOOST_TEST(o.out == "exit_child");
}

BOOST_AUTO_TEST_CASE(cout_text_is_flushed_when_the_callable_throws) {
  pkit::process p{[]() -> int {
                    std::cout << "thrown";
                    throw std::runtime_error("boom");
                  },
                  piped()};
  const outcome o = run_capturing(p);
  BOOST_TEST(o.status == pkit::exit_status::exited(1));
  BOOST_TEST(o.out == "thrown");
  BOOST_TEST(o.err.find("uncaught exception: boom") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(cout_text_of_a_fork_server_target_reaches_its_stdout_once) {
  pkit::process p{server->target("cout", {"served"}), piped()};
  const outcome o = run_capturing(p);
  BOOST_TEST(o.status == pkit::exit_status::exited(0));
  BOOST_TEST(o.out == "served");
  BOOST_TEST(o.err == "");
}

BOOST_AUTO_TEST_CASE(cout_text_of_a_fork_server_target_is_flushed_on_exit_child) {
  pkit::process p{server->target("cout-exit-child", {"served"}), piped()};
  const outcome o = run_capturing(p);
  BOOST_TEST(o.status == pkit::exit_status::exited(6));
  BOOST_TEST(o.out == "served");
}

// An external program's child shares the parent's memory until it execs: it must not
// write (flush) anything the parent had buffered.
BOOST_AUTO_TEST_CASE(a_program_child_writes_none_of_the_parents_buffered_text) {
  pkit::process p{child_command({"exit", "0"}), piped()};
  const outcome o = run_capturing(p);
  BOOST_TEST(o.status == pkit::exit_status::exited(0));
  BOOST_TEST(o.out == "");
  BOOST_TEST(o.err == "");
}
