#pragma once

/// \file
/// A supervisor's reports on stderr (internal; see supervisor_flags::report).

#include <string>

namespace pkit::actors::detail {

/// Writes "pkit supervisor 'SUPERVISOR': TEXT\n" to stderr in one write(2), so that lines
/// of concurrent supervisors do not interleave within a line (up to PIPE_BUF bytes on a
/// pipe). Errors are ignored: a report must never fail the supervisor. Any thread.
void write_report(const std::string& supervisor, const std::string& text) noexcept;

}  // namespace pkit::actors::detail
