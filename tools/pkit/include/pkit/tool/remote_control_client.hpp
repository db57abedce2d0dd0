#pragma once

/// \file
/// `pkit::tool::remote_control_client`: the client side of remote control (`pkit ctl
/// --host`): connects to the remote_control_actor a `pkit run` publishes
/// (remote_control_server.hpp) and exchanges request and reply lines of the control
/// protocol (PROTOCOL.md) with it. One request at a time; one thread uses a client.

#include <pkit/net/tls_files.hpp>
#include <pkit/tool/control_client.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace pkit::tool {

class remote_control_client {
public:
  /// Connects to `host`:`port` within `timeout`: with `tls` over mutual TLS (the set is
  /// checked as pkit's own processes check theirs), without only to a numeric loopback
  /// address. Throws control_client_error: kind::no_server when nothing listens there,
  /// kind::io for a refused set of files, a failed TLS handshake (a certificate the
  /// other side does not trust, or none) or an actor there that is not pkit run's
  /// control, kind::timeout when the connect took longer.
  remote_control_client(const std::string& host, std::uint16_t port, const std::optional<net::tls_files>& tls,
                        std::chrono::milliseconds timeout);
  ~remote_control_client();

  remote_control_client(const remote_control_client&) = delete;
  remote_control_client& operator=(const remote_control_client&) = delete;

  /// As control_client::request: an error reply is returned (ok == false); a broken
  /// link, a timeout or a reply that is not the protocol throws control_client_error.
  control_reply request(const std::string& command, const nlohmann::json& args, std::chrono::milliseconds timeout);

  /// As control_client::stream (`events`, `tail`): opens the stream, then pulls its lines
  /// (remote_control.hpp) and hands each item to `on_item` until it returns false, the
  /// server ends the stream (its reason in result "end": "ended", "shutdown", "overrun",
  /// "unknown_session") or the link is lost ("closed", also when a pull is not answered
  /// within 5 s: pkit run answers one within about a second). `timeout` bounds the
  /// opening reply. Throws control_client_error.
  control_reply stream(const std::string& command, const nlohmann::json& args,
                       const std::function<bool(const nlohmann::json& item)>& on_item,
                       std::chrono::milliseconds timeout);

  /// Waits until pkit run's end closes the link (after `shutdown`); false when `timeout`
  /// passed first (negative: wait for ever).
  bool wait_closed(std::chrono::milliseconds timeout);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace pkit::tool
