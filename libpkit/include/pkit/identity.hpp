#pragma once

/// \file
/// `process_options::user` and `group`, looked up ahead of a start.

#include <string>
#include <system_error>
#include <vector>

#include <sys/types.h>

namespace pkit {

/// A user and group looked up in the name service, as `process::start()` looks up
/// `process_options::user` and `group` before it spawns — or why they could not be.
///
/// For callers whose starting thread must not wait on the name service (NSS may be LDAP
/// or sssd, whose lookups wait seconds on a server): look up on another thread, then start
/// with the result (`process::start(const identity&)`), which does no lookup itself. A
/// start that no longer wants the lookup simply drops it: nothing was spawned for it.
///
/// A plain value: copy, move and drop it on any thread; const members are thread-safe.
class identity {
public:
  /// The identity of no user and no group: a child keeps this program's credentials.
  identity() = default;

  /// Looks `user` and `group` up (either may be ""), exactly as `start()` would — and may
  /// therefore block on the name service. Never throws: a failed lookup (out of memory
  /// included: ENOMEM) is kept in the value (`error()`, `stage()`), and a start with it
  /// fails with both.
  static identity lookup(std::string user, std::string group) noexcept;

  /// The names looked up. A start checks them against its process's options.
  const std::string& user() const noexcept { return user_; }
  const std::string& group() const noexcept { return group_; }
  /// Empty when the lookup succeeded; else what a start fails with: `errc::unknown_user`,
  /// `errc::unknown_group`, the name service's errno, or EPERM when this program lacks
  /// the privilege for the change (see `process_options::user`).
  std::error_code error() const noexcept { return error_; }
  /// Where a failure belongs: "user" or "group" (as `spawn_failure::stage` reports it).
  const char* stage() const noexcept { return stage_; }
  /// Whether a child takes other credentials than this program's; then which. Meaningful
  /// only without `error()`.
  bool changes() const noexcept { return changes_; }
  uid_t uid() const noexcept { return uid_; }
  gid_t gid() const noexcept { return gid_; }
  const std::vector<gid_t>& groups() const noexcept { return groups_; }

private:
  std::string user_;
  std::string group_;
  std::error_code error_;
  const char* stage_ = "validate";
  bool changes_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::vector<gid_t> groups_;
};

}  // namespace pkit
