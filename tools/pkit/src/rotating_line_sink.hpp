#pragma once

// log_capture's default sink: spdlog's rotating file sink with the record format the
// capture documents (UTC timestamp, marker, raw line).

#include <pkit/tool/log_capture.hpp>

#include <memory>

namespace pkit::tool::detail {

/// Opens (creates, with its directories) `spec.path`. Throws spdlog::spdlog_ex naming the
/// file when it cannot.
std::shared_ptr<log_capture::line_sink> make_rotating_line_sink(const output_spec& spec);

}  // namespace pkit::tool::detail
