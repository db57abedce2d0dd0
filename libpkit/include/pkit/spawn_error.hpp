#pragma once

/// \file
/// `pkit::spawn_failure` / `pkit::spawn_error`: why a start failed, naming the stage.

#include <string>
#include <system_error>

namespace pkit {

/// Where and why `start()` failed: the program, the stage of the start-up in which it
/// failed ("validate", "open stdio", "pipe", "fork" (callables), "clone" (programs),
/// "pidfd_open", "fork server", "setpgid", "prctl(PR_SET_PDEATHSIG)", "setrlimit",
/// "chdir", "dup2", "exec", "ready"), and the error (an errno in
/// `std::system_category()`, or a `pkit::errc`).
struct spawn_failure {
  /// argv[0] for programs, the registered name for fork-server targets, the process's
  /// name for callables.
  std::string program;
  std::string stage;
  std::error_code error;

  /// "cannot start '/no/such': exec: No such file or directory"
  std::string to_string() const;
};

/// The exception thrown by the throwing overloads of `process::start()`; `code()` is
/// the failure's error, `what()` reads like `failure().to_string()`.
class spawn_error : public std::system_error {
public:
  explicit spawn_error(spawn_failure failure)
      : std::system_error(failure.error, "cannot start '" + failure.program + "': " + failure.stage),
        failure_(std::move(failure)) {}

  const spawn_failure& failure() const noexcept { return failure_; }

private:
  spawn_failure failure_;
};

}  // namespace pkit
