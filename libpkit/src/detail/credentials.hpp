#pragma once

// process_options::user/group turned into numeric ids in the parent, before anything is
// spawned: the name service (getpwnam, NSS modules, LDAP...) takes locks and allocates, so
// it must not run in a forked child of a multithreaded program — the child only gets the
// numbers and calls setgroups/setresgid/setresuid (child_setup).

#include <string>
#include <system_error>
#include <vector>

#include <sys/types.h>

namespace pkit::detail {

/// The credentials a child takes. `change` is false when there is nothing to do (no user
/// or group asked for, or exactly the ones the parent already has without the privilege
/// to change them: asking for who you are is not an error).
struct credentials {
  bool change = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

/// Resolves `user` and `group` (a name, or a number when no entry has that name). A user
/// without a group takes the user's primary group and its supplementary groups (initgroups);
/// a user with a group takes that group as primary, plus the user's supplementary groups;
/// a group alone sets the gid and makes it the only supplementary group (nothing of the
/// parent's groups is kept). Errors, with `stage`
/// set to "user" or "group": `errc::unknown_user` / `errc::unknown_group` (no such entry,
/// or a numeric uid without a passwd entry and no `group`), the name service's errno, or
/// EPERM when the parent lacks CAP_SETUID/CAP_SETGID for a change it would have to make.
std::error_code resolve_credentials(const std::string& user, const std::string& group,
                                    credentials& out, const char*& stage);

}  // namespace pkit::detail
