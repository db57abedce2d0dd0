#pragma once

/// \file
/// How `pkit run` shows a supervisor event: one human line (for a terminal) or one JSON
/// object (`--log-format json`, and the items of the control channel's `events` stream).

#include <pkit/actors/messages.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

namespace pkit::tool {

enum class log_format { human, json };

/// `e` as a JSON object: {"time" (RFC 3339, UTC, ms), "group" (path of the supervisor,
/// "" for the root), "program" (the child's id), "event", "pid", "run" (incarnation),
/// "status" ({"code":N} or {"signal":N}; only when the event has one), "delay_ms" (only
/// for `restarting`), "reason" (only when not empty), "end" (end_to_json; only when the
/// event has one)}. Pure; any thread.
nlohmann::json event_to_json(const actors::supervisor_event& e, const std::string& group,
                             std::chrono::system_clock::time_point when);

/// `j` as one JSON line (no newline): invalid UTF-8 in a string becomes U+FFFD instead of
/// throwing. How `pkit run --log-format json` writes an event. Pure; any thread.
std::string json_line(const nlohmann::json& j);

/// `e` as one human line without its newline: format_event(event_to_json(...), colour)
/// (ctl_format.hpp), so `pkit run` and `pkit ctl events` show events alike. Pure; any thread.
std::string event_to_human(const actors::supervisor_event& e, const std::string& group,
                           std::chrono::system_clock::time_point when, bool colour);

/// {"code":N}, {"signal":N} or {"lost":true}: an exit status in the control protocol.
nlohmann::json status_to_json(const exit_status& s);

/// {"kind": "signaled"} — or, for a failed start whose stage is known, {"kind":
/// "start_failed", "stage": "exec", "errno": 2, "program": "/x"}; null for kind none.
/// "program" is printable(path) (ctl_format.hpp): bytes that are not UTF-8 or are control
/// characters appear as \xNN. The
/// `end` field of a status row and of an event (PROTOCOL.md). Pure; any thread.
nlohmann::json end_to_json(const actors::end_reason& r);

/// format_last_exit(status_to_json(s)): "exit 3", "killed by SIGKILL", "lost". Pure.
std::string describe_status(const exit_status& s);

}  // namespace pkit::tool
