#pragma once

// /proc helpers shared by the fault tests and the fault probe: our own children and their
// states, our descriptors, bounded reads. Plain C++ and POSIX (no Boost.Test, no pkit).

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <dirent.h>
#include <poll.h>
#include <unistd.h>

namespace faults {

using steady = std::chrono::steady_clock;

/// Pids of this process's live or zombie children (every thread's), from
/// /proc/self/task/*/children.
inline std::vector<pid_t> own_children() {
  std::vector<pid_t> out;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return out;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f{std::string{"/proc/self/task/"} + e->d_name + "/children"};
    pid_t pid;
    while (f >> pid) out.push_back(pid);
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end());
  return out;
}

/// The state letter of process `pid` (R, S, Z, ...), or 0 when it does not exist.
inline char proc_state(pid_t pid) {
  std::ifstream f{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  const auto close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return 0;
  return text[close + 2];
}

/// Our children that are zombies right now.
inline std::vector<pid_t> own_zombies() {
  std::vector<pid_t> out;
  for (pid_t pid : own_children())
    if (proc_state(pid) == 'Z') out.push_back(pid);
  return out;
}

/// The number of open descriptors of this process (the listing's own fd not counted).
inline int open_fd_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (const dirent* e = ::readdir(dir))
    if (e->d_name[0] != '.') ++n;
  ::closedir(dir);
  return n - 1;
}

/// The open descriptors of the calling process, ascending (the listing's own fd left
/// out); empty if /proc/self/fd cannot be read. Usable in a child.
inline std::vector<int> own_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return {};
  const int self = ::dirfd(dir);
  std::vector<int> fds;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view name{e->d_name};
    int fd = -1;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), fd);
    if (ec == std::errc{} && end == name.data() + name.size() && fd != self) fds.push_back(fd);
  }
  ::closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

/// own_fds(), space-separated — what the helper's `fds` mode prints (it writes the list
/// to an open stdout, so an empty list means /proc/self/fd could not be read). Usable in
/// a child.
inline std::string list_own_fds() {
  const std::vector<int> fds = own_fds();
  if (fds.empty()) return "opendir failed";
  std::string out;
  for (int fd : fds) {
    if (!out.empty()) out += ' ';
    out += std::to_string(fd);
  }
  return out;
}

/// Writes all of `text` to `fd`.
inline bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// Reads `fds` until every one is at EOF or `deadline` passes. Returns one string per fd
/// and whether all reached EOF.
inline bool drain(std::vector<int> fds, std::vector<std::string>& out, steady::time_point deadline) {
  out.assign(fds.size(), {});
  std::vector<bool> open(fds.size(), true);
  auto any_open = [&] { return std::find(open.begin(), open.end(), true) != open.end(); };
  while (any_open()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0) return false;
    std::vector<pollfd> p;
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < fds.size(); ++i)
      if (open[i]) {
        p.push_back({fds[i], POLLIN, 0});
        idx.push_back(i);
      }
    int r = ::poll(p.data(), p.size(), static_cast<int>(left.count()) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    for (std::size_t k = 0; k < p.size(); ++k) {
      if (p[k].revents == 0) continue;
      char buf[65536];
      ssize_t n = ::read(p[k].fd, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        open[idx[k]] = false;
      } else {
        out[idx[k]].append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  return true;
}

/// How often `needle` occurs in `hay` (non-overlapping).
inline std::size_t count_of(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = hay.find(needle); pos != std::string_view::npos;
       pos = hay.find(needle, pos + needle.size()))
    ++n;
  return n;
}

/// The lines of `text`.
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace faults
