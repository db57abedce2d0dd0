#include <pkit/tool/ctl_format.hpp>

#include <pkit/tool/control_protocol.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
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
  if (v.is_string()) return printable(v.get<std::string>());
  if (v.is_null()) return "-";
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string field(const json& obj, const char* key) {
  if (!obj.is_object()) return "-";
  const auto it = obj.find(key);
  return it == obj.end() ? "-" : text_of(*it);
}

}  // namespace

std::string printable(std::string_view s, bool keep_newlines) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  auto escape = [&out](unsigned char c) {
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 0xf];
  };
  auto byte = [&s](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = byte(i);
    if (c < 0x80) {
      if ((c < 0x20 && !(keep_newlines && c == '\n')) || c == 0x7f) escape(c);
      else out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A UTF-8 sequence: its length from the lead byte, then its continuation bytes, the
    // second one in the range that excludes overlong forms and surrogates (RFC 3629).
    const std::size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    bool valid = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; valid && k < len; ++k) valid = (byte(i + k) & 0xc0) == 0x80;
    if (valid) {
      const unsigned char second = byte(i + 1);
      valid = !(c == 0xe0 && second < 0xa0) && !(c == 0xed && second > 0x9f) && !(c == 0xf0 && second < 0x90) &&
              !(c == 0xf4 && second > 0x8f);
    }
    // Bidirectional controls reorder what follows them on the line ("Trojan Source"):
    // U+061C, U+200E/F, U+202A..E, U+2066..9.
    const bool bidi = valid && ((len == 2 && c == 0xd8 && byte(i + 1) == 0x9c) ||
                                (len == 3 && c == 0xe2 && byte(i + 1) == 0x80 &&
                                 (byte(i + 2) == 0x8e || byte(i + 2) == 0x8f ||
                                  (byte(i + 2) >= 0xaa && byte(i + 2) <= 0xae))) ||
                                (len == 3 && c == 0xe2 && byte(i + 1) == 0x81 && byte(i + 2) >= 0xa6 &&
                                 byte(i + 2) <= 0xa9));
    if (!valid) {
      escape(c);  // not UTF-8 (a bare C1 byte among them: an 8-bit terminal would obey it)
      ++i;
    } else if (c == 0xc2 && byte(i + 1) <= 0x9f) {
      escape(byte(i + 1));  // U+0080..U+009F: the C1 controls
      i += 2;
    } else if (bidi) {
      for (std::size_t k = 0; k < len; ++k) escape(byte(i + k));
      i += len;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

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
  if (last_exit.value("lost", false)) return "lost";
  return "-";
}

std::string format_status_table(const json& status_result) {
  const json programs = status_result.is_object() ? status_result.value("programs", json::array()) : json::array();
  // The node column only for a tree that places programs on nodes ("" is here).
  bool nodes = false;
  for (const auto& p : programs)
    nodes = nodes || (p.is_object() && p.value("node", json(nullptr)).is_string() && !p["node"].get<std::string>().empty());
  std::vector<std::vector<std::string>> rows{{"NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST-EXIT"}};
  if (nodes) rows.front().insert(rows.front().begin() + 2, "NODE");
  for (const auto& p : programs) {
    // A program in a group is shown by its path ("backend/db"), as ctl commands take it.
    std::string name = field(p, "name");
    if (p.is_object() && p.value("group", json(nullptr)).is_string() && !p["group"].get<std::string>().empty())
      name = printable(p["group"].get<std::string>()) + "/" + name;
    const auto uptime = p.is_object() ? p.value("uptime_ms", json(nullptr)) : json(nullptr);
    const auto pid = p.is_object() ? p.value("pid", json(nullptr)) : json(nullptr);
    const bool has_pid = pid.is_number_integer() && pid.get<std::int64_t>() > 0;
    rows.push_back({name, field(p, "state"), has_pid ? text_of(pid) : "-",
                    has_pid && uptime.is_number_integer() ? format_uptime(uptime.get<std::int64_t>()) : "-",
                    field(p, "restarts"), format_last_exit(p.is_object() ? p.value("last_exit", json(nullptr)) : json())});
    if (nodes) {
      const json node = p.is_object() ? p.value("node", json(nullptr)) : json(nullptr);
      rows.back().insert(rows.back().begin() + 2, node.is_string() && !node.get<std::string>().empty()
                                                      ? printable(node.get<std::string>())
                                                      : "-");
    }
  }
  std::vector<std::size_t> width(rows.front().size());
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  std::string out;
  for (const auto& r : rows) {
    for (std::size_t i = 0; i + 1 < r.size(); ++i) out += r[i] + std::string(width[i] - r[i].size() + 2, ' ');
    out += r.back() + "\n";
  }
  return out;
}

namespace {

// "2026-11-30T12:00:01.234Z" (UTC) as local "12:00:01.234"; anything else as it is.
std::string local_time_of(const std::string& iso) {
  std::tm utc{};
  int ms = 0;
  if (std::sscanf(iso.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &utc.tm_year, &utc.tm_mon, &utc.tm_mday, &utc.tm_hour,
                  &utc.tm_min, &utc.tm_sec, &ms) != 7)
    return iso;
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  const std::time_t t = ::timegm(&utc);
  std::tm local{};
  ::localtime_r(&t, &local);
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%02d:%02d:%02d.%03d", local.tm_hour, local.tm_min, local.tm_sec, ms);
  return buf.data();
}

const char* colour_of(const std::string& event) {
  if (event == "ready") return "\033[32m";
  if (event == "exited" || event == "restarting") return "\033[33m";
  if (event == "gave_up" || event == "fatal") return "\033[31;1m";
  return "\033[36m";
}

std::string padded(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

}  // namespace

std::string format_event(const json& item, bool colour) {
  if (!item.is_object()) return text_of(item);
  if (!item.contains("event")) {  // not a supervisor event: its fields as they are
    std::string line;
    for (const auto& [key, value] : item.items()) line += (line.empty() ? "" : "  ") + printable(key) + "=" + text_of(value);
    return line;
  }
  const std::string group = item.value("group", json(nullptr)).is_string() ? printable(item["group"].get<std::string>()) : "";
  const std::string program = field(item, "program");
  const std::string event = field(item, "event");
  std::string what = padded(event, 10);
  if (colour) what = colour_of(event) + what + "\033[0m";
  std::string line = local_time_of(field(item, "time")) + " " + padded(group.empty() ? program : group + "/" + program, 20) +
                     " " + what;
  if (item.contains("status")) line += " " + format_last_exit(item["status"]);
  if (item.contains("delay_ms")) line += " in " + text_of(item["delay_ms"]) + " ms";
  line += " (run " + field(item, "run");
  if (item.value("pid", json(nullptr)).is_number_integer() && item["pid"].get<std::int64_t>() > 0)
    line += ", pid " + text_of(item["pid"]);
  if (item.value("node", json(nullptr)).is_string()) line += " on " + printable(item["node"].get<std::string>());
  line += ")";
  if (item.value("reason", json(nullptr)).is_string() && !item["reason"].get<std::string>().empty())
    line += ": " + printable(item["reason"].get<std::string>());
  return line;
}

}  // namespace pkit::tool
