#pragma once

/// \file
/// `pkit::tool::control_server`: the local control endpoint of `pkit run` — a Unix stream
/// socket speaking the JSON-lines protocol of tools/pkit/PROTOCOL.md, answering through a
/// control_handler.
///
/// Threads: one event-loop thread (epoll) does every socket read and write for all
/// clients, so a client that stalls, floods or never reads costs the others nothing; a
/// small pool of worker threads decodes requests and calls the handler (which may wait,
/// bounded, for the supervisors). Limits: a request line is at most
/// max_request_bytes (larger: an error reply and the connection closed, without reading
/// the rest into memory); a client's unsent output is at most `max_queued_bytes`
/// (beyond: the client is dropped). Security: the socket is created 0600 inside a
/// directory created 0700, and each peer's uid (SO_PEERCRED) must be ours or root.

#include <pkit/tool/control_handler.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace pkit::tool {

/// Why the server could not start.
class control_server_error : public std::runtime_error {
public:
  enum class kind {
    already_running,  ///< a live server answers at the path
    bad_path,         ///< the path or its directory is unusable (not a socket, someone else's dir, too
                      ///< long, a call on it refused: no permission, read-only, a link, missing)
    system,           ///< the program or machine is short of something (descriptors, memory, locks,
                      ///< space, I/O) or a call not on the path failed (socket, listen, epoll,
                      ///< threads): the same path may serve once that is remedied
  };
  control_server_error(kind k, const std::string& message) : std::runtime_error(message), kind_(k) {}
  kind what_kind() const noexcept { return kind_; }

private:
  kind kind_;
};

struct control_server_options {
  std::filesystem::path socket_path;            ///< required; its directory is created (0700) if missing
  std::size_t max_request_bytes = std::size_t{1} << 20;
  std::size_t max_queued_bytes = std::size_t{4} << 20;  ///< per client: unsent replies and stream items
  std::size_t max_clients = 1024;               ///< more at once (or over a quarter of RLIMIT_NOFILE): refused with "too_many_clients"
  unsigned workers = 3;                         ///< threads calling the handler (at least 1)
};

/// Counters for tests and diagnostics; a snapshot, any thread.
struct control_server_stats {
  std::uint64_t accepted = 0;         ///< connections let in
  std::uint64_t refused_peers = 0;    ///< connections refused by the peer check
  std::uint64_t requests = 0;         ///< request lines decoded (valid or not)
  std::uint64_t dropped_clients = 0;  ///< clients disconnected for a too large request or a full queue
  std::uint64_t accept_pauses = 0;    ///< times accepting paused for want of descriptors (EMFILE, ...)
  std::size_t clients = 0;            ///< connected now
};

class control_server {
public:
  /// Binds and listens at options.socket_path and starts the threads. The `handler`
  /// must outlive the server (it is called until stop() returns). Throws
  /// control_server_error: kind::already_running when a server answers at the path (the
  /// path is then left alone), kind::bad_path when the path or its directory is unusable
  /// (see the kinds), kind::system otherwise. A socket file
  /// nobody answers at (a crashed run's) is replaced.
  control_server(control_handler& handler, control_server_options options);

  /// stop().
  ~control_server();

  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  /// Stops listening, sends open streams their end line ("reason":"shutdown") and tries
  /// once to flush every client's pending output, closes every connection, destroys the
  /// handler's streams, joins the threads and removes the socket file (if it is still the
  /// one this server made). Idempotent. Any thread except the server's own: never from
  /// within a handler call or a sink (it joins the threads those run on).
  void stop();

  const std::filesystem::path& socket_path() const noexcept;

  control_server_stats stats() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace pkit::tool
