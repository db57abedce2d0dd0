// Behaviour of pkit::communicate / pkit::communicator: feeding stdin while reading stdout
// and stderr together without deadlock, EPIPE from a child that does not read, timeouts
// that keep what was read (and never kill the child), output limits, streams that are not
// pipes, the reaper thread, and descriptors.
//
// The children are the helper pkit_test_child, /bin/sh with cat/head/tr, and callables
// forked from this process where the exact interleaving of the streams matters.

#define BOOST_TEST_MODULE libpkit communicate
#include "test_support.hpp"

#include <pkit/communicate.hpp>
#include <pkit/process.hpp>

#include <future>
#include <limits>

using namespace pkit_test;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t mib = 1024 * 1024;

/// `size` bytes of a pattern that a shifted or dropped chunk cannot reproduce.
std::string pattern(std::size_t size, unsigned seed) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    s[i] = static_cast<char>((i * 131 + i / 4099 + seed) % 251);
  }
  return s;
}

pkit::process_options piped(bool in, bool out, bool err) {
  pkit::process_options o;
  if (in) o.in = pkit::stdio::pipe();
  if (out) o.out = pkit::stdio::pipe();
  if (err) o.err = pkit::stdio::pipe();
  return o;
}

pkit::command sh(const std::string& script) { return pkit::command{"sh", "-c", script}; }

/// Starts and joins one program, so lazily created state (the reaper) exists before a
/// test counts descriptors.
void warm_up() {
  pkit::process p{child_command({"exit", "0"})};
  p.start(pkit::wait);
  p.join();
}

/// The calling thread's signal mask, as text.
std::string blocked_signals() {
  sigset_t set;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &set);
  std::string out;
  for (int s = 1; s < NSIG; ++s) out += sigismember(&set, s) == 1 ? '1' : '0';
  return out;
}

bool sigpipe_pending() {
  sigset_t set;
  sigemptyset(&set);
  ::sigpending(&set);
  return sigismember(&set, SIGPIPE) == 1;
}

}  // namespace

// A naive parent that writes all of stdin before reading deadlocks here: the child
// answers every chunk of input on stdout AND stderr, so both output pipes fill while the
// parent is still writing.
BOOST_AUTO_TEST_CASE(ten_mib_each_way_on_three_pipes_interleaved_completes_exactly) {
  const std::size_t size = 10 * mib;
  const std::string input = pattern(size, 7);
  const std::string err_expected = pattern(size, 99);
  pkit::process p{[&err_expected] {
                    char buf[65536];
                    std::size_t err_done = 0;
                    for (;;) {
                      const ssize_t n = ::read(0, buf, sizeof buf);
                      if (n < 0 && errno == EINTR) continue;
                      if (n < 0) return 2;
                      if (n == 0) break;
                      if (!write_all(1, {buf, static_cast<std::size_t>(n)})) return 3;
                      const std::size_t e = std::min(err_expected.size() - err_done,
                                                     static_cast<std::size_t>(n));
                      if (!write_all(2, {err_expected.data() + err_done, e})) return 4;
                      err_done += e;
                    }
                    const std::string_view rest{err_expected.data() + err_done,
                                                err_expected.size() - err_done};
                    return write_all(2, rest) ? 0 : 5;
                  },
                  piped(true, true, true)};
  p.start();
  std::error_code ec;
  pkit::communicate_result r = pkit::communicate(p, {input, 60s, {}}, ec);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(r.out.size() == size);
  BOOST_TEST(r.err.size() == size);
  BOOST_TEST((r.out == input), "stdout is not the input echoed back");
  BOOST_TEST((r.err == err_expected), "stderr is not the expected pattern");
  BOOST_TEST(r.status == pkit::exit_status::exited(0));
}

