#pragma once

// Private to pkit_net: the checks tls_files::check() and tls_snapshot::take() share. The
// file-system part opens each file once and judges what that descriptor is (fstat), so
// that a snapshot can copy from the very descriptor it checked; the content part (libssl)
// runs on whatever paths it is given — the originals for check(), the sealed copies for
// take().

#include <pkit/net/error.hpp>
#include <pkit/net/tls_files.hpp>

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <optional>

namespace pkit::net::detail {

/// Which of certificate, key and CA a file is: they are checked differently.
enum class tls_role { certificate, key, ca };

/// Larger than any sane PEM chain, key or CA file: a cap on what is read into memory.
inline constexpr std::size_t max_tls_file_bytes = 1024 * 1024;

/// CAF's pem_passwd_cb copies the passphrase into OpenSSL's 1024-byte buffer with strncpy:
/// longer ones are cut, a NUL ends it early.
inline constexpr std::size_t max_passphrase_bytes = 1023;

/// The settings alone: no capath, certificate, key and CA given, the passphrase one CAF
/// passes on whole.
std::optional<error> check_settings(const tls_files& f);

/// Opens `file` once (read-only, close-on-exec, non-blocking so that a FIFO cannot hang
/// the caller) and checks the descriptor: a regular file of at most max_tls_file_bytes,
/// owned by the effective user or root, the key not accessible to group or others, the
/// certificate and CA not writable by group or others, the CA not empty; and no directory
/// above the file (as given and as resolved) writable by others without the sticky bit.
/// Returns the open descriptor in `fd` (the caller closes it) when nullopt; -1 otherwise.
std::optional<error> open_checked(const std::filesystem::path& file, tls_role role, int& fd);

/// The contents, with libssl: chain, key (with the passphrase), their match, the own
/// certificate's validity, the CA file's rules. Defined in tls_files.cpp.
std::optional<error> check_contents(const tls_files& f);

}  // namespace pkit::net::detail
