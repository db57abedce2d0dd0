#include "control_socket.hpp"

#include <pkit/tool/control_server.hpp>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace pkit::tool::detail {

namespace {

using kind = control_server_error::kind;

[[noreturn]] void fail(kind k, const std::string& what) { throw control_server_error(k, what); }

[[noreturn]] void fail_errno(kind k, const std::string& what, int err) {
  fail(k, what + ": " + std::error_code(err, std::system_category()).message());
}

// A call on the path that failed: bad_path when the path is at fault (missing, a link,
// no permission, read-only), system when the program or the machine is (out of
// descriptors, memory, locks, space, an I/O error) — the same path serves once that is
// remedied, and an embedder that offers another path on bad_path would mislead.
[[noreturn]] void fail_at_path(const std::string& what, int err) {
  switch (err) {
    case EMFILE: case ENFILE: case ENOMEM: case ENOBUFS: case ENOLCK: case ENOSPC: case EDQUOT: case EIO:
      fail_errno(kind::system, what, err);
    default:
      fail_errno(kind::bad_path, what, err);
  }
}

sockaddr_un address_of(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& s = path.native();
  if (s.empty() || s.size() >= sizeof(addr.sun_path))
    fail(kind::bad_path, "control socket path \"" + s + "\" must have 1 to " +
                             std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  std::memcpy(addr.sun_path, s.c_str(), s.size() + 1);
  return addr;
}

std::string octal(unsigned mode) {
  std::array<char, 8> buf{};
  std::snprintf(buf.data(), buf.size(), "%04o", mode);
  return buf.data();
}

/// Makes `dir` and its missing ancestors with mode 0700 (the socket inside is then
/// unreachable to others even in the instant between bind and chmod), and refuses a
/// directory someone else could swap the socket in (REVIEW D6): a symbolic link (whoever
/// owns its parent can re-point it), one owned by another user (root's only when we are
/// root: a root-owned shared directory such as /tmp is writable by all), or one the
/// group or others may write.
void prepare_directory(const std::filesystem::path& dir) {
  std::filesystem::path so_far;
  for (const auto& part : dir) {
    so_far /= part;
    if (::mkdir(so_far.c_str(), 0700) != 0 && errno != EEXIST)
      fail_at_path("cannot create directory \"" + so_far.string() + "\"", errno);
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) fail_at_path("cannot use directory \"" + dir.string() + "\"", errno);
  if (S_ISLNK(st.st_mode))
    fail(kind::bad_path, "socket directory \"" + dir.string() + "\" is a symbolic link: name the real directory");
  if (!S_ISDIR(st.st_mode)) fail(kind::bad_path, "\"" + dir.string() + "\" is not a directory");
  if (st.st_uid != ::geteuid())
    fail(kind::bad_path, "directory \"" + dir.string() + "\" belongs to uid " + std::to_string(st.st_uid) +
                             ", not to us (uid " + std::to_string(::geteuid()) + ")");
  if ((st.st_mode & 022) != 0)
    fail(kind::bad_path, "directory \"" + dir.string() + "\" is writable by group or others (mode " +
                             octal(st.st_mode & 07777) + "): they could replace the socket");
}

/// A socket file already at `path`: a live server's (refuse) or a stale one (remove).
void clear_stale_socket(const std::filesystem::path& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    fail_at_path("cannot use \"" + path.string() + "\"", errno);
  }
  if (!S_ISSOCK(st.st_mode)) fail(kind::bad_path, "\"" + path.string() + "\" exists and is not a socket");
  // Non-blocking: a listener whose backlog is full (a server that does not accept, or
  // not pkit's) made a blocking connect wait for it, and the start hang. EAGAIN is a
  // listener all the same.
  unique_fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe) fail_errno(kind::system, "socket", errno);
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN)
    fail(kind::already_running, "a pkit run is already listening at \"" + path.string() + "\"");
  if (errno != ECONNREFUSED)
    fail_at_path("cannot probe the existing socket \"" + path.string() + "\"", errno);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    fail_at_path("cannot remove the stale socket \"" + path.string() + "\"", errno);
}

/// The claim on `path`: without it, a server that probes while another is between its
/// bind and its listen (a connect is refused then, as at a stale socket) removed the
/// other's socket and bound its own — two servers, one of them unreachable. The lock file
/// stays: removing it would let a third server lock a new file while the second holds the
/// old one. The kernel drops the lock with its holder, so no stale claim outlives a crash.
unique_fd claim_path(const std::filesystem::path& path) {
  const std::string lock_path = path.string() + ".lock";
  unique_fd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) fail_at_path("cannot open the lock file \"" + lock_path + "\"", errno);
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) fail(kind::already_running, "a pkit run is already listening at \"" + path.string() + "\"");
    fail_at_path("cannot lock \"" + lock_path + "\"", errno);
  }
  return fd;
}

}  // namespace

bound_socket listen_at(const std::filesystem::path& path) {
  const sockaddr_un addr = address_of(path);
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  prepare_directory(dir);
  bound_socket s;
  s.claim = claim_path(path);
  clear_stale_socket(path, addr);

  s.fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.fd) fail_errno(kind::system, "socket", errno);
  if (::bind(s.fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    // Someone bound between our probe and now: that is a live server.
    if (errno == EADDRINUSE) fail(kind::already_running, "a pkit run is already listening at \"" + path.string() + "\"");
    fail_at_path("cannot bind \"" + path.string() + "\"", errno);
  }
  struct stat st {};
  if (::chmod(path.c_str(), 0600) != 0 || ::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    fail_errno(kind::system, "cannot set the mode of \"" + path.string() + "\"", err);
  }
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  if (::listen(s.fd.get(), SOMAXCONN) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    fail_errno(kind::system, "listen", err);
  }
  return s;
}

void remove_socket_file(const std::filesystem::path& path, const bound_socket& s) noexcept {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && st.st_dev == s.dev && st.st_ino == s.ino) ::unlink(path.c_str());
}

long peer_uid(int fd) noexcept {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
  return static_cast<long>(cred.uid);
}

bool peer_allowed(long uid) noexcept { return uid == 0 || uid == static_cast<long>(::geteuid()); }

}  // namespace pkit::tool::detail
