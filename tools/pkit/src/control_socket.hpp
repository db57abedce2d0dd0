#pragma once

// Internal to pkit_tool: the control socket's file-system side (directory, stale socket,
// bind with mode 0600) and the peer check, kept apart from the server's event loop.

#include <pkit/unique_fd.hpp>

#include <filesystem>

#include <sys/types.h>

namespace pkit::tool::detail {

/// The socket file a listener was bound to, to remove it only if it is still ours, and
/// the claim on its path (see listen_at), released last.
struct bound_socket {
  unique_fd claim;  ///< `<path>.lock`, flock()ed for as long as the socket is served
  unique_fd fd;
  dev_t dev = 0;
  ino_t ino = 0;
};

/// Creates the directory of `path` (mode 0700) when missing, refuses a directory owned by
/// another user (root's too, unless we are root) or writable by others, claims the path
/// (an exclusive flock on `<path>.lock`, mode 0600, left in place), replaces a stale
/// socket, binds (socket mode 0600) and listens; nonblocking and close-on-exec. Throws control_server_error (`already_running` when
/// another server holds the claim or listens at `path`).
bound_socket listen_at(const std::filesystem::path& path);

/// Removes the socket file at `path` if it is still the one `s` was bound to.
void remove_socket_file(const std::filesystem::path& path, const bound_socket& s) noexcept;

/// The uid of the peer of a connected Unix socket; -1 when it cannot be read.
long peer_uid(int fd) noexcept;

/// Whether a peer with `uid` may control this process: our effective uid, or root.
bool peer_allowed(long uid) noexcept;

}  // namespace pkit::tool::detail
