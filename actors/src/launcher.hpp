#pragma once

// Runs off the CAF workers what may wait on something outside the program:
//  - a fork-server target's start: a socket round trip to the server, bounded only by
//    fork_server::options::request_timeout (10 s by default);
//  - the name-service lookup of the user or group a program runs as (`identity::lookup`):
//    NSS may be LDAP or sssd, whose lookups wait on a server for their own timeouts,
//    seconds (review 17b L2). The spawn itself stays on the worker: it waits on nothing.
// On a worker either would hold that worker — with `scheduler.max-threads=1`, the whole
// actor system, every supervisor's exit handling included. Process actors post such work
// to a launcher and get the result back as a message.

#include <pkit/process.hpp>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

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

/// Set by a process actor that no longer wants a job it posted (a stop came first, the
/// actor is gone): a job not yet begun then does nothing but report that it was skipped.
/// A job already under way runs to its end.
using cancel_flag = std::shared_ptr<std::atomic<bool>>;

/// What a job waits on: each lane has threads of its own, so that a slow name service
/// does not hold up fork-server starts, nor a wedged fork server a lookup.
enum class launcher_lane {
  fork_server,   ///< fork-server targets' starts: one thread (a server serves one request at a time)
  name_service,  ///< lookups of users and groups: up to `name_service_threads`, so that
                 ///< one slow lookup does not hold up the others' starts
};

/// The threads of one lane, made on demand up to the lane's number and never ended: a
/// fork-server start's child, made on the server, does not depend on the thread, and a
/// lookup's thread spawns nothing — but a thread that ended with a job queued would
/// strand it. Thread-safe. Never destroyed: jobs may still be queued while static
/// destructors run.
///
/// Known limit (review D5c): the fork-server lane is shared by every fork server of the
/// program, so a wedged server delays the launches queued for the others — each job by at
/// most that server's `request_timeout` (10 s by default), after which its start fails and
/// the next job runs. Nothing waits for ever. A thread per server would remove the delay;
/// the process actor does not yet tell the launcher which server a job is for.
class launcher {
public:
  static constexpr std::size_t name_service_threads = 4;
  /// One: a fork server serves one request at a time, and the jobs of the lane are taken
  /// in order (a test holds the thread with one start to queue the next).
  static constexpr std::size_t fork_server_threads = 1;
  static constexpr const char fork_server_thread_name[] = "pkit-forksrv";
  static constexpr const char name_service_thread_name[] = "pkit-lookup";
  // The kernel keeps 15 characters; a longer name is refused (ERANGE), and ignored.
  static_assert(sizeof fork_server_thread_name <= 16 && sizeof name_service_thread_name <= 16);

  /// The name of the lane's threads (ps -L, top -H, gdb, /proc/PID/task/TID/comm).
  static const char* thread_name(launcher_lane lane) noexcept;

  /// The launcher of `lane`, its first thread started on first use. Throws
  /// `std::system_error` when the lane has no thread and none can be made (the next call
  /// tries again), `std::bad_alloc`.
  static launcher& instance(launcher_lane lane);

  /// Queues `job`, run on one of the lane's threads in turn. Throws `std::bad_alloc`, or
  /// `std::system_error` when the lane has no thread and none can be made; then nothing is
  /// queued. The job must not throw: it ends with a report to its actor, made with
  /// `report_until_made`.
  void post(std::function<void()> job);

  /// Calls `send` until it returns, after a growing delay (1 ms to 1 s) each time it
  /// throws (no memory for the message): a job's report is its actor's only way out of
  /// `starting` — dropped, the actor's start request (a supervisor's among them) was never
  /// answered (review D6). The lane's later jobs wait meanwhile.
  static void report_until_made(const std::function<void()>& send) noexcept;

  launcher(const launcher&) = delete;
  launcher& operator=(const launcher&) = delete;

private:
  launcher(std::size_t max_threads, const char* thread_name);
  [[noreturn]] void loop();

  const std::size_t max_threads_;
  const char* const thread_name_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  std::size_t threads_ = 0;  // made so far (under mutex_)
  std::size_t idle_ = 0;     // waiting for a job (under mutex_)
};

}  // namespace pkit::actors::detail
