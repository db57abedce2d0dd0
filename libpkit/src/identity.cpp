#include <pkit/identity.hpp>

#include "detail/credentials.hpp"

#include <exception>
#include <utility>

namespace pkit {

identity identity::lookup(std::string user, std::string group) noexcept {
  identity out;
  detail::credentials creds;
  const char* stage = "validate";
  try {
    out.error_ = detail::resolve_credentials(user, group, creds, stage);
  } catch (...) {  // the lookup's buffers: std::bad_alloc only
    out.error_ = std::make_error_code(std::errc::not_enough_memory);
  }
  out.stage_ = stage;
  out.user_ = std::move(user);
  out.group_ = std::move(group);
  out.changes_ = creds.change;
  out.uid_ = creds.uid;
  out.gid_ = creds.gid;
  out.groups_ = std::move(creds.groups);
  return out;
}

}  // namespace pkit