// The same through an external program: cat echoes the input while a concurrent
// pipeline writes 10 MiB to stderr.
BOOST_AUTO_TEST_CASE(a_program_echoing_ten_mib_while_writing_ten_mib_to_stderr_completes) {
  const std::size_t size = 10 * mib;
  const std::string input = pattern(size, 3);
  pkit::process p{sh("{ head -c " + std::to_string(size) +
                     " /dev/zero | tr '\\000' e >&2; } & cat; wait; exit 4"),
                  piped(true, true, true)};
  p.start();
  pkit::communicate_result r = pkit::communicate(p, {input, 60s, {}});
  BOOST_TEST(r.out.size() == size);
  BOOST_TEST((r.out == input), "stdout is not the input echoed back");
  BOOST_TEST(r.err.size() == size);
  BOOST_TEST((r.err == std::string(size, 'e')), "stderr is not 10 MiB of 'e'");
  BOOST_TEST(r.status == pkit::exit_status::exited(4));
}

// Default SIGPIPE disposition: a SIGPIPE that reached the test would kill it.
BOOST_AUTO_TEST_CASE(input_for_a_child_that_exits_without_reading_is_no_error_and_no_sigpipe) {
  signal_disposition_guard dfl{SIGPIPE, SIG_DFL};
  const std::string mask_before = blocked_signals();
  BOOST_TEST_REQUIRE(!sigpipe_pending());

  // 4 MiB cannot fit in the pipe: the write must meet the closed read end.
  pkit::process p{child_command({"exit", "7"}), piped(true, true, true)};
  p.start();
  pkit::communicate_result r = pkit::communicate(p, {std::string(4 * mib, 'i'), 60s, {}});
  BOOST_TEST(r.status == pkit::exit_status::exited(7));
  BOOST_TEST(r.out.empty());
  BOOST_TEST(r.err.empty());

  // A child that reads a little and closes stdin: what it printed is kept.
  pkit::process head{sh("head -c 5"), piped(true, true, false)};
  head.start();
  r = pkit::communicate(head, {pattern(4 * mib, 1), 60s, {}});
  BOOST_TEST(r.status == pkit::exit_status::exited(0));
  BOOST_TEST((r.out == pattern(5, 1)));

  BOOST_TEST(!sigpipe_pending(), "a SIGPIPE was left pending");
  BOOST_TEST(blocked_signals() == mask_before, "the signal mask was not restored");
}

BOOST_AUTO_TEST_CASE(a_timeout_keeps_what_was_read_leaves_the_child_running_and_can_resume) {
  pkit::process p{sh("echo partial; echo oops >&2; exec sleep 1000"), piped(true, true, true)};
  p.start();
  pkit::communicator c{p, "unread input"};  // sleep never reads it: stays in the pipe

  // Each call gives up after 100 ms; the output arrives at some point of one of them.
  const auto give_up = std::chrono::steady_clock::now() + event_timeout;
  std::size_t calls = 0;
  while (c.out() != "partial\n" || c.err() != "oops\n") {
    BOOST_TEST_REQUIRE((std::chrono::steady_clock::now() < give_up), "no output: " << c.out());
    std::error_code ec;
    const auto begin = std::chrono::steady_clock::now();
    pkit::communicate_result r = c.communicate(100ms, ec);
    const auto took = std::chrono::steady_clock::now() - begin;
    BOOST_TEST_REQUIRE((ec == std::errc::timed_out), ec.message());
    BOOST_TEST((took >= 100ms), "gave up early");
    BOOST_TEST((took < 5s), "the timeout did not bound the call");
    BOOST_TEST(!r.status);
    BOOST_TEST(r.out == c.out());  // the partial result is what was read so far
    BOOST_TEST(r.err == c.err());
    ++calls;
  }
  BOOST_TEST(calls >= 1u);
  BOOST_TEST(p.is_alive(), "communicate must not kill the child");

  // The throwing form throws the same error.
  BOOST_CHECK_EXCEPTION(c.communicate(0ms), std::system_error, has_code(std::errc::timed_out));

  // The caller decides: kill; then the same communicator finishes, with everything.
  p.kill();
  pkit::communicate_result r = c.communicate(event_timeout);
  BOOST_TEST(r.out == "partial\n");
  BOOST_TEST(r.err == "oops\n");
  BOOST_TEST(r.status == pkit::exit_status::killed(SIGKILL));
}

