#pragma once
/// Signal names and numbers, one spelling for the whole tool: the tree file's
/// `stop_signal`, `pkit ctl signal`, the control protocol, `pkit check` and the status
/// table use these two functions, so that whatever one prints the others read back.
/// (libpkit's exit_status::to_string, in the supervisor's reports, has its own.)

#include <optional>
#include <string>
#include <string_view>

namespace pkit::tool {

/// A signal given as a number ("9" or "SIG9", 1–64) or a name, any case, with or without "SIG":
/// "HUP", "SIGHUP", "sighup", and the real-time ones as "RTMIN", "RTMIN+2", "RTMAX-1".
/// nullopt when it names no signal. Pure; any thread.
std::optional<int> parse_signal(std::string_view text);

/// "SIGHUP" for 1, "SIGRTMIN+2" for a real-time signal; "SIG99" only for a number that
/// is no signal at all. parse_signal(signal_name(n)) == n for every signal n. Pure.
std::string signal_name(int signo);

}  // namespace pkit::tool
