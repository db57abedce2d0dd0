#include "tls_file_checks.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

namespace pkit::net::detail {

namespace {

namespace fs = std::filesystem;

error refuse(errc code, const fs::path& file, std::string reason) {
  return {make_error_code(code), file.string(), std::move(reason)};
}

std::string mode_text(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

/// The first directory of `dirs_of`'s ancestors (nearest first) that others may write to
/// without the sticky bit: whoever that is could replace the file between any check and
/// any read.
std::optional<error> check_directories(const fs::path& file, const fs::path& dirs_of) {
  for (fs::path dir = dirs_of.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & S_IWOTH) != 0 &&
        (st.st_mode & S_ISVTX) == 0)
      return refuse(errc::tls_directory_writable, file,
                    "directory " + dir.string() + " has mode " + mode_text(st.st_mode) +
                      ": others may replace the file (chmod o-w, or the sticky bit)");
    if (dir == dir.root_path())
      break;
  }
  return std::nullopt;
}

std::optional<error> check_stat(const fs::path& file, tls_role role, const struct stat& st) {
  if (!S_ISREG(st.st_mode))
    return refuse(errc::tls_not_regular_file, file, "not a regular file");
  const uid_t euid = ::geteuid();
  if (st.st_uid != euid && st.st_uid != 0)
    return refuse(errc::tls_file_foreign_owner, file,
                  "owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " +
                    std::to_string(euid) + ") or root: its owner decides what is trusted");
  if (role == tls_role::key && (st.st_mode & 077) != 0)
    return refuse(errc::tls_key_exposed, file,
                  "mode " + mode_text(st.st_mode) + ", needs 0600 or stricter (chmod 600)");
  // Whoever may rewrite the CA file (or the chain) decides whom this process trusts.
  if (role != tls_role::key && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return refuse(errc::tls_file_writable, file,
                  "mode " + mode_text(st.st_mode) +
                    ", writable by group or others (chmod go-w)");
  if (role == tls_role::ca && st.st_size == 0)
    return refuse(errc::tls_ca_empty, file, "the file is empty");
  if (static_cast<std::size_t>(st.st_size) > max_tls_file_bytes)
    return refuse(errc::tls_file_too_large, file,
                  std::to_string(st.st_size) + " bytes, at most " +
                    std::to_string(max_tls_file_bytes));
  return std::nullopt;
}

}  // namespace

std::optional<error> check_settings(const tls_files& f) {
  if (!f.capath.empty())
    return refuse(errc::tls_capath_refused, f.capath,
                  "peers must be authenticated by a private CA file, not a CA directory");
  for (auto [file, name] : {std::pair{&f.certificate, "certificate"}, std::pair{&f.key, "key"},
                            std::pair{&f.ca, "CA file"}})
    if (file->empty())
      return error{make_error_code(errc::tls_incomplete), name, "not configured"};
  // Never the passphrase itself in a message.
  if (f.passphrase.find('\0') != std::string::npos)
    return error{make_error_code(errc::tls_passphrase_invalid), "passphrase",
                 "holds a NUL byte (CAF would pass on only what precedes it)"};
  if (f.passphrase.size() > max_passphrase_bytes)
    return error{make_error_code(errc::tls_passphrase_invalid), "passphrase",
                 std::to_string(f.passphrase.size()) + " bytes, at most " +
                   std::to_string(max_passphrase_bytes) + " (CAF would cut it)"};
  return std::nullopt;
}

std::optional<error> open_checked(const fs::path& file, tls_role role, int& fd) {
  fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    return refuse(e == ENOENT ? errc::tls_file_missing : errc::tls_file_unreadable, file,
                  std::strerror(e));
  }
  struct stat st {};
  std::optional<error> refused;
  if (::fstat(fd, &st) != 0)
    refused = refuse(errc::tls_file_unreadable, file, std::strerror(errno));
  if (!refused)
    refused = check_stat(file, role, st);
  std::error_code ec;
  if (!refused)
    refused = check_directories(file, fs::absolute(file, ec).lexically_normal());
  if (auto real = fs::canonical(file, ec); !refused && !ec)
    refused = check_directories(file, real);
  if (refused)
    ::close(std::exchange(fd, -1));
  return refused;
}

}  // namespace pkit::net::detail
