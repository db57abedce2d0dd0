#pragma once

/// \file
/// What `pkit ctl` prints for humans: the status table, uptimes, exits, event lines.
/// Pure functions of the protocol's JSON (tools/pkit/PROTOCOL.md); any thread. Fields
/// that are missing or of another type print as "-", never throw.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace pkit::tool {

/// "850ms", "42s", "3m12s", "2h03m", "3d04h"; "-" for a negative value.
std::string format_uptime(std::int64_t ms);

/// A `last_exit` object: {"code":3} → "exit 3", {"signal":9} → "killed by SIGKILL"
/// ({"core_dumped":true} adds " (core dumped)"); null or anything else → "-".
std::string format_last_exit(const nlohmann::json& last_exit);

/// The status result ({"programs":[...]}) as an aligned table with a header line:
/// NAME STATE PID UPTIME RESTARTS LAST-EXIT, one line per program, each line ending in
/// '\n'. Columns are separated by at least two spaces; the last one is not padded.
std::string format_status_table(const nlohmann::json& status_result);

/// One event item as one line (no newline): "TIME  TYPE  NAME  key=value …" — the time
/// when the item has one, then its other fields in key order.
std::string format_event(const nlohmann::json& item);

}  // namespace pkit::tool
