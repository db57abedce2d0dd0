#pragma once

/// \file
/// pkit's error codes: the `pkit::errc` enumeration and its `std::error_category`.

#include <string>
#include <system_error>

namespace pkit {

/// Misuse and library-level failures. OS failures (fork, exec, open, ...) are reported with
/// `std::system_category()` codes carrying the errno instead, so callers can compare them
/// against `std::errc`.
enum class errc {
  /// join/terminate/signal on a process that was never started.
  not_started = 1,
  /// start while the process is still running (or its exit is not collected yet).
  already_running,
  /// start(wait) gave up: the child did not report readiness within the deadline.
  start_timeout,
  /// the child died before it reported readiness.
  died_before_ready,
  /// argv/env/options are malformed (empty argv, embedded NUL, bad fd number, ...).
  invalid_argument,
  /// the fork server is not running (never started, shut down, or died).
  fork_server_unavailable,
  /// the fork server has no target registered under that name.
  unknown_target,
  /// a blocking call was made from the reaper thread (e.g. join in an on_exit
  /// callback) that could only complete by that very thread; it would deadlock.
  would_deadlock,
  /// the pool is closed or terminated and takes no new tasks.
  pool_closed,
  /// a non-blocking pool call found every slot busy.
  pool_full,
  /// the object belongs to another process: it was inherited through fork() (a forked
  /// copy of the program must not act on the original's children).
  not_owner,
  /// the fork server did not answer a request within its deadline (stopped or wedged).
  fork_server_timeout,
  /// the fork server sent a malformed or unexpected reply.
  fork_server_protocol,
  /// process_options::user names no user (or is a uid without a passwd entry, and no group).
  unknown_user,
  /// process_options::group names no group.
  unknown_group,
};

/// The category of `pkit::errc`; its name is "pkit".
const std::error_category& pkit_category() noexcept;

/// Makes `std::error_code` construction from `pkit::errc` work (found by ADL).
std::error_code make_error_code(errc e) noexcept;

}  // namespace pkit

template <>
struct std::is_error_code_enum<pkit::errc> : std::true_type {};
