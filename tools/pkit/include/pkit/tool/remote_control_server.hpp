#pragma once

/// \file
/// `pkit::tool::remote_control_server`: the network endpoint of `pkit run`'s control
/// (`[pkit] control_listen`), answering through the same control_handler as the control
/// socket (control_server.hpp). It publishes one remote_control_actor (remote_control.hpp)
/// over CAF's BASP: with mutual TLS (caf::openssl::publish) when given a certificate set,
/// plain only on a numeric loopback address (pkit::net::check_listen).
///
/// Isolation: the endpoint runs an actor system of its own. BASP lets any connected peer
/// address every actor of the system it reaches (ISSUE11_DESIGN §4), so that system holds
/// nothing but the published actor and its workers: a ctl client never reaches the
/// supervisors, nor the node links (the tree's system, whose TLS set trusts the nodes'
/// CA), and a node never reaches the control actor.
///
/// Threads: the published actor only counts and hands off; each request runs on a
/// detached worker (a thread of its own) that calls handler.handle(), which may block
/// (bounded) on the supervisors. Limits: max_in_flight requests at once (more: an error
/// reply "busy" at once), a request line of at most max_request_bytes ("bad_request").
/// CAF 0.17.6 reads a whole BASP message into memory before pkit sees it, whatever its
/// size: only an authenticated peer can do that over TLS (a residual risk, PROTOCOL.md).

#include <pkit/net/tls_files.hpp>
#include <pkit/tool/control_handler.hpp>
#include <pkit/tool/control_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace pkit::tool {

/// Why the endpoint could not start: the message names what was wrong (a certificate
/// file and OpenSSL's reason, an address in use, a plain non-loopback address).
class remote_control_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct remote_control_options {
  std::string host;                         ///< numeric address to bind (never "": that is every interface)
  std::uint16_t port = 0;                   ///< 0: any free port (see port())
  std::optional<net::tls_files> tls;        ///< required beyond loopback
  std::size_t max_request_bytes = pkit::tool::max_request_bytes;
  unsigned max_in_flight = 4;               ///< requests being answered at once
};

class remote_control_server {
public:
  /// Checks the address and the TLS set, starts the endpoint's actor system and publishes
  /// the control actor. `handler` must outlive the server (it is called until stop()
  /// returns). Throws remote_control_error.
  remote_control_server(control_handler& handler, remote_control_options options);

  /// stop().
  ~remote_control_server();

  remote_control_server(const remote_control_server&) = delete;
  remote_control_server& operator=(const remote_control_server&) = delete;

  /// The port listened on (the one chosen when options.port was 0).
  std::uint16_t port() const noexcept;

  /// Stops listening, waits for the requests in flight (each bounded by handle()) and ends
  /// the endpoint's actor system. Idempotent; never from within handle().
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace pkit::tool
