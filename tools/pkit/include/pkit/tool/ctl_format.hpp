#pragma once

/// \file
/// What `pkit ctl` prints for humans: the status table, uptimes, exits, event lines.
/// Pure functions of the protocol's JSON (tools/pkit/PROTOCOL.md); any thread. Fields
/// that are missing or of another type print as "-", never throw.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace pkit::tool {

/// `s` safe to print on a terminal: control characters (C0, DEL, and C1 as UTF-8 or as
/// bare bytes), bidirectional controls and bytes that are not well-formed UTF-8 (overlong
/// forms and surrogates included) become `\xHH`, so that a string from elsewhere (an error
/// text or reason a node sent, a snippet's name) cannot move the cursor, retitle the
/// window, reorder or hide output. Other UTF-8 passes unchanged. Every human rendering
/// here goes through it; `--json` output is ASCII (\uXXXX escapes).
/// With `keep_newlines`, '\n' stays (a message that lists one error per line).
std::string printable(std::string_view s, bool keep_newlines = false);

/// "850ms", "42s", "3m12s", "2h03m", "3d04h"; "-" for a negative value.
std::string format_uptime(std::int64_t ms);

/// A `last_exit` object: {"code":3} → "exit 3", {"signal":9} → "killed by SIGKILL"
/// ({"core_dumped":true} adds " (core dumped)"), {"lost":true} → "lost"; null or anything
/// else → "-". The one rendering of an exit status for humans (pkit run's event lines
/// and final table use it too).
std::string format_last_exit(const nlohmann::json& last_exit);

/// The status result ({"programs":[...]}) as an aligned table with a header line:
/// NAME STATE PID UPTIME RESTARTS LAST-EXIT, one line per program (NAME is its path,
/// "backend/db", for a program in a group; PID and UPTIME are "-" without a process),
/// each line ending in '\n'. Columns are separated by at least two spaces; the last one
/// is not padded. Also the table `pkit run` prints when it ends.
std::string format_status_table(const nlohmann::json& status_result);

/// One event item (event_to_json's shape) as one human line without its newline, e.g.
/// "12:00:01.234 backend/db           exited     killed by SIGKILL (run 2, pid 1234)" —
/// local time; ANSI colours on the event word when `colour`. The one rendering of an
/// event for humans: `pkit run`'s stderr and `pkit ctl events`. An item of another shape
/// is shown as its key=value pairs.
std::string format_event(const nlohmann::json& item, bool colour = false);

}  // namespace pkit::tool
