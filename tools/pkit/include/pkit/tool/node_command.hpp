#pragma once

/// \file
/// `pkit node`: runs a node agent that lets a controller (`pkit run` elsewhere) start and
/// supervise processes on this machine, within an allow-list (issue 11 §1).
///
/// It checks everything before it starts (the listen address against the TLS set, the TLS
/// files, the allow-list file), publishes the agent's front (node_front.hpp) on the given
/// address — CAF's OpenSSL module with mutual authentication, or plain BASP on numeric
/// loopback only —, prints one line to stdout once it listens:
///
///     listening on 127.0.0.1:40123
///
/// (`[::1]:PORT` for IPv6), and runs until SIGTERM, SIGINT or SIGHUP, when it stops every
/// child per its spec and exits 0. If it dies otherwise (SIGKILL included), its guardian
/// (guardian.hpp) kills the children's process groups.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace pkit::tool {

/// Exit codes of `pkit node`, one per kind of refusal, so that scripts can tell them
/// apart. exit_usage (2) is shared with `pkit run`: a bad flag, a missing --allow, a
/// malformed --listen or duration.
enum node_exit : int {
  node_exit_clean = 0,           ///< stopped by a signal, every child stopped in order
  node_exit_failed = 1,          ///< the actor system failed, or a child did not stop in time
  node_exit_usage = 2,           ///< bad command line
  node_exit_listen_refused = 4,  ///< a non-loopback address without the full TLS set
  node_exit_tls_refused = 5,     ///< the TLS files were refused (the file and why are named)
  node_exit_allow_refused = 6,   ///< the allow-list file was refused (file:line:col: key: why)
  node_exit_cannot_listen = 7,   ///< publishing failed (address in use, not local, ...)
};

/// What the command line says.
struct node_options {
  std::string listen = "127.0.0.1:0";
  std::string name;  ///< empty: the host name
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  std::string allow;
  std::string heartbeat = "1s";
  std::string timeout = "5s";
  std::uint32_t max_children = 64;
};

/// The `node` subcommand: its options on `sub`, and run() once CLI11 has parsed them.
class node_command {
public:
  /// Adds the options to `sub` (which must outlive this object's use).
  explicit node_command(CLI::App& sub);

  /// Runs the node until a signal stops it; returns the exit code (node_exit). Must be
  /// called while the process has a single thread (it forks the guardian first), once.
  int run();

private:
  node_options options_;
};

}  // namespace pkit::tool
