#pragma once

/// \file
/// The control protocol's wire format (documented in tools/pkit/PROTOCOL.md): one JSON
/// object per line both ways. This header holds what both ends share: the limits, the
/// decoding and checking of a request line, the encoding of replies, stream items and
/// stream ends, the default socket path and `pkit ctl`'s exit codes. Everything here is
/// pure (no I/O) and may be called on any thread.

#include <pkit/tool/control_handler.hpp>

#include <nlohmann/json.hpp>
#include <pkit/tool/signals.hpp>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace pkit::tool {

/// The protocol version, answered by `hello`. Bumped on incompatible changes only.
inline constexpr int control_protocol_version = 1;

/// The longest request line the server accepts (without its newline).
inline constexpr std::size_t max_request_bytes = std::size_t{1} << 20;

/// The deepest nesting of arrays/objects a request may have (hostile input otherwise
/// costs stack and time for nothing: no command needs more than 3).
inline constexpr std::size_t max_request_depth = 16;

/// Exit codes of `pkit ctl` that scripts can rely on (also listed in PROTOCOL.md).
namespace ctl_exit {
inline constexpr int success = 0;          ///< done
inline constexpr int failed = 1;           ///< the daemon answered with an error, or the exchange failed
inline constexpr int usage = 2;            ///< bad command line
inline constexpr int not_running = 3;      ///< `status NAME…`: a named program is not running (LSB)
inline constexpr int unknown_program = 4;  ///< a name that the tree does not have
inline constexpr int unavailable = 69;     ///< no `pkit run` listening at the socket (EX_UNAVAILABLE)
}  // namespace ctl_exit

/// One decoded and shape-checked request.
struct control_request {
  nlohmann::json id;        ///< a scalar (null when the client sent none); echoed in every reply line
  std::string command;      ///< one of the commands of PROTOCOL.md
  nlohmann::json args;      ///< an object whose keys and value types are those of `command`
  bool is_stream = false;   ///< `events` or `tail`
};

/// The outcome of decoding one line: a request, or the error reply to send (with the id
/// when one could be read, else null).
struct decoded_request {
  std::optional<control_request> request;
  nlohmann::json id;
  control_reply error;
};

/// Decodes one request line (without its newline) and checks its shape: a JSON object,
/// a scalar "id", a known "command", "args" an object (absent: {}) holding only the
/// command's keys, each of its type, the required ones present. Never throws.
/// Error codes: "bad_request" (not JSON, not an object, too deep, a wrong or missing
/// field), "unknown_command".
decoded_request decode_request(std::string_view line);

/// True for the commands answered by a stream (`events`, `tail`).
bool is_stream_command(std::string_view command) noexcept;

/// A reply line (with its newline): {"id":…,"ok":true,"result":…} or
/// {"id":…,"ok":false,"error":{"code":…,"message":…}}. Invalid UTF-8 in strings is
/// replaced (a child's log line may hold any bytes), never thrown on.
std::string encode_reply(const nlohmann::json& id, const control_reply& reply);

/// A stream item line: {"id":…,"item":…}.
std::string encode_item(const nlohmann::json& id, const nlohmann::json& item);

/// The last line of a stream: {"id":…,"end":true,"reason":…}.
std::string encode_end(const nlohmann::json& id, std::string_view reason);

/// A reply line as read by a client: its id, and either a reply, an item or an end.
struct decoded_line {
  enum class kind { reply, item, end };
  kind what = kind::reply;
  nlohmann::json id;
  control_reply reply;      ///< kind::reply
  nlohmann::json item;      ///< kind::item
  std::string end_reason;   ///< kind::end
};

/// Decodes a line sent by the server. Returns nullopt (and sets `error`) when the line is
/// not one of the three shapes above.
std::optional<decoded_line> decode_server_line(std::string_view line, std::string& error);

/// The "signal" argument of a request: a number (1–64) or a name as parse_signal(text)
/// reads it. nullopt when it names no signal (the daemon's check of "signal").
std::optional<int> parse_signal(const nlohmann::json& value);

/// The control socket of a tree named `name` when the file does not say
/// (`[pkit] control_socket`): $XDG_RUNTIME_DIR/pkit/NAME.sock when XDG_RUNTIME_DIR is an
/// absolute path; else /run/pkit/NAME.sock when running as root (euid 0); else
/// /tmp/pkit-UID/NAME.sock. The one rule used by both `pkit run` and `pkit ctl`.
std::filesystem::path default_control_socket(std::string_view name);

}  // namespace pkit::tool
