#pragma once

/// \file
/// `pkit::unique_fd`: sole ownership of a file descriptor.

#include <utility>

namespace pkit {

/// Owns one file descriptor and closes it on destruction. Move-only. -1 means empty.
class unique_fd {
public:
  constexpr unique_fd() noexcept = default;
  /// Takes ownership of `fd` (which may be -1).
  constexpr explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  /// The descriptor, still owned; -1 when empty.
  constexpr int get() const noexcept { return fd_; }
  constexpr explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Gives up ownership without closing.
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the owned descriptor (errors from close are ignored: the fd is gone anyway)
  /// and takes `fd` instead.
  void reset(int fd = -1) noexcept;

private:
  int fd_ = -1;
};

}  // namespace pkit
