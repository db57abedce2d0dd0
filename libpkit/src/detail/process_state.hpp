#pragma once

// The state one pkit::process shares with the reaper's handlers — and libpkit's lock
// order, stated once for the whole library:
//
//   process_state::m  →  fork_server_core's mutex  →  reaper::mutex_
//                     →  spawn_thread's queue mutex (waited on: see below)
//
// * No pkit lock is held while user code runs. `on_exit` and `on_ready` run on the
//   reaper thread with no lock held (the reaper holds none of its own while a handler
//   runs), so a callback may block on the user's own mutex while any other thread starts,
//   stops or joins processes. A target runs in the child.
// * No pkit lock is held across fork/clone, exec or a fork-server round trip: a start
//   marks the state `starting`, unlocks, launches, and locks again to publish the run.
// * Starts that need a long-lived creating thread go to the spawn thread, which runs no
//   user code, so waiting for it cannot close a cycle with a callback.
// * `reaper::unwatch` waits for a handler that is running: it is never called with `m`
//   held (handlers take `m`).
// * A process group is signalled only with `m` held and while its leader is unreaped:
//   the reaper reports an exit without reaping (`watch_exit`), and the leader is reaped
//   with `m` held, so no group signal can follow the reap and reach a recycled group id.
//   A fork-server child's group is signalled by its server (which reaps it) through a
//   one-way record sent without waiting: `m` is never held across a wait for a server.
// * A run's cgroup (containment::cgroup) is read and signalled with `m` held, each member
//   through a pidfd checked against the cgroup; it is removed when the run is collected
//   (or later by a reaper task, which then owns it alone).

#include "detail/cgroup.hpp"

#include <pkit/exit_status.hpp>
#include <pkit/process.hpp>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <unistd.h>

namespace pkit::detail {

using clock = std::chrono::steady_clock;

class fork_server_core;
struct readiness;

/// A stop of one run under way (the one stop algorithm, see run_control.hpp).
struct stop_request {
  std::uint64_t run = 0;
  stop_policy policy;
  clock::time_point deadline;  // SIGKILL then; max() for an infinite timeout
  bool escalated = false;      // SIGKILL sent
  bool after_exit = false;     // begun by libpkit after the leader exited by itself (cgroup leftovers)
  std::uint64_t timer = 0;     // the reaper's deadline task, 0 if none
  /// With kill_group: the leader's descendants in its group when the stop began (pidfds);
  /// the leader is collected once they are gone (see group_descendants).
  std::vector<unique_fd> members;
};

/// Everything a process shares with the reaper's callbacks. The callbacks hold it by
/// shared_ptr, so it outlives the `process` object if an exit report is in flight.
struct process_state {
  // idle → starting (a thread is creating the child, without the lock) → running →
  // exiting (reaped; on_exit runs) → idle.
  enum class phase { idle, starting, running, exiting };

  /// The process that created the object. A forked copy of the program has the object
  /// too, but not the children: there every operation fails with `errc::not_owner`.
  const pid_t owner_pid = ::getpid();
  process_options opts;
  std::variant<std::monostate, callable_target, server_target, command> what;
  std::string name;

  mutable std::mutex m;
  std::condition_variable cv;
  process* owner = nullptr;  // null once the process object is being destroyed
  phase ph = phase::idle;
  std::uint64_t runs = 0;       // runs started
  std::uint64_t collected = 0;  // highest run whose exit has been fully collected
  pid_t pid = 0;
  unique_fd pidfd;
  bool leader = false;    // the child leads its own process group
  bool exited = false;    // the leader has exited and waits, unreaped, for its group
  std::uint64_t watch = 0;  // reaper or fork-server watch of the current run
  std::shared_ptr<fork_server_core> server;  // set when the current run is a server child
  std::shared_ptr<cgroup> cg;  // containment::cgroup: the current run's cgroup, until removed
  std::optional<stop_request> stopping;      // a stop of the current run under way
  std::optional<exit_status> last;
  // run → status of the last few runs (a run somebody waits for is kept in `waited`).
  std::array<std::pair<std::uint64_t, exit_status>, 4> history{};
  std::optional<spawn_failure> failure;
  std::array<unique_fd, 3> pipes;
  std::thread::id callback_thread;  // thread running the callbacks of the run that ended
  bool in_callbacks = false;        // a run's exit is being delivered (callbacks running)
  std::uint64_t delivering = 0;     // that run, while in_callbacks
  std::optional<exit_status> delivered;  // its status, while in_callbacks (not `history`:
                                         // starts that fail meanwhile write there)
  bool started_in_delivery = false;  // the callbacks themselves published a new run
  bool dying = false;               // the process object is being destroyed: no new run
  std::shared_ptr<readiness> ready_watch;  // on_ready of the current run, while pending
  bool collecting = false;  // a joiner is collecting the exit itself (collect_here)
  /// The process object itself, once handed over by `process::release`: destroyed when
  /// the current run has been collected (a cycle with `owner`'s `state_`, broken then).
  /// A released process starts no new run.
  std::unique_ptr<process> released;

  bool owned_here() const noexcept { return ::getpid() == owner_pid; }

  /// Under `m`: no run any more — the current one has been collected, or a start failed
  /// (one place, so a new field is let go on every such path). Not the destructor's
  /// kill_and_collect_here: a joiner collecting the run may still poll its pidfd.
  void become_idle() noexcept {
    ph = phase::idle;
    pid = 0;
    pidfd.reset();
    leader = false;
    server.reset();
    watch = 0;
  }

  /// Runs someone is waiting for, and their statuses once known: a waiter woken late
  /// (after more runs than `history` holds) still gets the status of its own run.
  struct waited_run {
    std::uint64_t run = 0;
    int waiters = 0;
    std::optional<exit_status> status;
  };
  std::vector<waited_run> waited;  // empty (no allocation) unless someone waits

  waited_run* waited_for(std::uint64_t run) {
    for (auto& w : waited)
      if (w.run == run) return &w;
    return nullptr;
  }

  std::optional<exit_status> status_of(std::uint64_t run) const {
    for (const auto& w : waited)
      if (w.run == run && w.status) return w.status;
    for (const auto& [r, s] : history)
      if (r == run) return s;
    if (run == runs) return last;
    return std::nullopt;
  }
};

}  // namespace pkit::detail
