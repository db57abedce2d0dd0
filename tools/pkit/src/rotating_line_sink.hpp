#pragma once

// log_capture's default sink: spdlog's rotation scheme and record format (UTC timestamp,
// marker, raw line) over a file pkit opens itself: 0640, O_NOFOLLOW, O_CLOEXEC.

#include <pkit/tool/log_capture.hpp>

#include <memory>

namespace pkit::tool::detail {

/// Opens (creates 0640, with its missing directories 0750) `spec.path`. Throws
/// std::runtime_error naming the file when it cannot, or when the path is a symbolic link
/// or not a regular file.
std::shared_ptr<log_capture::line_sink> make_rotating_line_sink(const output_spec& spec);

}  // namespace pkit::tool::detail
