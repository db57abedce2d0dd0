#include <pkit/net/tls_snapshot.hpp>

#include "tls_file_checks.hpp"

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

/// Copies what `in` (checked by open_checked) holds into a new sealed memfd with mode
/// `mode`, reading at most max_tls_file_bytes (the file may have grown since its fstat);
/// the memfd, or -1 with `err` set.
int copy_sealed(int in, const std::filesystem::path& file, mode_t mode,
                std::optional<error>& err) {
  int out = ::memfd_create("pkit-tls", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (out < 0) {
    err = refuse(file, "memfd_create", errno);
    return -1;
  }
  char buf[16384];
  std::size_t total = 0;
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
    total += static_cast<std::size_t>(n);
    if (total > detail::max_tls_file_bytes) {
      err = error{make_error_code(errc::tls_file_too_large), file.string(),
                  "more than " + std::to_string(detail::max_tls_file_bytes) + " bytes"};
      break;
    }
  }
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
  if (fds_[0] >= 0)
    return error{make_error_code(errc::tls_snapshot_failed), "snapshot",
                 "already taken: an actor system may be reading these copies; take a new "
                 "snapshot for a new system instead"};
  if (auto refused = detail::check_settings(files))
    return refused;
  tls_snapshot next;
  const std::filesystem::path* sources[3] = {&files.certificate, &files.key, &files.ca};
  const detail::tls_role roles[3] = {detail::tls_role::certificate, detail::tls_role::key,
                                     detail::tls_role::ca};
  const mode_t modes[3] = {0644, 0600, 0644};
  // Each original is opened once; what is judged (fstat), copied and then checked is that
  // one open file, so that swapping the path between check and copy changes nothing.
  for (int i = 0; i < 3; ++i) {
    int in = -1;
    if (auto refused = detail::open_checked(*sources[i], roles[i], in))
      return refused;
    std::optional<error> err;
    next.fds_[i] = copy_sealed(in, *sources[i], modes[i], err);
    ::close(in);
    if (err)
      return err;
  }
  auto path_of = [](int fd) { return std::filesystem::path{"/proc/self/fd/" + std::to_string(fd)}; };
  next.files_ = {path_of(next.fds_[0]), path_of(next.fds_[1]), path_of(next.fds_[2]),
                 files.passphrase, {}};
  // The contents are checked in the copies only: they are what CAF will read. A refusal
  // names the original file, not the copy.
  if (auto refused = detail::check_contents(next.files_)) {
    for (auto [copy, original] : {std::pair{&next.files_.certificate, sources[0]},
                                  std::pair{&next.files_.key, sources[1]},
                                  std::pair{&next.files_.ca, sources[2]}}) {
      if (refused->subject == copy->string())
        refused->subject = original->string();
      // "not the key of <certificate>: ...": a path followed by ':' cannot be a prefix of
      // another fd's path.
      const std::string spelled = copy->string() + ":";
      if (auto at = refused->reason.find(spelled); at != std::string::npos)
        refused->reason.replace(at, spelled.size(), original->string() + ":");
    }
    return refused;
  }
  *this = std::move(next);
  return std::nullopt;
}

}  // namespace pkit::net
