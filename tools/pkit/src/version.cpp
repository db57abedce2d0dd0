#include <pkit/tool/version.hpp>

namespace pkit::tool {

std::string_view version() noexcept { return PKIT_VERSION; }

}  // namespace pkit::tool
