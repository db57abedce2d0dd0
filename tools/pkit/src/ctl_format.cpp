#include <pkit/tool/ctl_format.hpp>

#include <pkit/tool/control_protocol.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <vector>

namespace pkit::tool {

namespace {

using json = nlohmann::json;

std::string two_units(std::int64_t big, const char* big_unit, std::int64_t small, const char* small_unit) {
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%lld%s%02lld%s", static_cast<long long>(big), big_unit,
                static_cast<long long>(small), small_unit);
  return buf.data();
}

std::string text_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string field(const json& obj, const char* key) {
  if (!obj.is_object()) return "-";
  const auto it = obj.find(key);
  return it == obj.end() ? "-" : text_of(*it);
}

}  // namespace

std::string format_uptime(std::int64_t ms) {
  if (ms < 0) return "-";
  if (ms < 1000) return std::to_string(ms) + "ms";
  const std::int64_t s = ms / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + (s % 60 < 10 ? "0" : "") + std::to_string(s % 60) + "s";
  if (s < 86400) return two_units(s / 3600, "h", s % 3600 / 60, "m");
  return two_units(s / 86400, "d", s % 86400 / 3600, "h");
}

std::string format_last_exit(const json& last_exit) {
  if (!last_exit.is_object()) return "-";
  if (auto sig = last_exit.find("signal"); sig != last_exit.end() && sig->is_number_integer()) {
    std::string s = "killed by " + signal_name(sig->get<int>());
    if (last_exit.value("core_dumped", false)) s += " (core dumped)";
    return s;
  }
  if (auto code = last_exit.find("code"); code != last_exit.end() && code->is_number_integer())
    return "exit " + std::to_string(code->get<std::int64_t>());
  return "-";
}

std::string format_status_table(const json& status_result) {
  std::vector<std::array<std::string, 6>> rows{{"NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST-EXIT"}};
  const json programs = status_result.is_object() ? status_result.value("programs", json::array()) : json::array();
  for (const auto& p : programs) {
    const auto uptime = p.is_object() ? p.value("uptime_ms", json(nullptr)) : json(nullptr);
    rows.push_back({field(p, "name"), field(p, "state"), field(p, "pid"),
                    uptime.is_number_integer() ? format_uptime(uptime.get<std::int64_t>()) : "-",
                    field(p, "restarts"), format_last_exit(p.is_object() ? p.value("last_exit", json(nullptr)) : json())});
  }
  std::array<std::size_t, 6> width{};
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  std::string out;
  for (const auto& r : rows) {
    for (std::size_t i = 0; i + 1 < r.size(); ++i) out += r[i] + std::string(width[i] - r[i].size() + 2, ' ');
    out += r.back() + "\n";
  }
  return out;
}

std::string format_event(const json& item) {
  if (!item.is_object()) return text_of(item);
  std::string line;
  for (const char* key : {"time", "type", "name"})
    if (item.contains(key)) line += (line.empty() ? "" : "  ") + text_of(item[key]);
  for (const auto& [key, value] : item.items()) {
    if (key == "time" || key == "type" || key == "name") continue;
    const std::string shown = key == "exit" || key == "last_exit" ? format_last_exit(value) : text_of(value);
    line += (line.empty() ? "" : "  ") + key + "=" + shown;
  }
  return line;
}

}  // namespace pkit::tool
