#pragma once

// Creating a child: its descriptors, then one of the three start methods (an external
// program through a CLONE_VM|CLONE_VFORK clone and exec; a fork-server target; a fork of
// this program that runs a C++ body). Runs with no lock held.

#include "detail/cgroup.hpp"
#include "detail/credentials.hpp"
#include "detail/notify_socket.hpp"
#include "detail/process_state.hpp"

#include <pkit/identity.hpp>
#include <pkit/unique_fd.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace pkit::detail {

/// Test-only fault injection (white-box tests include this header): `before_go` is called
/// with a forked child's pid just before the go-ahead byte is sent to it — a test kills
/// the child there; `while_starting` once a start has begun (phase `starting`, no lock
/// held) — a test releases the process there. One relaxed load each when unset.
struct launch_test_hooks {
  static inline std::atomic<void (*)(pid_t)> before_go{nullptr};
  static inline std::atomic<void (*)()> while_starting{nullptr};
  /// start(wait), its run published, about to wait for readiness (no lock held).
  static inline std::atomic<void (*)()> awaiting_ready{nullptr};
};

/// Descriptors prepared for a child: what it gets as 0..2 and beyond, and our pipe ends.
struct prepared_io {
  std::array<unique_fd, 3> owned;   // opened for the child (files, /dev/null, pipe ends)
  std::array<int, 3> source{-1, -1, -1};
  std::array<unique_fd, 3> parent_ends;
  std::vector<std::pair<int, int>> pass;  // {child fd, source}
  std::vector<int> keep;                  // sorted child fds above 2
  unique_fd notify_read, notify_write;
  credentials creds;                          // process_options::user/group, resolved
  std::unique_ptr<notify_socket> notify_sock;  // process_options::notify_socket
};

/// What launch() made: published into the state under its lock afterwards.
struct launched {
  pid_t pid = 0;
  unique_fd pidfd;
  bool leader = false;
  std::shared_ptr<fork_server_core> server;
  std::uint64_t server_id = 0;
  unique_fd status_read;
  std::shared_ptr<cgroup> cg;  // containment::cgroup: the run's cgroup, the child in it
};

/// The C++ body a forked child runs (the fork start method): `body(ctx)`'s result is its
/// exit code.
struct fork_body {
  int (*body)(void*) = nullptr;
  void* ctx = nullptr;
};

/// Refuses what `s`'s start method cannot do; opens what the child's descriptors come
/// from (files, /dev/null, pipes) and validates `pass_fds`/`notify_fd`/`rlimits`; resolves
/// `user`/`group` — or takes `given`, their lookup made elsewhere — and binds the notify
/// socket. `want_ready`: the start watches readiness (else a `notify_fd` gets /dev/null:
/// nobody reads it). Runs on the caller's thread (an open or a name-service lookup may
/// block), reading only `s`'s immutable configuration. Sets `stage`.
std::error_code prepare_io(const process_state& s, bool want_ready, prepared_io& io, const char*& stage,
                           const identity* given);

/// Creates the child of `s` from `io` (prepared by `prepare_io`), reading only the
/// state's immutable configuration, no lock held.
/// With `want_ready`, a forked or fork-server child reports its start-up on a status pipe
/// (`out.status_read`). Returns the error and sets `stage` and `program` for the report;
/// a child that was made but failed its set-up is reaped before this returns. Tells the
/// notify socket (if any) the child's pid.
std::error_code launch(const process_state& s, bool want_ready, fork_body body, launched& out,
                       prepared_io& io, const char*& stage, std::string& program);

}  // namespace pkit::detail
