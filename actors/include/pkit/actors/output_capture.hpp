#pragma once

/// \file
/// The hook through which pkit reads its children's output: a process spec whose
/// `stdout_path` / `stderr_path` is "capture" gets a fresh pipe per run and stream, and
/// the read end of each goes to the actor system's `output_capture` (the `pkit` tool's
/// log capture writes it to rotated files).

#include <pkit/unique_fd.hpp>

#include <caf/fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace pkit::actors {

/// The value of `process_spec::stdout_path` / `stderr_path` that captures the stream.
inline constexpr const char* capture_stream = "capture";

/// Receives the read ends of captured output. One pipe per run and stream, so that the
/// last partial line of one run never merges with the next run's output: the reader
/// sees EOF of a run's pipe once every process holding its write end is gone.
class output_capture {
public:
  virtual ~output_capture() = default;

  /// Called on the process actor's thread (a CAF worker; several may call at once) right
  /// after each start of a run — for a program once it has exec'd, for a fork-server
  /// target once its launch is done —, before the run is reported started. `name` is the
  /// process spec's name, `stream` 1 (stdout) or 2 (stderr), `run` the run's incarnation
  /// (1, 2, ...). The pipe is taken even when the child has died already: what it wrote
  /// is in the pipe. Ownership of `read_end` (blocking, close-on-exec) passes to the
  /// callee. Must not block; it has no way to fail: a capture that cannot take the pipe
  /// closes it (the child's writes then fail with EPIPE).
  virtual void attach(const std::string& name, int stream, std::uint64_t run,
                      pkit::unique_fd read_end) noexcept = 0;
};

/// Installs `capture` as `system`'s output capture (nullptr removes it), for the starts
/// that follow; a run already started keeps the capture it was given. The registry
/// holds a shared reference until the capture is removed or replaced: remove it before
/// `system` is destroyed (an entry is keyed by the system's address). Thread-safe.
/// While none is installed, starting a spec that asks for "capture" fails with
/// `start_failed` (stage "capture"): output is never silently sent elsewhere.
void set_output_capture(caf::actor_system& system, std::shared_ptr<output_capture> capture);

/// `system`'s output capture, or nullptr. Thread-safe.
std::shared_ptr<output_capture> output_capture_of(caf::actor_system& system);

}  // namespace pkit::actors
