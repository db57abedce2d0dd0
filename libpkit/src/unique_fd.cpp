#include <pkit/unique_fd.hpp>

#include <unistd.h>

namespace pkit {

void unique_fd::reset(int fd) noexcept {
  // close() is never retried on EINTR: on Linux the descriptor is released regardless,
  // and a retry could close a descriptor another thread just got.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

}  // namespace pkit
