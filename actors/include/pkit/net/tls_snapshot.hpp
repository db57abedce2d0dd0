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
/// /proc/self/fd/N path is what CAF is given, and what CAF reads is what check() passed.

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

  /// Checks `files` (tls_files::check), then copies the three files into sealed memfds
  /// (close-on-exec: children never inherit them; the key's copy mode 0600) and rechecks
  /// the copies, so that a file swapped between check and copy is caught. On success
  /// replaces what this snapshot held; on a refusal (tls_snapshot_failed for an OS error,
  /// naming the file) leaves it as it was. Not thread-safe on one object.
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
