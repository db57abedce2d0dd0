#pragma once

/// \file
/// `pkit::tool::log_capture`: the children's captured output (see
/// pkit/actors/output_capture.hpp), written line by line to size-rotated files, and
/// handed to live listeners (`pkit ctl tail`).
///
/// **File format.** One record per line: a UTC timestamp with milliseconds, one marker
/// character, then the child's bytes as written (no escaping):
///
///     2026-11-30T15:14:52.123Z the line as the child wrote it
///     2026-11-30T15:14:52.124Z+the first 16 KiB of a longer line...
///     2026-11-30T15:14:52.124Z ...and its rest
///
/// The marker is ' ' for the end of a line and '+' for a piece of a line longer than
/// `options::line_limit`, continued by the next record of the same stream. A run's last
/// partial line (the child died, or ended without a newline) is written as a line of its
/// own at the run's EOF: it never merges with the next run's output. (Why a fixed-width
/// prefix: any line is split back into time, marker and content without guessing.)
///
/// **Rotation** follows spdlog's rotating_file_sink (on a descriptor pkit opens itself,
/// O_NOFOLLOW, mode 0640): before a record that would take the file
/// past `max_bytes`, FILE is renamed to FILE.1 (FILE.1 to FILE.2, ... up to `keep`, the
/// oldest dropped) — in spdlog's naming, which keeps a file's extension last: `web.log`
/// rotates to `web.1.log`, `web.2.log`, ...; a name without a dot, `web`, to `web.1`.
/// Rotation happens between records, so
/// a record is never split across files; a record longer than `max_bytes` fills a file
/// alone. The size counted is the record's, prefix included. An existing FILE (pkit
/// started again) is appended to, and rotated once it is full.
///
/// **Back-pressure.** One reader thread (epoll) serves every pipe. It writes each record
/// to its file synchronously before it reads more: a disk slower than the children
/// slows the reader, the pipes fill and the children block in write(2). pkit's memory
/// stays bounded: one read buffer, one partial line (at most `line_limit`) per pipe, the
/// history (at most `history_bytes`) per program.

#include <pkit/actors/output_capture.hpp>
#include <pkit/tool/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pkit::tool {

namespace detail {
class log_listeners;
}

/// One captured line (or piece of an over-long line).
struct captured_line {
  int stream = 1;          ///< 1 stdout, 2 stderr
  std::uint64_t run = 0;   ///< the run's incarnation
  std::string text;        ///< without its newline
  bool continued = false;  ///< a piece continued by the stream's next line
};

class log_capture final : public actors::output_capture {
public:
  /// Where one file's records go: spdlog's rotating file sink by default; tests inject
  /// their own. Called on the reader thread only (and on the thread calling `stop()`
  /// after the reader has ended). May block: that is the back-pressure.
  class line_sink {
  public:
    virtual ~line_sink() = default;
    /// Writes one record: `text` (no newline), `continued` as in captured_line.
    virtual void write(std::string_view text, bool continued) = 0;
    virtual void flush() = 0;
  };
  /// Makes the sink of one file (a `log` output_spec). Throws on failure (the file cannot
  /// be opened, ...): `configure` passes the exception on.
  using sink_factory = std::function<std::shared_ptr<line_sink>(const output_spec&)>;

  struct options {
    /// Longest line kept whole; a longer one is written in pieces of this size (> 0).
    std::size_t line_limit = 16 * 1024;
    /// Per program, the newest lines kept in memory for `tail`'s history, up to this
    /// many bytes, each line counted as its text plus sizeof(captured_line) (0: none).
    std::size_t history_bytes = 16 * 1024;
    /// How long `stop()` waits for the pipes still open to reach EOF.
    std::chrono::milliseconds drain_timeout{2000};
    /// Empty: spdlog's rotating file sink (see the file's doc).
    sink_factory make_sink;
  };

  /// Starts the reader thread. Throws std::system_error if it cannot (epoll, eventfd,
  /// thread), std::invalid_argument for a zero line_limit.
  log_capture();
  explicit log_capture(options opts);
  /// `stop()`.
  ~log_capture() override;
  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;

  /// Says where program `name`'s `stream` (1 or 2) goes, for the runs attached from now
  /// on (a run already attached keeps its file: a reload changes the next run's). A
  /// `log` spec opens (creates) its file now — two streams or programs naming the same
  /// path share one sink, whose first configuration's size and retention apply —;
  /// `inherit`/`null` remove the entry (a stream attached without one is read and its
  /// lines go to listeners only). Any thread. Throws std::invalid_argument (stream not 1
  /// or 2, max_bytes 0, a log spec without a path) or what the sink factory throws
  /// (a std::runtime_error naming the file; the default sink refuses a symbolic link at
  /// the path and creates files 0640, directories 0750).
  void configure(const std::string& name, int stream, const output_spec& spec);

  /// output_capture: adds the pipe to the reader. Any thread. After `stop()` the pipe is
  /// closed at once.
  void attach(const std::string& name, int stream, std::uint64_t run,
              pkit::unique_fd read_end) noexcept override;

  /// Called on the reader thread for each line of a program as it is read. It must not
  /// block (it holds up every child's output) nor destroy its own handle.
  using listener = std::function<void(const captured_line&)>;

  /// Unhooks its listener when destroyed (or reset): once that returns, the listener is
  /// not running and will not be called again. Move-only.
  class listener_handle {
  public:
    listener_handle() = default;
    listener_handle(listener_handle&& other) noexcept;
    listener_handle& operator=(listener_handle&& other) noexcept;
    listener_handle(const listener_handle&) = delete;
    listener_handle& operator=(const listener_handle&) = delete;
    ~listener_handle();
    void reset() noexcept;

  private:
    friend class log_capture;
    listener_handle(std::shared_ptr<detail::log_listeners> owner, std::uint64_t id) noexcept;
    std::shared_ptr<detail::log_listeners> owner_;
    std::uint64_t id_ = 0;
  };

  /// Receives a new listener's history: the lines kept in memory, oldest first.
  using history_handler = std::function<void(const std::vector<captured_line>&)>;

  /// Calls `fn` for every line of program `name` read from now on (both streams). With
  /// `history`, that is called first, on the calling thread, under the lock lines are
  /// delivered under and before `fn` is hooked: no line is missed, seen twice, or
  /// delivered between history lines (REVIEW D13: a tail's history and live lines
  /// interleaved when the caller sent the history after registering). `history` must
  /// not block nor call into the capture. Any thread. Throws std::bad_alloc or what
  /// `history` throws (then `fn` is not hooked).
  listener_handle add_listener(const std::string& name, listener fn, const history_handler& history = {});

  /// Pipes attached and not yet at EOF.
  std::size_t open_pipes() const;

  /// Calls `fn` once every pipe of program `name` attached so far (not those of runs
  /// attached later) has reached EOF and its last line was delivered: at once (on the calling thread) when none is open,
  /// else on the reader thread after that last line — so an end sent from `fn` follows
  /// the program's last output (a tail ended when its program is removed). A pipe held
  /// open by a descendant that outlives the program delays it; `stop()` calls what is
  /// left. `fn` must not block nor call into the capture. Any thread.
  void when_closed(const std::string& name, std::function<void()> fn);

  /// Reads every pipe to EOF (waiting at most `drain_timeout` for those still open: a
  /// child still running keeps its pipe open), writes their last partial lines, closes
  /// them, flushes every sink and ends the reader thread. Idempotent. Call it once the
  /// children are stopped. Any thread but the reader's (a listener).
  void stop() noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace pkit::tool
