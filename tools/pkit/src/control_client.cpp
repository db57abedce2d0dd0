#include <pkit/tool/control_client.hpp>

#include <pkit/tool/control_protocol.hpp>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace pkit::tool {

namespace {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using kind = control_client_error::kind;

// A reply longer than this is not the protocol (a status of 1,000 programs is ~200 KB).
constexpr std::size_t max_reply_bytes = std::size_t{256} << 20;

std::string errno_text(int err) { return std::error_code(err, std::system_category()).message(); }

std::optional<clock::time_point> deadline_after(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) return std::nullopt;
  return clock::now() + timeout;
}

}  // namespace

control_client::control_client(const std::filesystem::path& socket) : path_(socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& s = socket.native();
  if (s.empty() || s.size() >= sizeof(addr.sun_path))
    throw control_client_error(kind::io, "control socket path \"" + s + "\" is empty or too long");
  std::memcpy(addr.sun_path, s.c_str(), s.size() + 1);
  fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd_) throw control_client_error(kind::io, "socket: " + errno_text(errno));
  if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR)
      throw control_client_error(kind::no_server, "no pkit run listening at " + s + " (is it running?)");
    throw control_client_error(kind::io, "cannot connect to " + s + ": " + errno_text(err));
  }
  // Before anything is sent (a request may carry secrets, e.g. an add snippet): the
  // listener must be us or root. Another user may have created the socket first, in a
  // shared directory such as /tmp/pkit-UID (REVIEW D6).
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    throw control_client_error(kind::io, "cannot check who listens at " + s + ": " + errno_text(errno));
  if (cred.uid != 0 && cred.uid != ::geteuid()) {
    fd_.reset();
    throw control_client_error(kind::untrusted_server,
                               "the server at " + s + " runs as uid " + std::to_string(cred.uid) + ", not as us (uid " +
                                   std::to_string(::geteuid()) + ") or root: nothing sent to it");
  }
}

void control_client::send_line(const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    const auto n = ::send(fd_.get(), line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw control_client_error(kind::io, "lost the connection to " + path_.string() + ": " + errno_text(errno));
    }
    done += static_cast<std::size_t>(n);
  }
}

std::optional<std::string> control_client::read_line(std::optional<clock::time_point> deadline) {
  for (;;) {
    if (const auto pos = in_.find('\n'); pos != std::string::npos) {
      std::string line = in_.substr(0, pos);
      in_.erase(0, pos + 1);
      return line;
    }
    if (in_.size() > max_reply_bytes) throw control_client_error(kind::protocol, "the daemon sent an over-long line");
    int wait_ms = -1;
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - clock::now()).count();
      if (left <= 0) throw control_client_error(kind::timeout, "no reply from " + path_.string() + " in time");
      wait_ms = static_cast<int>(std::min<std::int64_t>(left, 1 << 30));
    }
    pollfd p{fd_.get(), POLLIN, 0};
    const int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno != EINTR) throw control_client_error(kind::io, "poll: " + errno_text(errno));
    if (r <= 0) continue;
    std::array<char, 64 * 1024> buf;  // NOLINT: filled by recv
    const auto n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // A reset after the server's last line: whatever it sent first was read already.
      if (errno == ECONNRESET) return std::nullopt;
      throw control_client_error(kind::io, "lost the connection to " + path_.string() + ": " + errno_text(errno));
    }
    if (n == 0) return std::nullopt;
    in_.append(buf.data(), static_cast<std::size_t>(n));
  }
}

control_reply control_client::request(const std::string& command, const json& args, std::chrono::milliseconds timeout) {
  const auto id = next_id_++;
  try {
    send_line(json{{"id", id}, {"command", command}, {"args", args}}.dump() + "\n");
  } catch (const control_client_error&) {
    // The server may have refused us with a line (permission denied) and closed: read it.
  }
  const auto deadline = deadline_after(timeout);
  for (;;) {
    auto line = read_line(deadline);
    if (!line) throw control_client_error(kind::io, "the daemon at " + path_.string() + " closed the connection without replying");
    std::string error;
    auto d = decode_server_line(*line, error);
    if (!d) throw control_client_error(kind::protocol, error);
    if (d->what != decoded_line::kind::reply) continue;  // a stray stream line: not ours
    // An error with a null id answers whatever we sent (refused peer, over-long line).
    if (d->id == json(id) || (d->id.is_null() && !d->reply.ok)) return d->reply;
  }
}

control_reply control_client::stream(const std::string& command, const json& args,
                                     const std::function<bool(const json&)>& on_item, std::chrono::milliseconds timeout) {
  control_reply opened = request(command, args, timeout);
  if (!opened.ok) return opened;
  for (;;) {
    auto line = read_line(std::nullopt);
    if (!line) {
      opened.result["end"] = "closed";
      return opened;
    }
    std::string error;
    auto d = decode_server_line(*line, error);
    if (!d) throw control_client_error(kind::protocol, error);
    if (d->what == decoded_line::kind::end) {
      opened.result["end"] = d->end_reason;
      return opened;
    }
    if (d->what == decoded_line::kind::item && !on_item(d->item)) {
      opened.result["end"] = "stopped";
      return opened;
    }
  }
}

bool control_client::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = deadline_after(timeout);
  try {
    while (read_line(deadline)) {
    }
    return true;
  } catch (const control_client_error& e) {
    if (e.what_kind() == kind::timeout) return false;
    return true;  // broken is closed too
  }
}

}  // namespace pkit::tool
