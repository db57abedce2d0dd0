#pragma once

/// \file
/// The seam between the control channel (control_server: socket, framing, peer checks)
/// and what answers it (the daemon of `pkit run`): one request in, one reply out, plus
/// streams (`events`, `tail`). The server owns no supervision state; the handler owns no
/// socket. Tests drive either side alone.

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>

namespace pkit::tool {

/// The answer to one request. `ok` with a `result`, or an error: a stable, machine-
/// readable `code` ("unknown_program", "bad_request", "shutting_down", ...) and a message
/// for humans naming what was wrong.
struct control_reply {
  bool ok = true;
  nlohmann::json result = nlohmann::json::object();
  std::string code;
  std::string message;

  static control_reply success(nlohmann::json result = nlohmann::json::object()) {
    control_reply r;
    r.result = std::move(result);
    return r;
  }
  static control_reply failure(std::string code, std::string message) {
    control_reply r;
    r.ok = false;
    r.code = std::move(code);
    r.message = std::move(message);
    return r;
  }
};

/// A live stream (`events`, `tail`): items flow to its sink until it is destroyed.
/// Destroying it unhooks the sink; after the destructor returns, the sink is never called
/// again.
class control_stream {
public:
  virtual ~control_stream() = default;
};

/// Answers control requests. Implemented by the daemon; called by the control server.
class control_handler {
public:
  /// Receives one stream item (a JSON object). Called on any thread, never concurrently
  /// for one stream; must not block (the server queues, bounded, and drops a client that
  /// falls too far behind). Returns false when the client is gone: the stream may end.
  /// It may be called before open_stream returns (the server sends the ok reply first).
  /// An item that is JSON null ends the stream from the daemon's side (the program was
  /// removed, ...): the client gets {"end":true,"reason":"ended"} and is disconnected.
  using sink = std::function<bool(const nlohmann::json& item)>;

  virtual ~control_handler() = default;

  /// One request: `command` ("status", "start", "stop", "restart", "signal", "add",
  /// "remove", "reload", "shutdown") with its `args`. The server has checked the shape
  /// (tools/pkit/PROTOCOL.md, "Commands"): only the command's keys, each of its JSON
  /// type, the required ones present ("names" a non-empty array of strings for
  /// start/stop/restart/signal/remove, optional for status; "signal" a valid name or
  /// number — parse it with parse_signal() of control_protocol.hpp; "toml" a string,
  /// "file" a string, "group" an array of strings for add). The handler checks what the
  /// values mean (names that exist, ...). Result shapes and error codes: PROTOCOL.md
  /// ("unknown_program" makes `pkit ctl` exit 4). Called on the control server's worker
  /// threads (several at once), never on a supervision thread: it may wait for the
  /// supervisors' answers, but each wait is bounded. An exception becomes an "internal"
  /// error reply. After a "shutdown" reply, whoever owns the server calls its stop()
  /// (never from within handle()).
  virtual control_reply handle(const std::string& command, const nlohmann::json& args) = 0;

  /// Opens a stream: `command` "events" (args: optional "names") or "tail" (args: "name",
  /// optional "stream": "stdout"/"stderr"/"both" — default both, optional "lines": a
  /// non-negative integer of history lines — default 10). Item shapes: PROTOCOL.md. On
  /// error returns nullptr and sets `error`. Called on a worker thread; the server
  /// destroys the stream on a worker thread too (never on its event loop), when the
  /// client leaves or the server stops.
  virtual std::unique_ptr<control_stream> open_stream(const std::string& command, const nlohmann::json& args,
                                                      sink to, control_reply& error) = 0;
};

}  // namespace pkit::tool
