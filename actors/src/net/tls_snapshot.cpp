#include <pkit/net/tls_snapshot.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace pkit::net {

namespace {

error refuse(const std::filesystem::path& file, const char* stage, int err) {
  return {make_error_code(errc::tls_snapshot_failed), file.string(),
          std::string{stage} + ": " + std::strerror(err)};
}

/// Writes all of `size` bytes, retrying on EINTR and short writes.
bool write_all(int fd, const char* data, ssize_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, static_cast<std::size_t>(size));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    size -= n;
  }
  return true;
}

/// Copies `file` into a new sealed memfd with mode `mode`; the fd, or -1 with `err` set.
int copy_sealed(const std::filesystem::path& file, mode_t mode, std::optional<error>& err) {
  int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (in < 0) {
    err = refuse(file, "open", errno);
    return -1;
  }
  int out = ::memfd_create("pkit-tls", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (out < 0) {
    err = refuse(file, "memfd_create", errno);
    ::close(in);
    return -1;
  }
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || (n > 0 && !write_all(out, buf, n))) {
      err = refuse(file, n < 0 ? "read" : "write", errno);
      break;
    }
    if (n == 0)
      break;
  }
  ::close(in);
  if (!err && ::fchmod(out, mode) != 0)
    err = refuse(file, "fchmod", errno);
  if (!err && ::fcntl(out, F_ADD_SEALS,
                      F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    err = refuse(file, "seal", errno);
  if (err) {
    ::close(out);
    return -1;
  }
  return out;
}

}  // namespace

tls_snapshot::tls_snapshot(tls_snapshot&& other) noexcept
  : files_(std::move(other.files_)) {
  for (int i = 0; i < 3; ++i)
    fds_[i] = std::exchange(other.fds_[i], -1);
  other.files_ = {};
}

tls_snapshot& tls_snapshot::operator=(tls_snapshot&& other) noexcept {
  if (this != &other) {
    close_all();
    files_ = std::move(other.files_);
    other.files_ = {};
    for (int i = 0; i < 3; ++i)
      fds_[i] = std::exchange(other.fds_[i], -1);
  }
  return *this;
}

tls_snapshot::~tls_snapshot() { close_all(); }

void tls_snapshot::close_all() noexcept {
  for (int& fd : fds_)
    if (fd >= 0)
      ::close(std::exchange(fd, -1));
}

std::optional<error> tls_snapshot::take(const tls_files& files) {
  if (auto refused = files.check())
    return refused;
  tls_snapshot next;
  const std::filesystem::path* sources[3] = {&files.certificate, &files.key, &files.ca};
  const mode_t modes[3] = {0644, 0600, 0644};
  std::optional<error> err;
  for (int i = 0; i < 3; ++i) {
    next.fds_[i] = copy_sealed(*sources[i], modes[i], err);
    if (err)
      return err;
  }
  auto path_of = [](int fd) { return std::filesystem::path{"/proc/self/fd/" + std::to_string(fd)}; };
  next.files_ = {path_of(next.fds_[0]), path_of(next.fds_[1]), path_of(next.fds_[2]),
                 files.passphrase, {}};
  // The copies are what CAF will read: check them, not only the originals.
  if (auto refused = next.files_.check()) {
    refused->reason += " (in the copy of " + files.certificate.string() + ", " +
                       files.key.string() + ", " + files.ca.string() + ")";
    return refused;
  }
  *this = std::move(next);
  return std::nullopt;
}

}  // namespace pkit::net
