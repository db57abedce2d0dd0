#pragma once

// Starts off the CAF workers what may wait on something outside the program:
//  - a fork-server target's start: a socket round trip to the server, bounded only by
//    fork_server::options::request_timeout (10 s by default);
//  - the start of a program that runs as another user or group: its credentials are
//    looked up through the name service in this process before the spawn
//    (libpkit/src/detail/credentials.hpp), and NSS may be LDAP or sssd — a lookup that
//    waits on a server for its own timeout, seconds (review 17b L2).
// On a worker either would hold that worker — with `scheduler.max-threads=1`, the whole
// actor system, every supervisor's exit handling included. Process actors hand such
// starts to a launcher thread and get the result back as a message.

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

/// What a launch waits on: each lane has a launcher (and thread) of its own, so that a
/// slow name service does not hold up fork-server starts, nor a wedged fork server
/// starts as another user.
enum class launcher_lane {
  fork_server,   ///< fork-server targets
  name_service,  ///< programs whose spec names a user or group
};

/// One launcher thread of the program (one per lane): runs `process::start` for the jobs
/// it is given, one at a time, in order (the fork server serves one request at a time
/// anyway; the name service's lookups would contend on its locks).
/// Thread-safe. Never destroyed: jobs may still be queued while static destructors run.
///
/// Known limit (review D5c): the fork-server lane is shared by every fork server of the program, so
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

  /// The launcher of `lane`, its thread started on first use. Throws `std::system_error`
  /// when the thread cannot be made (the next call tries again), `std::bad_alloc`.
  static launcher& instance(launcher_lane lane);

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
