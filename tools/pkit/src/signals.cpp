#include <pkit/tool/signals.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

#include <signal.h>
#include <string.h>

namespace pkit::tool {
namespace {

// A whole decimal number within [lo, hi], or nullopt.
std::optional<int> number_in(std::string_view text, int lo, int hi) {
  int n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || n < lo || n > hi) return std::nullopt;
  return n;
}

// "RTMIN", "RTMIN+n", "RTMAX", "RTMAX-n" (upper case, no "SIG"): the spelling of kill -l,
// because real-time signal numbers differ between C libraries and sigabbrev_np has no
// name for them.
std::optional<int> real_time(std::string_view upper) {
  const int span = SIGRTMAX - SIGRTMIN;
  if (upper.starts_with("RTMIN")) {
    upper.remove_prefix(5);
    if (upper.empty()) return SIGRTMIN;
    if (upper.front() != '+') return std::nullopt;
    if (auto n = number_in(upper.substr(1), 1, span)) return SIGRTMIN + *n;
  } else if (upper.starts_with("RTMAX")) {
    upper.remove_prefix(5);
    if (upper.empty()) return SIGRTMAX;
    if (upper.front() != '-') return std::nullopt;
    if (auto n = number_in(upper.substr(1), 1, span)) return SIGRTMAX - *n;
  }
  return std::nullopt;
}

}  // namespace

std::optional<int> parse_signal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(text.front()))) return number_in(text, 1, NSIG - 1);
  std::string upper(text);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  if (upper.starts_with("SIG")) upper.erase(0, 3);
  // "SIG32": what signal_name says of a number without a name (glibc keeps 32 and 33).
  if (!upper.empty() && std::isdigit(static_cast<unsigned char>(upper.front()))) return number_in(upper, 1, NSIG - 1);
  for (int n = 1; n < NSIG; ++n)
    if (const char* abbrev = ::sigabbrev_np(n); abbrev != nullptr && upper == abbrev) return n;
  return real_time(upper);
}

std::string signal_name(int signo) {
  if (const char* abbrev = ::sigabbrev_np(signo); abbrev != nullptr) return std::string("SIG") + abbrev;
  if (signo == SIGRTMIN) return "SIGRTMIN";
  if (signo == SIGRTMAX) return "SIGRTMAX";
  if (signo > SIGRTMIN && signo < SIGRTMAX) return "SIGRTMIN+" + std::to_string(signo - SIGRTMIN);
  return "SIG" + std::to_string(signo);
}

}  // namespace pkit::tool
