#pragma once

/// \file
/// `pkit::tool::control_client`: the client side of the control protocol
/// (tools/pkit/PROTOCOL.md), used by `pkit ctl` and by tests. One connection, one
/// request at a time. Not thread-safe: one thread uses a client.

#include <pkit/tool/control_handler.hpp>
#include <pkit/unique_fd.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace pkit::tool {

/// A failed exchange (not an error reply: those are control_reply values).
class control_client_error : public std::runtime_error {
public:
  enum class kind {
    no_server,  ///< nothing listens at the path (or it does not exist)
    io,         ///< the connection broke
    timeout,    ///< no reply in time
    protocol,   ///< the server sent something that is not the protocol
    untrusted_server,  ///< the socket's server runs as another user (not us, not root): nothing was sent
  };
  control_client_error(kind k, const std::string& message) : std::runtime_error(message), kind_(k) {}
  kind what_kind() const noexcept { return kind_; }

private:
  kind kind_;
};

class control_client {
public:
  /// Connects to the server at `socket`. Throws control_client_error: kind::no_server
  /// ("no pkit run listening at PATH (is it running?)") when nothing listens there,
  /// kind::untrusted_server when the listening process runs as neither our euid nor root
  /// (checked with SO_PEERCRED before anything is sent: a request may carry secrets),
  /// kind::io for other failures (e.g. permission denied on the socket file).
  explicit control_client(const std::filesystem::path& socket);

  /// Sends one request and waits up to `timeout` for its reply. An error reply is
  /// returned (ok == false), not thrown. Throws control_client_error on a broken
  /// connection, a timeout or a reply that is not the protocol.
  control_reply request(const std::string& command, const nlohmann::json& args = nlohmann::json::object(),
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// Opens a stream and hands each item to `on_item` until it returns false, the server
  /// ends the stream or closes the connection. Returns the opening reply: an error reply
  /// when the stream could not be opened (on_item is then never called); on success its
  /// result holds "end": the end's reason ("ended", "shutdown"), "closed" when the
  /// connection closed without an end line, "stopped" when on_item returned false.
  /// `timeout` bounds the wait for the opening reply only. Throws control_client_error.
  control_reply stream(const std::string& command, const nlohmann::json& args,
                       const std::function<bool(const nlohmann::json& item)>& on_item,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// Waits until the server closes the connection (e.g. after `shutdown`); false when
  /// `timeout` passed first (a negative timeout waits for ever).
  bool wait_closed(std::chrono::milliseconds timeout);

  const std::filesystem::path& socket_path() const noexcept { return path_; }

private:
  void send_line(const std::string& line);
  /// The next line; nullopt at end of file. Throws on timeout (deadline) or error.
  std::optional<std::string> read_line(std::optional<std::chrono::steady_clock::time_point> deadline);

  std::filesystem::path path_;
  unique_fd fd_;
  std::string in_;
  std::int64_t next_id_ = 1;
};

}  // namespace pkit::tool