BOOST_AUTO_TEST_CASE(the_error_code_form_returns_the_partial_output_of_a_timeout) {
  pkit::process_options o = piped(false, true, false);
  o.notify_fd = 3;  // start(wait) returns after "partial" is in the pipe
  pkit::process p{sh("echo partial; echo >&3; exec sleep 100"), o};
  p.start(pkit::wait);

  std::error_code ec;
  pkit::communicate_result r = pkit::communicate(p, {{}, 50ms, {}}, ec);
  BOOST_TEST((ec == std::errc::timed_out), ec.message());
  BOOST_TEST(r.out == "partial\n");
  BOOST_TEST(!r.status);
  BOOST_TEST(p.is_alive());
  BOOST_TEST(!p.take_stdout_pipe(), "the pipe end was taken from the process");
  p.kill();
  BOOST_TEST(p.join() == -SIGKILL);
}

// Python waits for end of file, and so does communicate: a grandchild holding stdout
// holds the call — but a timeout bounds it, and once the grandchild is gone the call
// completes with the child's status.
BOOST_AUTO_TEST_CASE(a_grandchild_keeping_stdout_open_is_bounded_by_the_timeout) {
  pkit::process p{sh("sleep 100 & echo $!; exit 5"), piped(false, true, false)};
  p.start();
  pkit::communicator c{p};
  BOOST_TEST_REQUIRE(p.join() == 5);  // the child itself is gone

  std::error_code ec;
  c.communicate(200ms, ec);
  BOOST_TEST_REQUIRE((ec == std::errc::timed_out), ec.message());
  BOOST_TEST_REQUIRE(!c.out().empty());
  const pid_t grandchild = std::stoi(c.out());
  BOOST_TEST_REQUIRE(grandchild > 0);
  BOOST_TEST(c.out() == std::to_string(grandchild) + "\n");

  BOOST_TEST_REQUIRE(::kill(grandchild, SIGKILL) == 0);
  pkit::communicate_result r = c.communicate(event_timeout);
  BOOST_TEST(r.out == std::to_string(grandchild) + "\n");
  BOOST_TEST(r.status == pkit::exit_status::exited(5));
  reap_if_ours(grandchild);
}

BOOST_AUTO_TEST_CASE(streams_that_are_not_pipes_give_empty_strings) {
  pkit::process none{sh("exit 3")};
  none.start();
  pkit::communicate_result r = pkit::communicate(none);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(r.err.empty());
  BOOST_TEST(r.status == pkit::exit_status::exited(3));

  pkit::process_options o = piped(false, false, true);
  o.out = pkit::stdio::null();
  pkit::process err_only{sh("echo out; echo err >&2"), o};
  err_only.start();
  r = pkit::communicate(err_only);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(r.err == "err\n");
  BOOST_TEST(r.status == pkit::exit_status::exited(0));
}

BOOST_AUTO_TEST_CASE(without_input_a_stdin_pipe_is_closed_so_the_child_sees_eof) {
  pkit::process cat{pkit::command{"cat"}, piped(true, true, false)};
  cat.start();
  pkit::communicate_result r = pkit::communicate(cat, {{}, event_timeout, {}});
  BOOST_TEST(r.out.empty());
  BOOST_TEST(r.status == pkit::exit_status::exited(0));
}

