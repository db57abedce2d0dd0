// OTP's check_childspecs for pkit's specs: every field checked without starting anything,
// each error naming the field by its path in the spec.

#include <pkit/actors/supervisor.hpp>

#include <pkit/actors/error.hpp>

#include <caf/atom.hpp>

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
  for (std::size_t i = 0; i < p.rlimits.size(); ++i) {
    const rlimit_spec& l = p.rlimits[i];
    const std::string here = at + ".rlimits[" + std::to_string(i) + "]";
    if (l.resource < 0 || l.resource >= RLIM_NLIMITS) return bad(here + ".resource", "not an RLIMIT_* value");
    if (l.soft > l.hard) return bad(here + ".soft", "exceeds the hard limit");
  }
  return caf::none;
}

caf::error check_process(const process_spec& p, const std::string& at) {
  if (p.argv.empty() == p.target.empty())
    return bad(at + ".argv", p.argv.empty() ? "a worker needs either argv or target"
                                            : "a worker has either argv or target, not both");
  if (!p.argv.empty() && p.argv.front().empty()) return bad(at + ".argv[0]", "empty program");
  if (p.stop_signal <= 0 || p.stop_signal >= NSIG) return bad(at + ".stop_signal", "not a signal number");
  if (p.stop_timeout_ms < -1) return bad(at + ".stop_timeout_ms", "must be >= 0 or -1 (never escalate)");
  return check_identity(p, at);
}

caf::error check_flags(const supervisor_flags& f, const std::string& at) {
  if (f.intensity < 0) return bad(at + ".intensity", "must be >= 0");
  if (f.period_ms <= 0) return bad(at + ".period_ms", "must be > 0");
  if (f.min_uptime_ms < 0) return bad(at + ".min_uptime_ms", "must be >= 0");
  if (f.max_failed_starts < 0) return bad(at + ".max_failed_starts", "must be >= 0");
  if (f.start_concurrency < 1) return bad(at + ".start_concurrency", "must be >= 1");
  const backoff_spec& b = f.backoff;
  if (b.initial_ms < 0) return bad(at + ".backoff.initial_ms", "must be >= 0");
  if (b.initial_ms > 0) {
    if (b.max_ms < b.initial_ms) return bad(at + ".backoff.max_ms", "must be >= initial_ms");
    if (!(b.multiplier >= 1.0)) return bad(at + ".backoff.multiplier", "must be >= 1");
    if (!(b.jitter >= 0.0 && b.jitter <= 1.0)) return bad(at + ".backoff.jitter", "must be in [0, 1]");
    if (b.reset_after_ms < 0) return bad(at + ".backoff.reset_after_ms", "must be >= 0");
  }
  return caf::none;
}

caf::error check_spec(const supervisor_spec& s, const std::string& at);

caf::error check_children(const std::vector<child_spec>& children, const std::string& at) {
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < children.size(); ++i) {
    const child_spec& c = children[i];
    const std::string here = at + "children[" + std::to_string(i) + "]";
    if (auto err = check_child(c, here)) return err;
    if (auto [it, fresh] = seen.emplace(c.id, i); !fresh)
      return bad(here + ".id", "'" + c.id + "' is also the id of " + at + "children[" + std::to_string(it->second) + "]");
  }
  return caf::none;
}

caf::error check_spec(const supervisor_spec& s, const std::string& at) {
  if (auto err = check_flags(s.flags, at + "flags")) return err;
  if (!s.flags.registered_name.empty() &&
      (s.flags.registered_name.size() > 10 || to_string(caf::atom_from_string(s.flags.registered_name)) != s.flags.registered_name))
    return bad(at + "flags.registered_name", "'" + s.flags.registered_name +
                                           "' is not a CAF atom (at most 10 letters, digits, '_' or ' ')");
  if (s.flags.strategy == restart_strategy::simple_one_for_one && s.children.size() != 1)
    return bad(at + "children", "simple_one_for_one needs exactly one template child, not " +
                                    std::to_string(s.children.size()));
  return check_children(s.children, at);
}

}  // namespace

caf::error check_child(const child_spec& c, const std::string& at) {
  if (c.id.empty()) return bad(at + ".id", "a child needs an id");
  const std::string here = at + " ('" + c.id + "')";
  if (c.supervisor.size() > 1) return bad(here + ".supervisor", "one nested supervisor at most");
  if (c.shutdown_ms < default_shutdown)
    return bad(here + ".shutdown_ms", "must be >= 0, -1 (infinity) or default_shutdown");
  if (c.significant && c.restart == restart_type::permanent)
    return bad(here + ".significant", "a significant child must be transient or temporary");
  if (c.supervisor.empty()) return check_process(c.process, here + ".process");
  return check_spec(c.supervisor.front(), here + ".supervisor[0].");
}

caf::error check_childspecs(const std::vector<child_spec>& children) { return check_children(children, ""); }

caf::error check_supervisor_spec(const supervisor_spec& spec) { return check_spec(spec, ""); }

}  // namespace pkit::actors
