#pragma once

/// \file
/// `pkit::stdio`: where a child's standard stream goes.

#include <string>
#include <sys/types.h>

namespace pkit {

/// What one of a child's standard streams (0, 1 or 2) is connected to. A value type;
/// nothing is opened until the process starts, so a bad path is reported by `start()`
/// (stage "open stdio", with the errno), not here.
class stdio {
public:
  enum class kind { inherit, null, file, pipe, fd };

  /// The child shares the parent's stream (the default).
  static stdio inherit() noexcept { return stdio{kind::inherit}; }
  /// /dev/null.
  static stdio null() noexcept { return stdio{kind::null}; }
  /// A pipe; the parent's end is taken with `process::take_stdin_pipe()` etc. after start.
  static stdio pipe() noexcept { return stdio{kind::pipe}; }
  /// A file opened for the stream: read-only for stdin; for stdout/stderr write-only,
  /// created (mode 0644) and truncated, or appended to when `append`. It is opened by
  /// the starting process, before any credential or directory change of the child's:
  /// with the parent's permissions, a relative path from the parent's working directory.
  /// `start()` never waits in the open (it may run on an actor's worker): a FIFO for
  /// stdin with no writer yet is opened, and the child reads end of file until one comes
  /// — a program that ends at end of input ends at once (and, supervised, is restarted),
  /// so open the writer first. A FIFO for output with no reader fails (ENXIO, as does a
  /// socket's path); a directory fails (EISDIR); a NUL byte in the path is
  /// invalid_argument. The terminal named is never made the parent's controlling one.
  static stdio file(std::string path, bool append = false) {
    stdio s{kind::file};
    s.path_ = std::move(path);
    s.append_ = append;
    return s;
  }
  /// A descriptor of the caller's, duplicated into the child at start. Not owned: it must
  /// stay open until `start()` returns.
  static stdio fd(int fd) noexcept {
    stdio s{kind::fd};
    s.fd_ = fd;
    return s;
  }

  kind type() const noexcept { return kind_; }
  const std::string& path() const noexcept { return path_; }
  bool append() const noexcept { return append_; }
  int borrowed_fd() const noexcept { return fd_; }

private:
  explicit stdio(kind k) noexcept : kind_(k) {}

  kind kind_ = kind::inherit;
  std::string path_;
  bool append_ = false;
  int fd_ = -1;
};

}  // namespace pkit
