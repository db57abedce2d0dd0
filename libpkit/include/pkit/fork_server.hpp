#pragma once

/// \file
/// `pkit::fork_server`: forks callable children from a helper process that never has
/// threads, so a multithreaded program can run C++ targets in children safely.

#include <pkit/errc.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace pkit {

namespace detail {
class fork_server_core;
}

class fork_server;

/// A registered target of a fork server with its arguments, ready to be given to a
/// `pkit::process`. Obtained from `fork_server::target()`. Holds the server's state
/// alive (not the server itself: a process whose server has shut down fails to start
/// with `errc::fork_server_unavailable`).
struct server_target {
  std::shared_ptr<detail::fork_server_core> server;
  std::string name;
  std::vector<std::string> args;
};

/// Like Python's `forkserver` start method. Forking a multithreaded parent to run C++
/// code can deadlock on a lock another thread held at fork time (a logger, the
/// allocator, stdio), and copying a large parent's page tables costs milliseconds. The
/// fork server is a small process forked from the program *before any thread exists*;
/// afterwards it forks each child from itself, on request over a Unix socket.
///
/// Its children behave like any other pkit child: they get a pidfd (passed back over the
/// socket, so signals cannot hit a recycled pid), their exits are reaped by the server and
/// relayed to pkit's reaper, and they die with the server (PDEATHSIG) — which itself dies
/// with its parent. Targets are plain functions of string arguments, registered by name
/// before the server starts (the server can only run code it had when it was forked).
///
/// Usage: at the top of `main`, before anything starts a thread:
/// \code
///   pkit::fork_server::registry targets;
///   targets.add("worker", [](const std::vector<std::string>& args) { ...; return 0; });
///   auto server = pkit::fork_server::start(std::move(targets));
///   pkit::process p{server.target("worker", {"a", "b"})};
/// \endcode
class fork_server {
public:
  using function = std::function<int(const std::vector<std::string>& args)>;

  /// The targets a server can run, by name.
  class registry {
  public:
    /// Registers `fn` under `name`, replacing an earlier one of the same name.
    registry& add(std::string name, function fn) {
      targets_[std::move(name)] = std::move(fn);
      return *this;
    }
    bool contains(const std::string& name) const { return targets_.count(name) != 0; }
    const function* find(const std::string& name) const {
      auto i = targets_.find(name);
      return i == targets_.end() ? nullptr : &i->second;
    }

  private:
    std::map<std::string, function> targets_;
  };

  /// How the program talks to its server.
  struct options {
    /// The most a request to the server (a start, a group signal) may take, from the
    /// moment the caller gets its turn (requests are served one at a time) to the reply.
    /// A server that is stopped (SIGSTOP) or wedged fails the request with
    /// `errc::fork_server_timeout` instead of blocking the caller — possibly the reaper
    /// thread — for ever. A child the server makes for a request that timed out is
    /// killed and reaped by the server, never left unsupervised. Must be positive.
    std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  };

  /// Forks the server. Call it while the program is still single-threaded (the top of
  /// `main`): the server is a copy of the program at that moment. Throws
  /// `std::system_error` if the socket pair or the fork fails, if the server cannot be
  /// watched (its pidfd, pkit's reaper: EMFILE, ENOMEM — the server is then killed and
  /// reaped), or with `errc::invalid_argument` for a request timeout that is not positive.
  static fork_server start(registry targets);
  static fork_server start(registry targets, const options& opts);

  fork_server(fork_server&&) noexcept;
  fork_server& operator=(fork_server&&) noexcept;
  fork_server(const fork_server&) = delete;
  fork_server& operator=(const fork_server&) = delete;
  /// Shuts the server down: it SIGKILLs its remaining children (their exits are still
  /// reported to their processes) and exits; the server process is reaped before this
  /// returns. Must not be called on the reaper thread (from an `on_exit` callback).
  ~fork_server();

  /// A target to give to `pkit::process`. Throws `std::system_error` with
  /// `errc::unknown_target` when `name` is not registered.
  server_target target(std::string name, std::vector<std::string> args = {}) const;

  /// The server's pid; -1 after shutdown.
  pid_t pid() const noexcept;
  /// False once shut down or dead.
  bool running() const noexcept;
  /// Shuts down now (see the destructor); idempotent.
  void shutdown() noexcept;

private:
  explicit fork_server(std::shared_ptr<detail::fork_server_core> core) noexcept;

  std::shared_ptr<detail::fork_server_core> core_;
};

}  // namespace pkit
