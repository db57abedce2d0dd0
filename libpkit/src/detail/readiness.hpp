#pragma once

// Readiness of a freshly started child: the start-up record a forked child writes on its
// status pipe (fork start method, fork server), then the newline of `notify_fd` or the
// READY=1 on the run's `notify_socket` — awaited by start(wait) on the caller's thread, or watched by the reaper for `on_ready`.

#include "detail/child_setup.hpp"
#include "detail/notify_socket.hpp"
#include "detail/process_state.hpp"

#include <pkit/unique_fd.hpp>

#include <memory>

namespace pkit::detail {

enum class ready_result { ready, failed, died, timeout };

/// Waits for the start-up record on `record` (if open), then for a newline on `notify`
/// (if open) or READY=1 on `sock` (if not null), until `deadline`. `pidfd` (of an own
/// child, or -1) is watched too: a child that dies while a descendant keeps the pipes open
/// is `died` at once, not a timeout. A failure record is stored in `failure`.
ready_result await_ready(int record, int notify, notify_socket* sock, int pidfd,
                         clock::time_point deadline, child_failure& failure);

/// Watches the readiness of run `run` on the reaper thread and calls `on_ready` once.
/// Returns the watch, to be kept in `process_state::ready_watch` while it is pending.
/// Called with the state's lock held (it reads the run's pidfd when `sock` is given: a
/// socket has no EOF, so the child's exit is what ends the socket's watch).
std::shared_ptr<readiness> watch_readiness(const std::shared_ptr<process_state>& sp, std::uint64_t run,
                                           unique_fd record, unique_fd notify,
                                           std::unique_ptr<notify_socket> sock = nullptr);

/// The run ended before its readiness was reported: ends the readiness watches, decides
/// from what the child wrote before it exited, and calls `on_ready` on `owner` unless it
/// is null (destroyed) (reaper thread, no lock held).
void settle_readiness_at_exit(const std::shared_ptr<readiness>& r, process* owner);

}  // namespace pkit::detail
