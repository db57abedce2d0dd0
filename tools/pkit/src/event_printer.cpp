#include <pkit/tool/event_printer.hpp>
#include <pkit/tool/ctl_format.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <cstring>
#include <ctime>

namespace pkit::tool {
namespace {

std::int64_t millis_of(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
}

}  // namespace

nlohmann::json status_to_json(const exit_status& s) {
  if (s.is_lost()) return {{"lost", true}};
  if (s.is_killed()) return {{"signal", s.signal()}};
  return {{"code", s.code()}};
}

nlohmann::json end_to_json(const actors::end_reason& r) {
  if (r.kind == actors::end_kind::none) return nullptr;
  nlohmann::json j{{"kind", actors::to_string(r.kind)}};
  if (r.has_start) {
    j["stage"] = r.start.stage;
    j["errno"] = r.start.errno_value;
    // A path's bytes need not be UTF-8 (a node sends it, or the config names one): kept
    // as \xNN, readable and lossless where a JSON dump would make them U+FFFD or throw.
    j["program"] = printable(r.start.program);
  }
  return j;
}

std::string describe_status(const exit_status& s) { return format_last_exit(status_to_json(s)); }

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
  if (e.end.kind != actors::end_kind::none) j["end"] = end_to_json(e.end);
  if (!e.node.empty()) j["node"] = e.node;  // the pid is that node's
  return j;
}

std::string json_line(const nlohmann::json& j) {
  // replace, not strict: a reason that is not UTF-8 (a node's error text) must not throw
  // in the daemon's event actor, which would end it and with it the orderly stop.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string event_to_human(const actors::supervisor_event& e, const std::string& group,
                           std::chrono::system_clock::time_point when, bool colour) {
  return format_event(event_to_json(e, group, when), colour);
}

}  // namespace pkit::tool
