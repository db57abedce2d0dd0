// log_capture::when_closed: what a tail's end waits for when its program goes — every
// pipe open at that moment at EOF and its last line delivered, and nothing more.

#define BOOST_TEST_MODULE log_capture_end
#include <boost/test/unit_test.hpp>

#include <pkit/tool/log_capture.hpp>
#include <pkit/unique_fd.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using pkit::tool::captured_line;
using pkit::tool::log_capture;

/// What happened, in order: "line:TEXT" from a listener, "closed" from when_closed.
struct journal {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> entries;
  void add(std::string e) {
    std::lock_guard<std::mutex> lock(m);
    entries.push_back(std::move(e));
    cv.notify_all();
  }
  bool wait_for(const std::string& e) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, 10s, [&] { return std::find(entries.begin(), entries.end(), e) != entries.end(); });
  }
  std::vector<std::string> copy() {
    std::lock_guard<std::mutex> lock(m);
    return entries;
  }
};

struct pipe_pair {
  pkit::unique_fd read, write;
  pipe_pair() {
    int fds[2];
    BOOST_TEST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(with_no_pipe_open_it_calls_at_once) {
  log_capture capture;
  bool called = false;
  capture.when_closed("nobody", [&] { called = true; });
  BOOST_TEST(called);
}

// The end of a removed program's tail came before the killed run's last (partial) line
// when the reader had taken the pipe out of its table but not yet delivered that line.
BOOST_AUTO_TEST_CASE(it_comes_after_the_last_partial_line_of_the_pipe) {
  log_capture capture;
  journal j;
  pipe_pair p;
  capture.attach("prog", 1, 1, std::move(p.read));
  auto h = capture.add_listener("prog", [&](const captured_line& l) { j.add("line:" + l.text); });
  BOOST_TEST_REQUIRE(::write(p.write.get(), "whole\npartial", 13) == 13);
  BOOST_TEST_REQUIRE(j.wait_for("line:whole"));
  capture.when_closed("prog", [&] { j.add("closed"); });
  BOOST_TEST(j.copy() == (std::vector<std::string>{"line:whole"}), "not before the EOF");
  p.write.reset();
  BOOST_TEST_REQUIRE(j.wait_for("closed"));
  BOOST_TEST(j.copy() == (std::vector<std::string>{"line:whole", "line:partial", "closed"}));
}

// A run attached after the call (a program of the same name added again while a
// descendant still held the old pipe) is not waited for.
BOOST_AUTO_TEST_CASE(it_waits_only_for_the_pipes_open_when_asked) {
  log_capture capture;
  journal j;
  pipe_pair old_run, new_run;
  capture.attach("prog", 1, 1, std::move(old_run.read));
  capture.when_closed("prog", [&] { j.add("closed"); });
  capture.attach("prog", 1, 2, std::move(new_run.read));
  old_run.write.reset();
  BOOST_TEST(j.wait_for("closed"), "the new run's open pipe held it up");
  BOOST_TEST(capture.open_pipes() == 1u);
}

// Left waiting when the capture stops (a descendant holds the pipe): called by stop().
BOOST_AUTO_TEST_CASE(what_still_waits_is_called_by_stop) {
  journal j;
  pipe_pair p;
  {
    log_capture::options o;
    o.drain_timeout = 100ms;
    log_capture capture(o);
    capture.attach("prog", 1, 1, std::move(p.read));
    capture.when_closed("prog", [&] { j.add("closed"); });
    capture.stop();
  }
  BOOST_TEST(j.copy() == (std::vector<std::string>{"closed"}));
}
