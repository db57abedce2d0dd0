#pragma once

/// \file
/// `pkit::communicate`: feed a child's stdin and capture its stdout and stderr together,
/// then join it — Python's `Popen.communicate(input, timeout)`, without deadlock however
/// much each stream carries.

#include <pkit/exit_status.hpp>
#include <pkit/unique_fd.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <system_error>

namespace pkit {

class process;

/// What `communicate()` does besides reading.
struct communicate_options {
  /// Written to the child's stdin pipe, which is then closed. Empty: the stdin pipe (if
  /// there is one) is closed at once, so a child reading stdin sees end of file. Non-empty
  /// input for a process without a stdin pipe is `errc::invalid_argument`. A child that
  /// exits (or closes stdin) without reading all of it is not an error: the rest is
  /// dropped.
  std::string input{};
  /// How long the whole call may take (writing, reading to end of file and joining).
  /// Empty, or 100 years and more (`milliseconds::max()`): no limit.
  std::optional<std::chrono::milliseconds> timeout{};
  /// The most bytes kept of *each* of stdout and stderr. Empty: no limit (the output is
  /// held in memory, so an endless stream grows without bound). A stream that carries
  /// more fails the call with `std::errc::no_buffer_space`; the result holds its first
  /// `max_output` bytes.
  std::optional<std::size_t> max_output{};
};

/// What `communicate()` captured.
struct communicate_result {
  /// Everything the child wrote to its stdout (stderr) pipe; empty when that stream is
  /// not a pipe (inherited, /dev/null, a file, an fd) — or on an error: what was read
  /// until then.
  std::string out;
  std::string err;
  /// How the run ended; empty when the call failed before it could join the run.
  std::optional<exit_status> status;
};

/// The state of one communication with a process's current run: the parent's pipe ends,
/// the input not yet written and the output read so far. `communicate()` may be called
/// again after a timeout and goes on where the last call stopped, as Python's does; the
/// final result holds everything read across the calls.
///
/// The constructor takes the pipe ends out of the process (`take_stdin_pipe()`,
/// `take_stdout_pipe()`, `take_stderr_pipe()`); they are this object's from then on and
/// closed by its destructor, which neither stops nor joins the child. It keeps a
/// reference to the process, which must outlive it; the result's status is that of
/// `process::join_status()`, so the process must not be restarted meanwhile.
///
/// Threads: one call at a time (the object is not synchronised); other threads may act on
/// the process meanwhile (`kill()` it, say). Must not be called on pkit's reaper thread
/// — inside an `on_exit` or `on_ready` callback — where joining could only be completed
/// by that thread: `errc::would_deadlock`.
///
/// SIGPIPE: a child that exits without reading its input makes the write fail with
/// EPIPE; the signal that comes with it is blocked in the calling thread while the call
/// writes, and taken back, so it never kills the program (and is never left pending).
class communicator {
public:
  /// Takes the pipe ends of `p`'s current run. Errors are reported by `communicate()`.
  explicit communicator(process& p, std::string input = {},
                        std::optional<std::size_t> max_output = {});

  communicator(const communicator&) = delete;
  communicator& operator=(const communicator&) = delete;
  ~communicator();

  /// Writes the input, reads stdout and stderr until both reach end of file, then joins
  /// the run; `timeout` as in `communicate_options`. The child is never signalled: on a timeout it runs on, and the caller
  /// decides (call again, `kill()` it, ...).
  ///
  /// Waits for end of file, not for the child's exit: a descendant that inherited the
  /// child's stdout or stderr and keeps it open (a daemonised grandchild, `cmd &` in a
  /// shell) holds the call until it closes it or the timeout expires — as with Python.
  /// Start such a child with `new_process_group` and stop its group to end them all.
  ///
  /// Errors: `std::errc::timed_out` (the timeout expired first; the output read so far is
  /// kept here and returned in the result); `std::errc::no_buffer_space` (over
  /// `max_output`; repeated by further calls); `errc::invalid_argument` (input but no
  /// stdin pipe; repeated); `errc::would_deadlock` (reaper thread); the errors of
  /// `process::join_status()` (`errc::not_started`); an errno of poll/read/write. The
  /// throwing form throws `std::system_error`; the other sets `ec` and returns the
  /// output read so far (and no status).
  ///
  /// Once it has returned a result, the pipes are closed and further calls return empty
  /// output and the status again.
  communicate_result communicate(std::optional<std::chrono::milliseconds> timeout = {});
  communicate_result communicate(std::optional<std::chrono::milliseconds> timeout,
                                 std::error_code& ec) noexcept;

  /// The output read so far (moved into the result once a call succeeds).
  const std::string& out() const noexcept { return out_text_; }
  const std::string& err() const noexcept { return err_text_; }

private:
  using time_point = std::chrono::steady_clock::time_point;

  bool pump(std::optional<time_point> deadline, std::error_code& ec);
  bool write_input(std::error_code& ec);
  bool read_output(unique_fd& fd, std::string& text, std::error_code& ec);
  communicate_result partial() const;

  process& process_;
  unique_fd in_;
  unique_fd out_;
  unique_fd err_;
  std::string input_;
  std::size_t written_ = 0;
  std::string out_text_;
  std::string err_text_;
  std::optional<std::size_t> max_output_;
  std::error_code failed_;  // a final error, repeated by every call
};

/// One whole communication with `p`'s current run: `communicator{p, input,
/// max_output}.communicate(timeout)`. After an error the pipe ends are closed (a child
/// still writing then gets EPIPE or SIGPIPE); to resume after a timeout instead, use a
/// `communicator`. See `communicator::communicate()` for the behaviour, threads and
/// errors; the `ec` form returns what was read until the error. On the reaper thread it
/// fails with `errc::would_deadlock` before it takes the pipe ends: they stay with `p`.
communicate_result communicate(process& p, communicate_options options = {});
communicate_result communicate(process& p, communicate_options options,
                               std::error_code& ec) noexcept;

}  // namespace pkit
