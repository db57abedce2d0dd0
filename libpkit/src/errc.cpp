#include <pkit/errc.hpp>

namespace pkit {
namespace {

class category final : public std::error_category {
public:
  const char* name() const noexcept override { return "pkit"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::not_started: return "the process was never started";
      case errc::already_running: return "the process is already running";
      case errc::start_timeout: return "the child did not become ready in time";
      case errc::died_before_ready: return "the child died before it became ready";
      case errc::invalid_argument: return "invalid argument";
      case errc::fork_server_unavailable: return "the fork server is not running";
      case errc::unknown_target: return "no target is registered under that name";
      case errc::would_deadlock:
        return "blocking call on the reaper thread would wait for the reaper itself";
      case errc::pool_closed: return "the pool is closed";
      case errc::pool_full: return "every slot of the pool is busy";
      case errc::not_owner:
        return "the object belongs to another process (inherited through fork)";
      case errc::fork_server_timeout: return "the fork server did not answer in time";
      case errc::fork_server_protocol: return "the fork server sent a malformed reply";
      case errc::unknown_user: return "no such user";
      case errc::unknown_group: return "no such group";
    }
    return "unknown pkit error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& pkit_category() noexcept {
  static const category instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), pkit_category()};
}

}  // namespace pkit
