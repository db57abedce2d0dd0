#pragma once

/// \file
/// The version of the `pkit` tool (the project's version).

#include <string_view>

namespace pkit::tool {

/// "0.1.0". Pure; any thread.
std::string_view version() noexcept;

}  // namespace pkit::tool
