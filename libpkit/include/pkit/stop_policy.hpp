#pragma once

/// \file
/// `pkit::stop_policy`: how a child is stopped — signal, wait, then kill.

#include <chrono>
#include <csignal>

namespace pkit {

/// Graceful-then-forced stop, like systemd's KillSignal= + TimeoutStopSec= or
/// supervisord's stopsignal + stopwaitsecs: send `signal`, wait up to `timeout` for the
/// child to exit, then SIGKILL. With `kill_group`, both signals go to the child's whole
/// process group (only when it has its own, see `process_options::new_process_group`),
/// so descendants it left behind are stopped too.
struct stop_policy {
  int signal = SIGTERM;
  /// zero: SIGKILL at once (OTP's brutal_kill); `infinite`: never escalate.
  std::chrono::milliseconds timeout{5000};
  bool kill_group = true;

  static constexpr std::chrono::milliseconds infinite = std::chrono::milliseconds::max();
};

}  // namespace pkit
