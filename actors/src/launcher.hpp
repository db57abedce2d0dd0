#pragma once

// Starts fork-server targets off the CAF workers. A fork-server start is a socket round
// trip to the server, bounded only by fork_server::options::request_timeout (10 s by
// default): on a worker it would hold that worker — with `scheduler.max-threads=1`, the
// whole actor system — while the server is slow, stopped or wedged. Process actors hand
// such starts to this one thread and get the result back as a message.

#include <pkit/process.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include <sys/types.h>

namespace pkit::actors::detail {

/// A process on its way between a process actor and the launcher (in a job, or in the
/// report to the actor). Whoever drops it last — the launcher once its actor is gone, or
/// CAF with the mailbox of an actor that died before reading the report — releases the
/// process to libpkit (`process::release`): a child it started is stopped per its policy
/// and nobody waits for that. Never a plain destruction, which would wait for the stop.
struct process_parcel {
  std::unique_ptr<process> proc;

  process_parcel() = default;
  explicit process_parcel(std::unique_ptr<process> p) noexcept : proc(std::move(p)) {}
  process_parcel(const process_parcel&) = delete;
  process_parcel& operator=(const process_parcel&) = delete;
  ~process_parcel() { process::release(std::move(proc)); }
};

/// The one launcher thread of the program: runs `process::start` for the jobs it is given,
/// one at a time, in order (the fork server serves one request at a time anyway).
/// Thread-safe. Never destroyed: jobs may still be queued while static destructors run.
///
/// Known limit (review D5c): the thread is shared by every fork server of the program, so
/// a wedged server delays the launches queued for the others — each job by at most that
/// server's `request_timeout` (10 s by default), after which its start fails and the next
/// job runs. Nothing waits for ever. A thread per server would remove the delay; the
/// process actor does not yet tell the launcher which server a job is for.
class launcher {
public:
  /// Called on the launcher thread with the parcel back, the pid (or -1) and the start's
  /// error. Should only send a message. If it throws (no memory for the message), it is
  /// called again, with the same parcel, after a growing delay (1 ms to 1 s) until it
  /// returns: the report must reach its actor. Later launches wait meanwhile.
  using done_fn = std::function<void(std::shared_ptr<process_parcel>, pid_t, std::error_code)>;

  /// The launcher, its thread started on first use. Throws `std::system_error` when the
  /// thread cannot be made (the next call tries again), `std::bad_alloc`.
  static launcher& instance();

  /// Queues a start of `parcel->proc`. Throws `std::bad_alloc`; then nothing is queued
  /// (the caller's copy of `parcel` still holds the process).
  void launch(std::shared_ptr<process_parcel> parcel, done_fn done);

  launcher(const launcher&) = delete;
  launcher& operator=(const launcher&) = delete;

private:
  struct job {
    std::shared_ptr<process_parcel> parcel;
    done_fn done;
  };

  launcher();
  [[noreturn]] void loop();
  static void report(job& next, pid_t pid, std::error_code ec) noexcept;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<job> jobs_;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace pkit::actors::detail
