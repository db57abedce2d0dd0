// OTP's check_childspecs for pkit's specs: every field checked without starting anything,
// each error naming the field by its path in the spec.

#include <pkit/actors/supervisor.hpp>

#include <pkit/actors/error.hpp>
#include <pkit/actors/output_capture.hpp>

#include <caf/atom.hpp>

#include <cmath>
#include <csignal>
#include <sys/resource.h>
#include <map>
#include <string>

namespace pkit::actors {
namespace {

caf::error bad(const std::string& field, const std::string& why) {
  return caf::make_error(error::invalid_spec, field + ": " + why);
}

// issue 10's fields: what libpkit would refuse at start, named here by field.
caf::error check_identity(const process_spec& p, const std::string& at) {
  if (p.notify_socket && p.notify_fd >= 0)
    return bad(at + ".notify_socket", "combines with no notify_fd (one readiness protocol per worker)");
  const bool target = !p.target.empty();
  if (p.notify_socket && target) return bad(at + ".notify_socket", "only for programs (argv), not fork-server targets");
  if (target && !p.user.empty()) return bad(at + ".user", "only for programs (argv), not fork-server targets");
  if (target && !p.group.empty()) return bad(at + ".group", "only for programs (argv), not fork-server targets");
  if (target && !p.rlimits.empty()) return bad(at + ".rlimits", "only for programs (argv), not fork-server targets");
  // A fork-server target runs in the server's directory and environment: none of its own.
  if (target && !p.cwd.empty()) return bad(at + ".cwd", "only for programs (argv), not fork-server targets");
  if (target && (!p.env.empty() || p.clear_env))
    return bad(at + (p.env.empty() ? ".clear_env" : ".env"), "only for programs (argv), not fork-server targets");
  for (std::size_t i = 0; i < p.rlimits.size(); ++i) {
    const rlimit_spec& l = p.rlimits[i];
    const std::string here = at + ".rlimits[" + std::to_string(i) + "]";
    if (l.resource < 0 || l.resource >= RLIM_NLIMITS) return bad(here + ".resource", "not an RLIMIT_* value");
    if (l.soft > l.hard) return bad(here + ".soft", "exceeds the hard limit");
  }
  return caf::none;
}

// A spec may come from anywhere (a file, the network: every type is serializable), so
// nothing in it may be trusted to be in range.

// The longest duration a spec may give, in ms: about 31 years. Any of them converts to
// the clocks' nanoseconds and adds to a time point without overflow (INT64_MAX ms would
// not: undefined behaviour in the intensity window, the backoff, the timers).
constexpr std::int64_t max_duration_ms = 1'000'000'000'000;
const std::string too_long = "must be at most " + std::to_string(max_duration_ms) + " ms";

// How deep supervisors may nest in one spec. The check itself is bounded by it (no
// stack overflow on a spec nested 10,000 deep), and no real tree comes near it.
constexpr int max_depth = 64;

// An enum decoded from the wire may hold any value of its underlying type.
template <class Enum>
bool beyond(Enum value, Enum last) {
  return static_cast<unsigned>(value) > static_cast<unsigned>(last);
}

// A string with a NUL byte reaches the system cut there: another file, directory or
// user than the one named ("root\0x" is root). argv and env are refused by libpkit too.
// "capture" is an output's (a pipe to the output capture); stdin has no such reader.
caf::error check_strings(const process_spec& p, const std::string& at) {
  const std::pair<const char*, const std::string*> fields[] = {
      {".name", &p.name},           {".target", &p.target},           {".cwd", &p.cwd},
      {".user", &p.user},           {".group", &p.group},             {".stdin_path", &p.stdin_path},
      {".stdout_path", &p.stdout_path}, {".stderr_path", &p.stderr_path}};
  for (const auto& [field, text] : fields)
    if (text->find('\0') != std::string::npos) return bad(at + field, "contains a NUL byte");
  if (p.stdin_path == capture_stream)
    return bad(at + ".stdin_path", "\"capture\" is for stdout_path and stderr_path; stdin is \"\", \"null\" or a file");
  return caf::none;
}

caf::error check_process(const process_spec& p, const std::string& at) {
  if (p.argv.empty() == p.target.empty())
    return bad(at + ".argv", p.argv.empty() ? "a worker needs either argv or target"
                                            : "a worker has either argv or target, not both");
  if (!p.argv.empty() && p.argv.front().empty()) return bad(at + ".argv[0]", "empty program");
  if (p.stop_signal <= 0 || p.stop_signal >= NSIG) return bad(at + ".stop_signal", "not a signal number");
  if (p.stop_timeout_ms < -1) return bad(at + ".stop_timeout_ms", "must be >= 0 or -1 (never escalate)");
  if (p.stop_timeout_ms > max_duration_ms) return bad(at + ".stop_timeout_ms", too_long);
  if (p.ready_timeout_ms > max_duration_ms) return bad(at + ".ready_timeout_ms", too_long);
  if (auto err = check_strings(p, at)) return err;
  return check_identity(p, at);
}

caf::error check_flags(const supervisor_flags& f, const std::string& at) {
  if (beyond(f.strategy, restart_strategy::simple_one_for_one)) return bad(at + ".strategy", "not a restart strategy");
  if (beyond(f.shutdown, auto_shutdown::all_significant)) return bad(at + ".shutdown", "not an auto_shutdown value");
  if (beyond(f.report, supervisor_report::all)) return bad(at + ".report", "not a supervisor_report value");
  if (f.intensity < 0) return bad(at + ".intensity", "must be >= 0");
  if (f.period_ms <= 0) return bad(at + ".period_ms", "must be > 0");
  if (f.period_ms > max_duration_ms) return bad(at + ".period_ms", too_long);
  if (f.min_uptime_ms < 0) return bad(at + ".min_uptime_ms", "must be >= 0");
  if (f.min_uptime_ms > max_duration_ms) return bad(at + ".min_uptime_ms", too_long);
  if (f.max_failed_starts < 0) return bad(at + ".max_failed_starts", "must be >= 0");
  if (f.start_concurrency < 1) return bad(at + ".start_concurrency", "must be >= 1");
  const backoff_spec& b = f.backoff;
  if (b.initial_ms < 0) return bad(at + ".backoff.initial_ms", "must be >= 0");
  if (b.initial_ms > 0) {
    if (b.max_ms < b.initial_ms) return bad(at + ".backoff.max_ms", "must be >= initial_ms");
    if (b.max_ms > max_duration_ms) return bad(at + ".backoff.max_ms", too_long);
    if (!(b.multiplier >= 1.0) || !std::isfinite(b.multiplier))
      return bad(at + ".backoff.multiplier", "must be finite and >= 1");
    if (!(b.jitter >= 0.0 && b.jitter <= 1.0)) return bad(at + ".backoff.jitter", "must be in [0, 1]");
    if (b.reset_after_ms < 0) return bad(at + ".backoff.reset_after_ms", "must be >= 0");
    if (b.reset_after_ms > max_duration_ms) return bad(at + ".backoff.reset_after_ms", too_long);
  }
  return caf::none;
}

// Issue 11: where a worker may run. A nested supervisor runs here (its workers name
// their own nodes); a fork-server target cannot cross the network.
caf::error check_nodes(const child_spec& c, const std::string& at) {
  if (c.nodes.empty()) return caf::none;
  if (!c.supervisor.empty()) return bad(at + ".nodes", "only for workers, not for a nested supervisor");
  if (!c.process.target.empty()) return bad(at + ".nodes", "only for programs (argv), not fork-server targets");
  for (std::size_t i = 0; i < c.nodes.size(); ++i) {
    const std::string here = at + ".nodes[" + std::to_string(i) + "]";
    if (c.nodes[i].empty()) return bad(here, "an empty node name");
    for (std::size_t j = 0; j < i; ++j)
      if (c.nodes[j] == c.nodes[i]) return bad(here, "'" + c.nodes[i] + "' is listed twice");
  }
  return caf::none;
}

caf::error check_spec(const supervisor_spec& s, const std::string& at, int depth);
caf::error check_one(const child_spec& c, const std::string& at, int depth);

caf::error check_children(const std::vector<child_spec>& children, const std::string& at, int depth) {
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < children.size(); ++i) {
    const child_spec& c = children[i];
    const std::string here = at + "children[" + std::to_string(i) + "]";
    if (auto err = check_one(c, here, depth)) return err;
    if (auto [it, fresh] = seen.emplace(c.id, i); !fresh)
      return bad(here + ".id", "'" + c.id + "' is also the id of " + at + "children[" + std::to_string(it->second) + "]");
  }
  return caf::none;
}

caf::error check_spec(const supervisor_spec& s, const std::string& at, int depth) {
  if (auto err = check_flags(s.flags, at + "flags")) return err;
  if (!s.flags.registered_name.empty() &&
      (s.flags.registered_name.size() > 10 || to_string(caf::atom_from_string(s.flags.registered_name)) != s.flags.registered_name))
    return bad(at + "flags.registered_name", "'" + s.flags.registered_name +
                                           "' is not a CAF atom (at most 10 letters, digits, '_' or ' ')");
  if (s.flags.strategy == restart_strategy::simple_one_for_one && s.children.size() != 1)
    return bad(at + "children", "simple_one_for_one needs exactly one template child, not " +
                                    std::to_string(s.children.size()));
  return check_children(s.children, at, depth);
}

// `depth`: how many supervisors enclose the child (1 for a top-level spec's children).
caf::error check_one(const child_spec& c, const std::string& at, int depth) {
  if (c.id.empty()) return bad(at + ".id", "a child needs an id");
  const std::string here = at + " ('" + c.id + "')";
  if (beyond(c.restart, restart_type::temporary)) return bad(here + ".restart", "not a restart type");
  if (c.supervisor.size() > 1) return bad(here + ".supervisor", "one nested supervisor at most");
  if (c.shutdown_ms < default_shutdown)
    return bad(here + ".shutdown_ms", "must be >= 0, -1 (infinity) or default_shutdown");
  if (c.shutdown_ms > max_duration_ms) return bad(here + ".shutdown_ms", too_long);
  if (c.significant && c.restart == restart_type::permanent)
    return bad(here + ".significant", "a significant child must be transient or temporary");
  if (auto err = check_nodes(c, here)) return err;
  if (c.supervisor.empty()) return check_process(c.process, here + ".process");
  // Refused before the recursion: the check's own stack stays bounded.
  if (depth >= max_depth)
    return bad(here + ".supervisor", "supervisors nested more than " + std::to_string(max_depth) + " deep");
  return check_spec(c.supervisor.front(), here + ".supervisor[0].", depth + 1);
}

}  // namespace

caf::error check_child(const child_spec& c, const std::string& at) { return check_one(c, at, 1); }

caf::error check_childspecs(const std::vector<child_spec>& children) { return check_children(children, "", 1); }

caf::error check_supervisor_spec(const supervisor_spec& spec) { return check_spec(spec, "", 1); }

caf::error check_process_spec(const process_spec& spec) { return check_process(spec, "process"); }

}  // namespace pkit::actors
