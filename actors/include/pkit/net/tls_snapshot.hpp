#pragma once

/// \file
/// `pkit::net::tls_snapshot`: a checked TLS file set copied into sealed memory, for the
/// actor system to read from for as long as it runs.
///
/// Why: CAF 0.17.6 loads the certificate, key and CA file again for every connection, on
/// its multiplexer thread, and throws there when one does not load — which ends the
/// process (std::terminate, "cannot load private key": seen with a node whose key file
/// was removed after start, on the next connection from anyone, authenticated or not).
/// Keys get rotated, files removed, tmp directories cleaned. A snapshot cannot change or
/// go away: each file is a memfd (memfd_create, sealed against writes and resizing) whose
/// /proc/self/fd/N path is what CAF is given.
///
/// What take() guarantees, and what not: each original is opened once; that descriptor is
/// judged (fstat: regular, owner, mode, at most 1 MiB), copied, and the contents are
/// checked in the copy only — so what CAF reads is what was checked, and a path swapped to
/// a FIFO, a device or a huge file is refused. It cannot tell a swap to *another valid
/// set* the process may read (that is what the owner and directory checks are for: only
/// the user, root, or nobody may be able to replace the files).
///
/// Lifetime: CAF reopens the copies for every connection, so the snapshot must outlive
/// the actor system given its files(), and is taken once (a second take() is refused
/// rather than closing copies a running system reads); moving onto a snapshot that holds
/// copies closes them — only do it when no system uses them.

#include <pkit/net/error.hpp>
#include <pkit/net/tls_files.hpp>

#include <optional>

namespace pkit::net {

class tls_snapshot {
 public:
  /// Empty: files() is empty until take() succeeds.
  tls_snapshot() = default;
  tls_snapshot(tls_snapshot&& other) noexcept;
  tls_snapshot& operator=(tls_snapshot&& other) noexcept;
  tls_snapshot(const tls_snapshot&) = delete;
  tls_snapshot& operator=(const tls_snapshot&) = delete;
  /// Closes the copies: only after the actor system that reads them is gone.
  ~tls_snapshot();

  /// Takes the snapshot of `files`, with every rule of tls_files::check(): the settings;
  /// each file opened once and its descriptor checked (the file-system rules), then copied
  /// from that descriptor into a sealed memfd (close-on-exec: children never inherit them;
  /// the key's copy mode 0600); then the contents checked in the copies. A refusal names
  /// the original file (tls_snapshot_failed for an OS error; tls_file_too_large beyond
  /// 1 MiB) and leaves the snapshot empty. Refused (tls_snapshot_failed, subject
  /// "snapshot") when this snapshot already holds copies. Not thread-safe on one object.
  std::optional<error> take(const tls_files& files);

  /// The copies, as paths "/proc/self/fd/N" (valid in this process only, while this object
  /// lives), with the original passphrase: pass to tls_files::apply.
  const tls_files& files() const noexcept { return files_; }

 private:
  void close_all() noexcept;

  tls_files files_;
  int fds_[3] = {-1, -1, -1};
};

}  // namespace pkit::net
