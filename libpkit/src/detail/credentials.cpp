#include "detail/credentials.hpp"
#include "detail/has_nul.hpp"

#include <pkit/errc.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace pkit::detail {
namespace {

// A decimal id, or nothing ("", signs, trailing junk, overflow, (id_t)-1).
template <class Id>
bool parse_id(const std::string& s, Id& out) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return false;
  if (v >= static_cast<std::uint64_t>(static_cast<Id>(-1))) return false;
  out = static_cast<Id>(v);
  return true;
}

// The *_r lookups with a buffer grown on ERANGE. Returns 0 and found=false for "no such
// entry" (POSIX lets an implementation report that as ENOENT, ESRCH, EBADF or EPERM too).
//
// The entry's strings (pw_name, ...) point into `buf`: the caller owns it, and reads them
// only while it lives.
template <class Entry, class Lookup>
int lookup(Lookup&& call, Entry& entry, bool& found, std::vector<char>& buf) {
  buf.resize(1024);
  for (;;) {
    Entry* result = nullptr;
    int r = call(&entry, buf.data(), buf.size(), &result);
    if (r == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    found = r == 0 && result != nullptr;
    if (r == ENOENT || r == ESRCH || r == EBADF || r == EPERM) r = 0;
    return r;
  }
}

bool has_capability(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

std::error_code resolve_user(const std::string& user, credentials& out, std::string& name, bool& has_gid) {
  passwd pw{};
  std::vector<char> buf;  // holds pw's strings (name = pw.pw_name below)
  bool found = false;
  int r = lookup([&](passwd* e, char* b, std::size_t n, passwd** res) { return ::getpwnam_r(user.c_str(), e, b, n, res); },
                 pw, found, buf);
  if (r != 0) return {r, std::system_category()};
  if (!found && parse_id(user, out.uid)) {
    r = lookup([&](passwd* e, char* b, std::size_t n, passwd** res) { return ::getpwuid_r(out.uid, e, b, n, res); },
               pw, found, buf);
    if (r != 0) return {r, std::system_category()};
    if (!found) return {};  // a bare uid: only with a group
  }
  if (!found) return errc::unknown_user;
  out.uid = pw.pw_uid;
  out.gid = pw.pw_gid;
  name = pw.pw_name;
  has_gid = true;
  return {};
}

std::error_code resolve_group(const std::string& group, gid_t& gid) {
  ::group gr{};
  std::vector<char> buf;  // holds gr's strings
  bool found = false;
  int r = lookup([&](::group* e, char* b, std::size_t n, ::group** res) { return ::getgrnam_r(group.c_str(), e, b, n, res); },
                 gr, found, buf);
  if (r != 0) return {r, std::system_category()};
  if (found) {
    gid = gr.gr_gid;
    return {};
  }
  // A number is taken as is, with or without a group entry (like chown and systemd).
  if (parse_id(group, gid)) return {};
  return errc::unknown_group;
}

// getgrouplist grows its answer until it fits.
std::error_code supplementary_groups(const std::string& name, gid_t gid, std::vector<gid_t>& out) {
  int n = 16;
  for (;;) {
    out.resize(static_cast<std::size_t>(n));
    int want = n;
    if (::getgrouplist(name.c_str(), gid, out.data(), &want) >= 0) {
      out.resize(static_cast<std::size_t>(want));
      return {};
    }
    if (want <= n) return std::make_error_code(std::errc::not_enough_memory);
    n = want;
  }
}

}  // namespace

std::error_code resolve_credentials(const std::string& user, const std::string& group, credentials& out,
                                    const char*& stage) {
  out = credentials{};
  if (user.empty() && group.empty()) return {};
  std::string name;
  bool has_gid = false;
  if (!user.empty()) {
    stage = "user";
    if (has_nul(user)) return errc::invalid_argument;
    if (auto ec = resolve_user(user, out, name, has_gid)) return ec;
  } else {
    out.uid = ::geteuid();
  }
  if (!group.empty()) {
    stage = "group";
    if (has_nul(group)) return errc::invalid_argument;
    if (auto ec = resolve_group(group, out.gid)) return ec;
    has_gid = true;
  }
  if (!has_gid) {
    stage = "user";
    return errc::unknown_user;  // a uid without a passwd entry, and no group to go with it
  }
  if (!name.empty()) {
    stage = "user";
    if (auto ec = supplementary_groups(name, out.gid, out.groups)) return ec;
  } else {
    out.groups.assign(1, out.gid);
  }
  // Without the privileges, asking for exactly who we are is a no-op (setgroups would
  // fail even to set the same list); anything else is refused here, naming the stage,
  // rather than by the child's setuid after the spawn.
  const bool same = out.uid == ::geteuid() && out.gid == ::getegid();
  if (!has_capability(CAP_SETGID) || !has_capability(CAP_SETUID)) {
    if (same) {
      out.change = false;
      return {};
    }
    stage = out.uid != ::geteuid() ? "user" : "group";
    return std::make_error_code(std::errc::operation_not_permitted);
  }
  out.change = true;
  return {};
}

}  // namespace pkit::detail
