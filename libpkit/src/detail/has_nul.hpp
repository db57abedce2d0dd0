#pragma once

// Whether a string holds a NUL byte. The system takes names and paths as C strings cut
// at the first NUL: "root\0x" is looked up as root, "/tmp/a\0b" opens /tmp/a. Every string
// that reaches the system is checked with this one predicate.

#include <string_view>

namespace pkit::detail {

inline bool has_nul(std::string_view s) noexcept { return s.find('\0') != std::string_view::npos; }

}  // namespace pkit::detail
