#pragma once

/// \file
/// `pkit::command`: an external program to run.

#include <string>
#include <sys/resource.h>
#include <vector>

namespace pkit {

/// One resource limit applied in the child before exec (see setrlimit(2)).
struct resource_limit {
  int resource = 0;  ///< RLIMIT_NOFILE, RLIMIT_CORE, ...
  rlim_t soft = RLIM_INFINITY;
  rlim_t hard = RLIM_INFINITY;
};

/// An external program: what `execve` gets, plus the environment and resource set-up
/// done in the child before it. A plain value; validated by `process::start()`, which
/// rejects an empty argv, embedded NUL bytes and arguments or environments over the
/// kernel's limits (E2BIG) before anything is forked.
struct command {
  /// argv[0] is the program: a path when it contains '/', otherwise looked up in PATH
  /// (the PATH of the environment the child gets, as execvp does).
  std::vector<std::string> argv;
  /// Start from an empty environment instead of the parent's.
  bool clear_env = false;
  /// Applied in order on top of the inherited (or empty) environment: "NAME=value" sets
  /// or overrides NAME; a bare "NAME" removes it.
  std::vector<std::string> env;
  /// Working directory of the child; empty keeps the parent's. A bad one fails `start()`
  /// with stage "chdir"; one with a NUL byte with stage "validate" (invalid_argument),
  /// before anything is opened.
  std::string cwd;
  /// Resource limits set in the child before exec.
  std::vector<resource_limit> limits;

  command() = default;
  /// `pkit::command{"sleep", "10"}`
  command(std::initializer_list<std::string> args) : argv(args) {}
  explicit command(std::vector<std::string> args) : argv(std::move(args)) {}
};

}  // namespace pkit
