#include "rotating_line_sink.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>

#include <pkit/unique_fd.hpp>

#include <cerrno>
#include <ctime>
#include <stdexcept>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pkit::tool::detail {
namespace {

// The records' levels carry the marker: info for the end of a line, debug for a piece
// continued by the next record (the levels mean nothing else here; sinks do not filter).
constexpr auto whole_line = spdlog::level::info;
constexpr auto continued_piece = spdlog::level::debug;

// Logs may hold secrets: readable by the owner's group at most (REVIEW D18).
constexpr mode_t file_mode = 0640;
constexpr mode_t dir_mode = 0750;

// %* : ' ' or '+', see log_capture.hpp's file format.
class marker_flag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    dest.push_back(msg.level == continued_piece ? '+' : ' ');
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<marker_flag>(); }
};

[[noreturn]] void fail(const std::string& what, int err) {
  throw std::runtime_error(what + ": " + std::error_code(err, std::system_category()).message());
}

/// Creates `dir`'s missing components with mode 0750 (an existing one is left as it is).
void make_directories(const std::filesystem::path& dir) {
  std::filesystem::path so_far;
  for (const auto& part : dir) {
    so_far /= part;
    if (::mkdir(so_far.c_str(), dir_mode) != 0 && errno != EEXIST)
      fail("cannot create the log directory \"" + so_far.string() + "\"", errno);
  }
}

/// Opens `path` for appending without following a symbolic link: as root, in a log_dir
/// another user can write, a planted link would point our writes (and rotation's
/// truncation) at any file. O_NONBLOCK so that a FIFO planted there fails instead of
/// blocking; only a regular file is accepted.
unique_fd open_log_file(const std::filesystem::path& path, bool truncate) {
  const int flags = O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (truncate ? O_TRUNC : 0);
  unique_fd fd(::open(path.c_str(), flags, file_mode));
  if (!fd) {
    if (errno == ELOOP)
      throw std::runtime_error("log file \"" + path.string() +
                               "\" is a symbolic link: refused (pkit never follows a link at a log path)");
    fail("cannot open the log file \"" + path.string() + "\"", errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail("cannot stat the log file \"" + path.string() + "\"", errno);
  if (!S_ISREG(st.st_mode)) throw std::runtime_error("log file \"" + path.string() + "\" is not a regular file");
  return fd;
}

/// spdlog's rotation scheme (see log_capture.hpp) over a descriptor of our own: spdlog's
/// file_helper opens with fopen, which follows links and creates files 0644. Used by the
// capture's reader thread alone (and by stop() after it ended).
class rotating_line_sink final : public log_capture::line_sink {
public:
  explicit rotating_line_sink(const output_spec& spec)
      : path_(spec.path), max_bytes_(spec.max_bytes), keep_(spec.keep) {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc, "\n");
    f->add_flag<marker_flag>('*');
    f->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ%*%v");
    formatter_ = std::move(f);
    if (path_.has_parent_path()) make_directories(path_.parent_path());
    fd_ = open_log_file(path_, false);
    struct stat st {};
    if (::fstat(fd_.get(), &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
  }

  void write(std::string_view text, bool continued) override {
    spdlog::details::log_msg msg(spdlog::string_view_t{}, continued ? continued_piece : whole_line,
                                 spdlog::string_view_t(text.data(), text.size()));
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    // Between records only, and never an empty file: a record longer than max_bytes
    // fills a file alone.
    if (size_ + formatted.size() > max_bytes_ && size_ > 0) rotate();
    pending_.append(formatted.data(), formatted.size());
    size_ += formatted.size();
    if (pending_.size() >= buffer_bytes) flush();
  }

  /// Writes what is buffered (the capture calls it once its pipes are drained).
  void flush() override {
    std::string out;
    out.swap(pending_);  // dropped even on failure: the capture stops writing then anyway
    write_all(out.data(), out.size());
  }

private:
  // Records are batched up to this size between flushes: one write(2) per line would
  // cost a system call per line under a flooding child.
  static constexpr std::size_t buffer_bytes = 64 * 1024;

  void write_all(const char* data, std::size_t n) {
    if (n == 0) return;
    if (!fd_) throw std::runtime_error("log file \"" + path_.string() + "\" is not open (a rotation failed)");
    while (n > 0) {
      const auto w = ::write(fd_.get(), data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("cannot write the log file \"" + path_.string() + "\"", errno);
      }
      data += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  // FILE.{keep-1} -> FILE.{keep}, ..., FILE -> FILE.1 (rename(2) replaces a link at the
  // target, never follows it), then a fresh FILE.
  void rotate() {
    flush();
    fd_.reset();
    for (std::uint32_t i = keep_; i > 0; --i) {
      const auto src = spdlog::sinks::rotating_file_sink_st::calc_filename(path_.string(), i - 1);
      const auto dst = spdlog::sinks::rotating_file_sink_st::calc_filename(path_.string(), i);
      if (::rename(src.c_str(), dst.c_str()) != 0 && errno != ENOENT)
        fail("cannot rotate \"" + src + "\" to \"" + dst + "\"", errno);
    }
    size_ = 0;
    fd_ = open_log_file(path_, true);  // keep = 0: FILE itself starts over
  }

  std::filesystem::path path_;
  std::uint64_t max_bytes_;
  std::uint32_t keep_;
  std::unique_ptr<spdlog::formatter> formatter_;
  unique_fd fd_;
  std::uint64_t size_ = 0;  // the file's, buffered records included
  std::string pending_;
};

}  // namespace

std::shared_ptr<log_capture::line_sink> make_rotating_line_sink(const output_spec& spec) {
  return std::make_shared<rotating_line_sink>(spec);
}

}  // namespace pkit::tool::detail
