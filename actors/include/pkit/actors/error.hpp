#pragma once

/// \file
/// `pkit::actors::error`: the error category ("pkit") of every error a pkit actor
/// replies with. Errors carry a context message naming what failed (the program, the
/// stage, the errno text, the child id).

#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <cstdint>
#include <string>

namespace pkit::actors {

enum class error : std::uint8_t {
  /// join/stop/signal before any start.
  not_started = 1,
  /// start while a run is in progress; start_child of a running child.
  already_running,
  /// the child could not be created. From a process actor, the context is a
  /// `start_failure` (program, stage, errno; `start_failure_of(err)`); from a supervisor,
  /// it may be a text naming the child.
  start_failed,
  /// the child did not report readiness within its ready timeout (it was killed).
  ready_timeout,
  /// the child died before it reported readiness.
  died_before_ready,
  /// the supervisor has no child with that id.
  unknown_child,
  /// start_child with an id that is already present.
  already_present,
  /// delete_child of a child that still runs.
  still_running,
  /// the supervisor exceeded its restart intensity and shut down.
  restart_limit,
  /// the actor is shutting down and takes no new requests.
  shutting_down,
  /// a spec is malformed (no argv and no target, both, an empty id, ...).
  invalid_spec,
  /// a fork-server target was requested but no fork server was given.
  no_fork_server,
  /// the request does not fit the supervisor's strategy (e.g. start_child with a full
  /// spec on a simple_one_for_one supervisor).
  wrong_strategy,
  /// a system call on the child failed (context: the errno text), e.g. a signal.
  os_error,
  // -- issue 11: children on other nodes ------------------------------------------------
  /// the node a remote child ran on was lost (its link unreachable: killed, silent past
  /// the heartbeat timeout, cut off); the child's run ended with exit_status::lost().
  node_down,
  /// no node a remote child may run on (child_spec::nodes) could be reached, or none
  /// answered the spawn in time (context: each node and why).
  node_unreachable,
};

std::string to_string(error e);

}  // namespace pkit::actors

CAF_ERROR_CODE_ENUM(pkit::actors::error, "pkit")
