#include <pkit/spawn_error.hpp>

namespace pkit {

std::string spawn_failure::to_string() const {
  return "cannot start '" + program + "': " + stage + ": " + error.message();
}

}  // namespace pkit
