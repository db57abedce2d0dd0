#include <pkit/tool/event_printer.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <cstring>
#include <ctime>

namespace pkit::tool {
namespace {

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// The event words in a fixed width, so that columns line up on a terminal.
const char* colour_of(actors::event_kind k) {
  using actors::event_kind;
  switch (k) {
    case event_kind::ready: return "\033[32m";
    case event_kind::exited:
    case event_kind::restarting: return "\033[33m";
    case event_kind::gave_up:
    case event_kind::fatal: return "\033[31;1m";
    default: return "\033[36m";
  }
}

std::int64_t millis_of(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
}

}  // namespace

nlohmann::json status_to_json(const exit_status& s) {
  if (s.is_lost()) return {{"lost", true}};
  if (s.is_killed()) return {{"signal", s.signal()}};
  return {{"code", s.code()}};
}

std::string describe_status(const exit_status& s) {
  if (s.is_lost()) return "lost";
  if (s.is_killed()) return "killed by " + signal_name(s.signal()) + (s.core_dumped() ? " (core dumped)" : "");
  return "exited " + std::to_string(s.code());
}

nlohmann::json event_to_json(const actors::supervisor_event& e, const std::string& group,
                             std::chrono::system_clock::time_point when) {
  auto secs = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  ::gmtime_r(&secs, &utc);
  nlohmann::json j{{"time", fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", utc, millis_of(when))},
                   {"group", group},
                   {"program", e.child},
                   {"event", actors::to_string(e.kind)},
                   {"pid", e.pid},
                   {"run", e.incarnation}};
  if (e.has_status) j["status"] = status_to_json(e.status);
  if (e.kind == actors::event_kind::restarting) j["delay_ms"] = e.delay_ms;
  if (!e.reason.empty()) j["reason"] = e.reason;
  return j;
}

std::string event_to_human(const actors::supervisor_event& e, const std::string& group,
                           std::chrono::system_clock::time_point when, bool colour) {
  auto secs = std::chrono::system_clock::to_time_t(when);
  std::tm local{};
  ::localtime_r(&secs, &local);
  std::string who = group.empty() ? e.child : group + "/" + e.child;
  std::string what = actors::to_string(e.kind);
  if (colour) what = std::string(colour_of(e.kind)) + fmt::format("{:<10}", what) + "\033[0m";
  else what = fmt::format("{:<10}", what);
  std::string line = fmt::format("{:%H:%M:%S}.{:03} {:<20} {}", local, millis_of(when), who, what);
  if (e.has_status) line += " " + describe_status(e.status);
  if (e.kind == actors::event_kind::restarting) line += fmt::format(" in {} ms", e.delay_ms);
  line += fmt::format(" (run {}", e.incarnation);
  if (e.pid > 0) line += fmt::format(", pid {}", e.pid);
  line += ")";
  if (!e.reason.empty()) line += ": " + e.reason;
  return line;
}

}  // namespace pkit::tool
