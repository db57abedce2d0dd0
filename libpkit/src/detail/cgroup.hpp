#pragma once

// One run's cgroup v2 (`containment::cgroup`): a directory made for the run under a
// pkit-owned parent below the program's own cgroup,
//
//   <cgroup2 mount><program's cgroup>/pkit-<pid>/run-<n>
//
// that the child joins before it execs or runs its target. Everything the child starts
// stays in it — also descendants that setsid() or double-fork out of the process group —
// so a stop can signal all of them and knows when all of them are gone. Only core
// interface files are used (cgroup.procs, cgroup.events, cgroup.kill); no controller is
// enabled. Parent-side code only (it allocates); the child just writes "0" into
// `procs_fd()` with a raw system call.

#include <atomic>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <sys/types.h>

namespace pkit::detail {

/// Test-only fault injection (white-box tests include this header). Read at each create.
struct cgroup_test_hooks {
  /// Called with the new cgroup's directory right after it was made (e.g. to remove it,
  /// so that placing the child fails).
  static inline std::atomic<void (*)(const std::string& dir)> after_create{nullptr};
  /// Replaces the discovered location of the program's own cgroup (a directory path).
  static inline std::atomic<const char*> base{nullptr};
};

/// A run's cgroup. Owned by the run's process_state (shared with a removal retry once the
/// run is over). Not thread-safe by itself: called with the state's lock held, or by the
/// one reaper task that retries its removal.
class cgroup {
 public:
  /// Makes a new, empty cgroup for one run. Fails with the errno of the step that failed:
  /// ENOTSUP without a cgroup2 mount or a cgroup v2 entry in /proc/self/cgroup, EACCES /
  /// EROFS / EPERM where the program's cgroup is not writable (not delegated).
  static std::shared_ptr<cgroup> create(std::error_code& ec);

  cgroup(const cgroup&) = delete;
  cgroup& operator=(const cgroup&) = delete;
  /// Closes the descriptors and, as a last resort, tries to remove the directory.
  ~cgroup();

  /// The directory, e.g. /sys/fs/cgroup/unified/pkit-42/run-3.
  const std::string& dir() const noexcept { return dir_; }
  /// cgroup.procs opened for writing: a child writes "0" to it to join.
  int procs_fd() const noexcept { return procs_; }
  /// Closes `procs_fd()` once the child is in: a running child costs two descriptors.
  void placed() noexcept;
  /// Moves process `pid` into the cgroup (a forked child that waits for the go-ahead).
  std::error_code add(pid_t pid) const;
  /// Whether any live process is in the cgroup or below (cgroup.events "populated");
  /// true when it cannot be read, so that nobody is taken for gone.
  bool populated() const;
  /// The live processes in the cgroup and below (cgroup.procs).
  std::vector<pid_t> members() const;
  /// Sends `signo` once to every process in the cgroup, also to those that appear while
  /// this runs (forks in flight), through pidfds checked against the cgroup (never a
  /// recycled pid). Returns whether `leader` was among them.
  bool signal_all(int signo, pid_t leader) const;
  /// SIGKILL to everything in the cgroup at once (cgroup.kill, Linux 5.14), else to
  /// every member as `signal_all` does.
  void kill_all() const;
  /// Removes the directory (and sub-cgroups a child made); then pkit's parent directory
  /// if it is empty now. True when the cgroup is gone; false while it still holds live
  /// processes (EBUSY).
  bool remove();

 private:
  cgroup() = default;
  std::string dir_;     // absolute path
  std::string parent_;  // pkit-<pid>, removed when empty
  std::string tail_;    // "/pkit-42/run-3": how /proc/<pid>/cgroup of a member ends
  int dirfd_ = -1;
  int procs_ = -1;
  int events_ = -1;
  bool removed_ = false;
};

}  // namespace pkit::detail
