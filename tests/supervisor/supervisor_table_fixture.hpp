#pragma once

// The fixture of the rule table's actor tests (supervisor_table_test and its sibling
// sources): a supervisor of nested supervisors on CAF's test_coordinator, and the
// helpers to ask it and read its answers. Include after Boost.Test's unit_test.hpp.

#include "supervisor_clock_fixture.hpp"

#include <pkit/actors/error.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace table_test {

using namespace clock_test;


inline pa::child_spec nested(const std::string& id, pa::restart_type restart = pa::restart_type::permanent,
                      bool significant = false) {
  pa::child_spec c;
  c.id = id;
  c.restart = restart;
  c.significant = significant;
  c.supervisor.push_back(pa::supervisor_spec{"inner-" + id, {}, {}});
  return c;
}

/// A remote worker (placed by the supervisor's placement: no process here).
inline pa::child_spec far(const std::string& id) {
  pa::child_spec c;
  c.id = id;
  c.nodes = {"x"};
  c.process.argv = {"/bin/sleep", "1000"};
  return c;
}

struct table_fixture : clock_fixture {
  pa::supervisor_actor start_children(pa::supervisor_flags flags, std::vector<pa::child_spec> children) {
    pa::supervisor_spec spec;
    spec.name = "table";
    spec.flags = flags;
    spec.children = std::move(children);
    const std::size_t n = spec.children.size();
    auto s = pa::spawn_supervisor(*sys, spec, nullptr, {}, {{collector}});
    sups.push_back(s);
    run();
    BOOST_TEST_REQUIRE(count(event_kind::ready) == n, "the children did not start;" << history());
    return s;
  }

  /// A supervisor whose remote workers are placed by `place`; each of `children` is
  /// ready when it returns.
  pa::supervisor_actor start_placed(const pa::placement& place, pa::supervisor_flags flags,
                                    std::vector<pa::child_spec> children) {
    pa::supervisor_options o;
    o.place = &place;
    o.subscribers = {{collector}};
    pa::supervisor_spec spec;
    spec.name = "table";
    spec.flags = flags;
    spec.children = std::move(children);
    auto s = pa::spawn_supervisor(*sys, spec, o);
    sups.push_back(s);
    run();
    for (const auto& c : spec.children)
      BOOST_TEST_REQUIRE(count_of(c.id, event_kind::ready) == 1u, c.id << " did not start;" << history());
    return s;
  }

  void crash_child(const pa::supervisor_actor& s, const std::string& id,
                   caf::exit_reason how = caf::exit_reason::user_shutdown) {
    for (const auto& c : which(s))
      if (c.id == id) caf::anon_send_exit(c.handle, how);
    run();
  }
};

inline bool is(const std::optional<caf::expected<caf::ok_atom>>& r, pa::error e) {
  return r && !static_cast<bool>(*r) && r->error() == e;
}

inline std::string what(const std::optional<caf::expected<caf::ok_atom>>& r) {
  if (!r) return "no reply";
  return static_cast<bool>(*r) ? "ok" : caf::to_string(r->error());
}


/// Sends a request to `s` from a new actor and delivers what is due; the reply lands in
/// the returned slot when it comes (later, for a request that waits).
template <class R, class... Ts>
std::shared_ptr<std::optional<caf::expected<R>>> ask_later(caf::actor_system& sys, const pa::supervisor_actor& s,
                                                           Ts... xs) {
  auto out = std::make_shared<std::optional<caf::expected<R>>>();
  sys.spawn(
      [=](caf::event_based_actor* self, int) {
        self->request(s, caf::infinite, xs...)
            .then([out](R& r) { *out = std::move(r); }, [out](caf::error& e) { *out = std::move(e); });
      },
      0);
  return out;
}

}  // namespace table_test
