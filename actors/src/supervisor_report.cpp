#include "supervisor_report.hpp"

#include <pkit/actors/messages.hpp>

#include <cerrno>

#include <unistd.h>

namespace pkit::actors {

std::string to_string(supervisor_report r) {
  switch (r) {
    case supervisor_report::none: return "none";
    case supervisor_report::give_up: return "give_up";
    case supervisor_report::all: return "all";
  }
  return "?";
}

namespace detail {

void write_report(const std::string& supervisor, const std::string& text) noexcept {
  try {
    const std::string line = "pkit supervisor '" + supervisor + "': " + text + "\n";
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      const ssize_t n = ::write(STDERR_FILENO, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  } catch (...) {
    // No memory for the line: the report is dropped, the supervisor goes on.
  }
}

}  // namespace detail
}  // namespace pkit::actors