BOOST_AUTO_TEST_CASE(input_without_a_stdin_pipe_is_invalid_argument) {
  pkit::process p{sh("exit 0"), piped(false, true, false)};
  p.start();
  std::error_code ec;
  pkit::communicate(p, {"data", {}, {}}, ec);
  BOOST_TEST((ec == pkit::errc::invalid_argument), ec.message());
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(output_over_max_output_is_no_buffer_space_with_the_first_bytes_kept) {
  pkit::process p{child_command({"spew", "300000"}), piped(false, true, true)};
  p.start();
  pkit::communicator c{p, {}, 65536};
  std::error_code ec;
  pkit::communicate_result r = c.communicate(event_timeout, ec);
  BOOST_TEST((ec == std::errc::no_buffer_space), ec.message());
  BOOST_TEST(std::max(r.out.size(), r.err.size()) == 65536u);
  BOOST_TEST(r.out.size() <= 65536u);
  BOOST_TEST(r.err.size() <= 65536u);
  BOOST_TEST(r.out.find_first_not_of('x') == std::string::npos);
  BOOST_TEST(r.err.find_first_not_of('x') == std::string::npos);
  // Final: a further call repeats it.
  c.communicate(event_timeout, ec);
  BOOST_TEST((ec == std::errc::no_buffer_space));
  p.kill();
  p.join();

  // Exactly at the limit is no overflow.
  pkit::process exact{sh("head -c 1000 /dev/zero"), piped(false, true, false)};
  exact.start();
  r = pkit::communicate(exact, {{}, event_timeout, 1000});
  BOOST_TEST(r.out.size() == 1000u);
  BOOST_TEST(r.status == pkit::exit_status::exited(0));
}

BOOST_AUTO_TEST_CASE(on_the_reaper_thread_it_fails_with_would_deadlock) {
  std::promise<std::error_code> seen;
  pkit::process_options o = piped(false, true, false);
  o.on_exit = [&seen](pkit::process& self) {
    std::error_code ec;
    pkit::communicate(self, {}, ec);
    seen.set_value(ec);
  };
  pkit::process p{sh("echo hi"), o};
  p.start();
  auto f = seen.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready));
  const std::error_code ec = f.get();
  BOOST_TEST((ec == pkit::errc::would_deadlock), ec.message());
  BOOST_TEST(p.join() == 0);
  // The failed call left the pipe with the process: its output can still be read.
  pkit::unique_fd out = p.take_stdout_pipe();
  BOOST_TEST_REQUIRE(static_cast<bool>(out));
  BOOST_TEST(read_all(out.get()) == "hi\n");
}

BOOST_AUTO_TEST_CASE(the_largest_limit_and_timeout_mean_no_limit) {
  pkit::process p{sh("echo out; echo err >&2"), piped(false, true, true)};
  p.start();
  pkit::communicate_result r = pkit::communicate(
      p, {{}, std::chrono::milliseconds::max(), std::numeric_limits<std::size_t>::max()});
  BOOST_TEST(r.out == "out\n");
  BOOST_TEST(r.err == "err\n");
  BOOST_TEST(r.status == pkit::exit_status::exited(0));
}

BOOST_AUTO_TEST_CASE(a_process_never_started_is_not_started) {
  pkit::process p{sh("exit 0")};
  BOOST_CHECK_EXCEPTION(pkit::communicate(p), std::system_error,
                        has_code(pkit::errc::not_started));
}

BOOST_AUTO_TEST_CASE(no_descriptor_is_leaked_on_success_epipe_timeout_or_error) {
  warm_up();
  const auto before = open_fds();
  {
    pkit::process ok{pkit::command{"cat"}, piped(true, true, true)};
    ok.start();
    BOOST_TEST(pkit::communicate(ok, {"abc", event_timeout, {}}).out == "abc");

    pkit::process deaf{child_command({"exit", "0"}), piped(true, true, true)};
    deaf.start();
    pkit::communicate(deaf, {std::string(mib, 'x'), event_timeout, {}});

    pkit::process slow{child_command({"pause"}), piped(true, true, true)};
    slow.start();
    std::error_code ec;
    pkit::communicate(slow, {"in", 10ms, {}}, ec);
    BOOST_TEST((ec == std::errc::timed_out));
    slow.kill();
    slow.join();

    pkit::process big{child_command({"spew", "100000"}), piped(false, true, true)};
    big.start();
    pkit::communicate(big, {{}, event_timeout, 10}, ec);
    BOOST_TEST((ec == std::errc::no_buffer_space));
    big.join();  // its pipes are closed: it dies of SIGPIPE or EPIPE
  }
  check_fds_unchanged(before);
}
