#pragma once

// The fixture of the supervisor's deterministic tests: CAF's test_coordinator runs every
// actor on the test's thread, and its clock moves only when the test advances it. The
// children are nested supervisors without children of their own: killing one with an
// exit message is a crash the parent sees through its monitor, like any child's end, and
// restarting it spawns a new one (no reaper thread, nothing outside the coordinator).
// Include after Boost.Test's unit_test.hpp.

#include <pkit/actors/messages.hpp>
#include <pkit/actors/supervisor.hpp>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/expected.hpp>

#include <chrono>
#include <initializer_list>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace pa = pkit::actors;
using namespace std::chrono_literals;
using pa::event_kind;

namespace clock_test {

struct clock_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::vector<pa::supervisor_event> events;
  caf::actor collector;
  std::vector<pa::supervisor_actor> sups;

  clock_fixture() {
    pa::init(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    // A clock that does not start at zero, as CAF's own test fixture does.
    sched->clock().current_time += std::chrono::hours(1);
    // (An actor function needs an argument in CAF 0.17.6: see timer_relay.hpp.)
    collector = sys->spawn(
        [this](caf::event_based_actor*, int) -> caf::behavior {
          return {[this](pa::supervisor_event& e) { events.push_back(std::move(e)); }};
        },
        0);
  }

  ~clock_fixture() {
    for (auto& s : sups) caf::anon_send_exit(s, caf::exit_reason::kill);
    caf::anon_send_exit(collector, caf::exit_reason::kill);
    sched->run();
  }

  /// Delivers every message that is due; never moves the clock.
  void run() { sched->run(); }

  /// Moves the clock by `d` (firing what falls due), then delivers the messages.
  void advance(std::chrono::milliseconds d) {
    sched->clock().advance_time(d);
    run();
  }

  pa::supervisor_actor start(pa::supervisor_flags flags) {
    pa::supervisor_spec spec;
    spec.name = "clock";
    spec.flags = flags;
    pa::child_spec child;
    child.id = "n";
    child.supervisor.push_back(pa::supervisor_spec{"inner", {}, {}});
    spec.children.push_back(child);
    auto s = pa::spawn_supervisor(*sys, spec);
    caf::anon_send(s, pa::subscribe_atom_v, collector);
    sups.push_back(s);
    run();
    BOOST_TEST_REQUIRE(count(event_kind::ready, 1) == 1u, "the child did not start;" << history());
    return s;
  }

  /// A supervisor of nested supervisors (no children of their own) with these ids.
  pa::supervisor_actor start_group(pa::supervisor_flags flags, std::vector<std::string> ids) {
    pa::supervisor_spec spec;
    spec.name = "clock";
    spec.flags = flags;
    for (const auto& id : ids) {
      pa::child_spec child;
      child.id = id;
      child.supervisor.push_back(pa::supervisor_spec{"inner-" + id, {}, {}});
      spec.children.push_back(child);
    }
    auto s = pa::spawn_supervisor(*sys, spec, nullptr, {}, {{collector}});
    sups.push_back(s);
    run();
    BOOST_TEST_REQUIRE(count(event_kind::ready, 1) == ids.size(), "the children did not start;" << history());
    return s;
  }

  /// Ends the actors of these children at the same moment (one delivery round).
  void crash_together(const pa::supervisor_actor& s, std::vector<std::string> ids) {
    const auto cs = which(s);
    for (const auto& id : ids)
      for (const auto& c : cs)
        if (c.id == id) caf::anon_send_exit(c.handle, caf::exit_reason::user_shutdown);
    run();
  }

  /// Sends a request to `s` from a new actor and delivers every message: the reply, or
  /// its error; nothing if no reply came (the request is still pending).
  template <class R, class... Ts>
  std::optional<caf::expected<R>> ask(const pa::supervisor_actor& s, Ts... xs) {
    auto out = std::make_shared<std::optional<caf::expected<R>>>();
    sys->spawn(
        [=](caf::event_based_actor* self, int) {
          self->request(s, caf::infinite, xs...)
              .then([out](R& r) { *out = std::move(r); }, [out](caf::error& e) { *out = std::move(e); });
        },
        0);
    run();
    return *out;
  }

  /// The state of child `id` of `s`, or "gone".
  std::string state_of(const pa::supervisor_actor& s, const std::string& id) {
    for (const auto& c : which(s))
      if (c.id == id) return pa::to_string(c.state);
    return "gone";
  }

  /// Whether `s` still answers (it has not ended).
  bool alive(const pa::supervisor_actor& s) {
    auto r = ask<pa::child_counts>(s, pa::count_children_atom_v);
    return r.has_value() && static_cast<bool>(*r);
  }

  /// Events of child `id` of this kind.
  std::size_t count_of(const std::string& id, event_kind kind) const {
    std::size_t n = 0;
    for (const auto& e : events)
      if (e.child == id && e.kind == kind) ++n;
    return n;
  }

  std::vector<std::string> trace_of(std::initializer_list<event_kind> kinds) const {
    std::vector<std::string> out;
    for (const auto& e : events)
      for (auto k : kinds)
        if (e.kind == k) out.push_back(pa::to_string(e.kind) + ":" + e.child);
    return out;
  }

  std::vector<pa::child_info> which(const pa::supervisor_actor& s) {
    std::optional<std::vector<pa::child_info>> out;
    sys->spawn(
        [&](caf::event_based_actor* self, int) {
          self->request(s, caf::infinite, pa::which_children_atom_v)
              .then([&](std::vector<pa::child_info>& v) { out = std::move(v); });
        },
        0);
    run();
    BOOST_TEST_REQUIRE(out.has_value(), "which_children was not answered");
    return *out;
  }

  /// Crashes the child at each of these times (ms after the first crash).
  void crash_at(const pa::supervisor_actor& s, std::initializer_list<int> times_ms) {
    int now = *times_ms.begin();
    for (int t : times_ms) {
      advance(std::chrono::milliseconds(t - now));
      now = t;
      crash(s);
    }
  }

  /// Crashes the child: its actor is ended, which the supervisor sees as its exit.
  void crash(const pa::supervisor_actor& s, caf::exit_reason how = caf::exit_reason::user_shutdown) {
    const auto cs = which(s);
    BOOST_TEST_REQUIRE(cs.size() == 1u);
    BOOST_TEST_REQUIRE(static_cast<bool>(cs.front().handle), "the child has no actor");
    caf::anon_send_exit(cs.front().handle, how);
    run();
  }

  std::size_t count(event_kind kind, std::uint64_t incarnation = 0) const {
    std::size_t n = 0;
    for (const auto& e : events)
      if (e.kind == kind && (incarnation == 0 || e.incarnation == incarnation)) ++n;
    return n;
  }

  /// The delay of the last `restarting` event.
  std::int64_t last_delay() const {
    for (auto i = events.rbegin(); i != events.rend(); ++i)
      if (i->kind == event_kind::restarting) return i->delay_ms;
    return -1;
  }

  std::string history() const {
    std::ostringstream out;
    for (const auto& e : events)
      out << "\n  " << e.child << " " << pa::to_string(e.kind) << " #" << e.incarnation
          << (e.kind == event_kind::restarting ? " delay " + std::to_string(e.delay_ms) : "")
          << (e.reason.empty() ? "" : " (" + e.reason + ")");
    return out.str();
  }
};

inline pa::supervisor_flags flags_with(std::int32_t intensity, std::int64_t period_ms) {
  pa::supervisor_flags f;
  f.intensity = intensity;
  f.period_ms = period_ms;
  f.backoff.initial_ms = 0;
  return f;
}

}  // namespace clock_test
