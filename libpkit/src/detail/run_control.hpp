#pragma once

// What happens to a run once it is started: signals, the one stop algorithm, and the
// collection of its exit (reap, on_ready/on_exit, waking joiners). Blocking and
// non-blocking callers (process::stop, the destructor, process actors) share it: a stop
// is begun here and carried on by the reaper thread — deadline, escalation, waiting for
// the process group — whether or not anybody waits for it.

#include "detail/process_state.hpp"

#include <pkit/stop_policy.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>

namespace pkit::detail {

/// Test-only fault injection (white-box tests include this header). `before_join` is
/// called, with no lock held, between the signal of `terminate(wait)` / `stop()` and
/// their wait for the run they signalled: a test uses it to let an on_exit start the next
/// run first, the window in which a wait for "the current run" would wait for (or kill)
/// the wrong one (issue 8 item 4). One relaxed load when unset.
struct run_control_test_hooks {
  static inline std::atomic<void (*)()> before_join{nullptr};
};

/// Signals the current run's child through its pidfd (never a recycled pid), and its
/// process group when `group` is set and the child leads one. `s.m` held, run `running`:
/// the leader is unreaped, so the group id cannot have been recycled. ESRCH from the
/// pidfd (the child has just exited) is not an error. A fork-server child's group is
/// signalled by the server (a one-way request: nothing waits for the server), which also
/// SIGKILLs the group once the leader exits when `group_at_exit` is set; when the server
/// cannot take the request (gone, its socket full), the leader alone gets the signal.
std::error_code send_signal(process_state& s, int signo, bool group, bool group_at_exit = false);

/// Watches the exit of the run just published (`s.m` held). Throws `std::system_error`
/// when the watch cannot be set up; the caller then kills and collects the child itself.
void watch_run(const std::shared_ptr<process_state>& sp, std::uint64_t run);

/// Begins stopping the current run with `policy` (`s.m` held) and returns its number, or
/// 0 when no run is running. The stop signal goes to the child (and its group with
/// `kill_group`), followed by SIGCONT so that a stopped child can act on it (as systemd
/// does); at the deadline the reaper sends SIGKILL. With `kill_group`, the leader's exit
/// is collected only once the rest of its group is gone too — within the same deadline,
/// after which the group gets SIGKILL. A stop already under way for the run is not
/// started again (no signal is sent twice); a zero timeout escalates it at once.
std::uint64_t begin_stop(const std::shared_ptr<process_state>& sp, const stop_policy& policy);

/// Sends SIGKILL now if run `run` is still being stopped and has not been killed yet
/// (`s.m` held): a caller that waited out its own deadline does not depend on the reaper
/// thread's timer (a slow on_exit may hold that thread, another stop may have a later one).
void escalate_now(process_state& s, std::uint64_t run);

/// Under `s.m`: on the thread running a run's `on_exit` (and the on_ready settled with
/// it), that run's status; nothing on any other thread.
std::optional<exit_status> delivered_here(const process_state& s);

/// As delivered_here, unless those callbacks have published a new run themselves: the run
/// a callback's join, stop or terminate(wait) answers for — also once another thread has
/// published the next run (this thread reports exits: it can wait for no other). A run
/// the callback started is its current run, which it cannot wait for: would_deadlock.
std::optional<exit_status> own_delivery(const process_state& s);

/// Waits until run `run` has been collected, or `timeout` passed (`stop_policy::infinite`
/// for no limit); `lock` holds `s.m`. Returns its status, or nothing on timeout. Throws
/// `errc::would_deadlock` on the reaper thread for a run whose exit is still to come.
std::optional<exit_status> join_run(const std::shared_ptr<process_state>& sp,
                                    std::unique_lock<std::mutex>& lock, std::uint64_t run,
                                    std::chrono::milliseconds timeout);

/// Removes a run's cgroup (containment::cgroup; null: nothing), at once if it is empty,
/// else by retries from the reaper's timers once its processes are gone (`s.m` may be held).
void retire_cgroup(std::shared_ptr<cgroup> cg);

/// For a process destroyed on the reaper thread, which cannot wait for its own reports:
/// kills the current run (and its group) and collects it right here, without callbacks.
/// Returns the run's readiness watch if still pending (else null), taken out of the state:
/// the caller ends it with settle_readiness_at_exit once `lock` is released — it holds
/// the state, so left in place the two would keep each other for ever.
[[nodiscard]] std::shared_ptr<readiness> kill_and_collect_here(process_state& s,
                                                               std::unique_lock<std::mutex>& lock);

}  // namespace pkit::detail
