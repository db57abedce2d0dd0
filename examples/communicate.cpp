// Capturing output (Python's Popen.communicate): pkit::communicate writes the input to the
// child's stdin, reads its stdout and stderr together until both end, and joins it --
// without deadlock however much each stream carries. A timeout keeps what was read and
// leaves the child running; a pkit::communicator goes on where the timed-out call stopped.

#include "check.hpp"

#include <cstdio>

// [snippet]
#include <pkit/communicate.hpp>
#include <pkit/process.hpp>

#include <chrono>
#include <csignal>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

void capture_stdout_and_stderr() {
  pkit::process_options options;
  options.in = pkit::stdio::pipe();
  options.out = pkit::stdio::pipe();
  options.err = pkit::stdio::pipe();
  pkit::process sorter{pkit::command{"sh", "-c", "sort; echo sorted >&2; exit 2"}, options};
  sorter.start();

  pkit::communicate_options io;
  io.input = "pear\napple\nfig\n";  // then stdin is closed
  io.timeout = 10s;                 // for the whole call; none by default
  pkit::communicate_result r = pkit::communicate(sorter, io);  // throws on an error

  check(r.out == "apple\nfig\npear\n", "stdout: the sorted input");
  check(r.err == "sorted\n", "stderr: " + r.err.substr(0, r.err.size() - 1));
  check(r.status->code() == 2, "exit code 2");
}
// [/snippet]

// [snippet]
void give_up_then_resume() {
  pkit::process_options options;
  options.out = pkit::stdio::pipe();
  pkit::process stuck{pkit::command{"sh", "-c", "echo working; exec sleep 60"}, options};
  stuck.start();

  pkit::communicator talk{stuck};  // takes the pipe ends; keeps what it reads
  std::error_code ec;
  talk.communicate(200ms, ec);  // stdout stays open: gives up after 200 ms
  check(ec == std::errc::timed_out, "timed out: " + ec.message());
  check(stuck.is_alive(), "communicate never kills the child: the caller decides");

  stuck.kill();
  pkit::communicate_result r = talk.communicate();  // goes on where it stopped
  std::printf("  it printed \"%s\" before SIGKILL\n", r.out.substr(0, r.out.size() - 1).c_str());
  check(r.status->signal() == SIGKILL, "then killed: " + r.status->to_string());
}
// [/snippet]

int main() {
  return run_example("communicate", [] {
    std::printf("input, stdout and stderr at once:\n");
    capture_stdout_and_stderr();
    std::printf("a timeout, then the rest:\n");
    give_up_then_resume();
  });
}
