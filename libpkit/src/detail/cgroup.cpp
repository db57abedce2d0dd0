#include "detail/cgroup.hpp"

#include "detail/pidfd.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

namespace pkit::detail {
namespace {

std::string read_fd(int fd, bool from_start) {
  std::string out;
  char buf[1024];
  off_t off = 0;
  for (;;) {
    const ssize_t n = from_start ? ::pread(fd, buf, sizeof buf, off) : ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    off += n;
  }
  return out;
}

std::string read_path(const char* path, int dirfd = AT_FDCWD) {
  const int fd = ::openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string s = read_fd(fd, false);
  ::close(fd);
  return s;
}

bool write_str(int fd, const std::string& s) {
  ssize_t n;
  do n = ::write(fd, s.data(), s.size());
  while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(s.size());
}

// The program's own cgroup v2 as a directory: the cgroup2 mount (from mountinfo) joined
// with the "0::<path>" line of /proc/self/cgroup (both relative to the cgroup namespace).
// Looked up once: pkit's run cgroups are made there even if the program moves later.
std::error_code own_cgroup_dir(std::string& out) {
  static std::once_flag once;
  static std::string dir;
  static int error = 0;
  std::call_once(once, [] {
    std::string own;
    const std::string self = read_path("/proc/self/cgroup");
    for (std::size_t at = 0; at < self.size();) {
      std::size_t end = self.find('\n', at);
      if (end == std::string::npos) end = self.size();
      if (self.compare(at, 3, "0::") == 0) own = self.substr(at + 3, end - at - 3);
      at = end + 1;
    }
    const std::string info = read_path("/proc/self/mountinfo");
    std::string mount;
    for (std::size_t at = 0; at < info.size() && mount.empty();) {
      std::size_t end = info.find('\n', at);
      if (end == std::string::npos) end = info.size();
      const std::string line = info.substr(at, end - at);
      at = end + 1;
      // "id parent major:minor root mount-point options... - fstype source super-options"
      const auto dash = line.find(" - ");
      if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
      std::string field[5];
      std::size_t p = 0;
      for (auto& f : field) {
        const std::size_t q = std::min(line.find(' ', p), dash);
        f = line.substr(p, q - p);
        p = q + 1;
      }
      const std::string& root = field[3];
      // Only a mount that shows our cgroup (its root is an ancestor of it) will do.
      if (root == "/") {
        mount = field[4] + (own == "/" ? "" : own);
      } else if (own.compare(0, root.size(), root) == 0 &&
                 (own.size() == root.size() || own[root.size()] == '/')) {
        mount = field[4] + own.substr(root.size());
      }
    }
    if (own.empty() || own.find(" (deleted)") != std::string::npos || mount.empty()) {
      error = ENOTSUP;
      return;
    }
    dir = mount;
  });
  if (error != 0) return {error, std::system_category()};
  out = dir;
  return {};
}

// Removes a cgroup directory and the sub-cgroups a child may have made in it, deepest
// first. Returns rmdir's errno (0: removed, or it was gone already).
int remove_tree(const std::string& path) {
  if (DIR* d = ::opendir(path.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (e->d_type == DT_DIR && name != "." && name != "..") remove_tree(path + "/" + name);
    }
    ::closedir(d);
  }
  if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return 0;
  return errno;
}

void collect_pids(const std::string& path, std::vector<pid_t>& out) {
  const std::string procs = read_path((path + "/cgroup.procs").c_str());
  const char* p = procs.c_str();
  while (*p != '\0') {
    char* end = nullptr;
    const long pid = std::strtol(p, &end, 10);
    if (end == p) break;
    if (pid > 0) out.push_back(static_cast<pid_t>(pid));
    p = end;
    while (*p == '\n') ++p;
  }
  if (DIR* d = ::opendir(path.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (e->d_type == DT_DIR && name != "." && name != "..") collect_pids(path + "/" + name, out);
    }
    ::closedir(d);
  }
}

std::atomic<std::uint64_t> next_run{1};

}  // namespace

std::shared_ptr<cgroup> cgroup::create(std::error_code& ec) {
  ec.clear();
  std::string base;
  if (const char* forced = cgroup_test_hooks::base.load()) {
    base = forced;
  } else if ((ec = own_cgroup_dir(base))) {
    return nullptr;
  }
  std::shared_ptr<cgroup> cg(new cgroup());
  cg->parent_ = base + "/pkit-" + std::to_string(::getpid());
  cg->tail_ = "/pkit-" + std::to_string(::getpid()) + "/run-" + std::to_string(next_run++);
  cg->dir_ = base + cg->tail_;
  // The parent is removed when its last run cgroup goes, possibly by another thread
  // between our two mkdirs: then make it again.
  for (int attempt = 0;; ++attempt) {
    if (::mkdir(cg->parent_.c_str(), 0755) != 0 && errno != EEXIST) {
      ec.assign(errno, std::system_category());
      return nullptr;
    }
    if (::mkdir(cg->dir_.c_str(), 0755) == 0) break;
    if (errno != ENOENT || attempt == 8) {
      ec.assign(errno, std::system_category());
      ::rmdir(cg->parent_.c_str());
      return nullptr;
    }
  }
  cg->dirfd_ = ::open(cg->dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg->dirfd_ >= 0) cg->procs_ = ::openat(cg->dirfd_, "cgroup.procs", O_WRONLY | O_CLOEXEC);
  if (cg->procs_ >= 0) cg->events_ = ::openat(cg->dirfd_, "cgroup.events", O_RDONLY | O_CLOEXEC);
  if (cg->events_ < 0) {
    // A directory without cgroup.procs is no cgroup (the path is not on a cgroup2 mount).
    ec.assign(errno, std::system_category());
    return nullptr;  // the destructor removes the directory
  }
  if (auto hook = cgroup_test_hooks::after_create.load()) hook(cg->dir_);
  return cg;
}

cgroup::~cgroup() {
  if (!removed_) remove();
  for (int fd : {events_, procs_, dirfd_})
    if (fd >= 0) ::close(fd);
}

void cgroup::placed() noexcept {
  if (procs_ >= 0) ::close(procs_);
  procs_ = -1;
}

std::error_code cgroup::add(pid_t pid) const {
  if (write_str(procs_, std::to_string(pid))) return {};
  return {errno, std::system_category()};
}

bool cgroup::populated() const {
  const std::string events = read_fd(events_, true);
  const auto at = events.find("populated ");
  if (at == std::string::npos) return true;
  return events.compare(at + 10, 1, "0") != 0;
}

std::vector<pid_t> cgroup::members() const {
  std::vector<pid_t> pids;
  collect_pids(dir_, pids);
  return pids;
}

bool cgroup::signal_all(int signo, pid_t leader) const {
  std::vector<pid_t> done;
  bool leader_signalled = false;
  // A process forking while we signal may add a child we did not see; a pass that finds
  // nobody new ends it (bounded: a fork bomb is for cgroup.kill at the deadline).
  for (int pass = 0; pass < 8; ++pass) {
    bool found = false;
    for (pid_t pid : members()) {
      if (std::find(done.begin(), done.end(), pid) != done.end()) continue;
      done.push_back(pid);
      found = true;
      const int fd = pidfd_open(pid, 0);
      if (fd < 0) continue;  // gone meanwhile
      // The pidfd pins the process; if the pid was recycled after cgroup.procs was read,
      // the process it names now is not in our cgroup.
      const std::string where = read_path(("/proc/" + std::to_string(pid) + "/cgroup").c_str());
      const auto at = where.find(tail_);
      const bool ours = at != std::string::npos &&
                        (where.compare(at + tail_.size(), 1, "\n") == 0 ||
                         where.compare(at + tail_.size(), 1, "/") == 0);
      if (ours && pidfd_send_signal(fd, signo) == 0 && pid == leader) leader_signalled = true;
      ::close(fd);
    }
    if (!found) break;
  }
  return leader_signalled;
}

void cgroup::kill_all() const {
  const int fd = ::openat(dirfd_, "cgroup.kill", O_WRONLY | O_CLOEXEC);
  const bool killed = fd >= 0 && write_str(fd, "1");
  if (fd >= 0) ::close(fd);
  if (!killed) signal_all(SIGKILL, 0);
}

bool cgroup::remove() {
  if (removed_) return true;
  if (remove_tree(dir_) != 0) return false;
  removed_ = true;
  ::rmdir(parent_.c_str());  // fails while other runs of this program have cgroups: fine
  return true;
}

}  // namespace pkit::detail
