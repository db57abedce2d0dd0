// The actor layer's value types and errors: every type of messages.hpp survives a trip
// through CAF 0.17's binary serializer (field by field, each set to a non-default
// value, so a field missing from an inspect overload is caught), messages built from
// them round-trip with the types pkit::actors::init registered, and the "pkit" error
// category renders as "pkit: <code> (<context>)".

#define BOOST_TEST_MODULE pkit actors messages
#include "actor_test_support.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

using namespace pkit_actor_test;
using pkit::exit_status;

namespace {

/// Serializes `x` with a binary_serializer and reads it back into `out` (which the
/// caller initialises differently from `x`); checks that every byte was consumed.
template <class T>
void round_trip(caf::actor_system& sys, const T& x, T& out) {
  std::vector<char> buf;
  {
    T copy = x;
    caf::binary_serializer sink{sys, buf};
    auto err = sink(copy);
    BOOST_TEST_REQUIRE(!err, "serialize: " << sys.render(err));
  }
  BOOST_TEST_REQUIRE(!buf.empty());
  caf::binary_deserializer source{sys, buf};
  auto err = source(out);
  BOOST_TEST_REQUIRE(!err, "deserialize: " << sys.render(err));
  BOOST_TEST(source.remaining() == 0u, "bytes left over after deserializing");
}

template <class T>
T round_trip(caf::actor_system& sys, const T& x) {
  T out{};
  round_trip(sys, x, out);
  return out;
}

// --- sample values, every field away from its default ---------------------------------

pa::process_spec sample_process_spec(const std::string& tag) {
  pa::process_spec s;
  s.name = "name-" + tag;
  s.argv = {"/bin/prog-" + tag, "a b", ""};
  s.target = "target-" + tag;
  s.args = {"x", "y-" + tag};
  s.env = {"A=1", "B"};
  s.clear_env = true;
  s.cwd = "/tmp/" + tag;
  s.stdout_path = "/tmp/out-" + tag;
  s.stderr_path = "null";
  s.stdin_path = "/tmp/in-" + tag;
  s.new_process_group = false;
  s.notify_fd = 7;
  s.ready_timeout_ms = 1234;
  s.stop_signal = SIGUSR2;
  s.stop_timeout_ms = -1;
  s.kill_group = false;
  return s;
}

pa::backoff_spec sample_backoff() {
  pa::backoff_spec b;
  b.initial_ms = 11;
  b.max_ms = 22;
  b.multiplier = 3.5;
  b.jitter = 0.25;
  b.reset_after_ms = 33;
  return b;
}

pa::supervisor_flags sample_flags() {
  pa::supervisor_flags f;
  f.strategy = pa::restart_strategy::rest_for_one;
  f.intensity = 17;
  f.period_ms = 999;
  f.shutdown = pa::auto_shutdown::all_significant;
  f.backoff = sample_backoff();
  f.min_uptime_ms = 250;
  f.max_failed_starts = 9;
  return f;
}

pa::child_spec sample_worker(const std::string& id) {
  pa::child_spec c;
  c.id = id;
  c.process = sample_process_spec(id);
  c.restart = pa::restart_type::transient;
  c.shutdown_ms = 0;
  c.significant = true;
  return c;
}

pa::supervisor_spec sample_supervisor(const std::string& name) {
  pa::supervisor_spec s;
  s.name = name;
  s.flags = sample_flags();
  s.children = {sample_worker(name + "-w1"), sample_worker(name + "-w2")};
  return s;
}

pa::child_info sample_child_info(const std::string& id) {
  pa::child_info c;
  c.id = id;
  c.state = pa::child_state::restarting;
  c.pid = 4242;
  c.incarnation = 77;
  c.is_supervisor = true;
  c.automatic_restarts = 5;
  c.manual_restarts = 6;
  c.has_last_exit = true;
  c.last_exit = exit_status::killed(SIGSEGV, true);
  return c;
}

// --- field-by-field comparisons ---------------------------------------------------------

void check_same(const pa::process_spec& a, const pa::process_spec& b) {
  BOOST_TEST(a.name == b.name);
  BOOST_TEST(a.argv == b.argv, boost::test_tools::per_element());
  BOOST_TEST(a.target == b.target);
  BOOST_TEST(a.args == b.args, boost::test_tools::per_element());
  BOOST_TEST(a.env == b.env, boost::test_tools::per_element());
  BOOST_TEST(a.clear_env == b.clear_env);
  BOOST_TEST(a.cwd == b.cwd);
  BOOST_TEST(a.stdout_path == b.stdout_path);
  BOOST_TEST(a.stderr_path == b.stderr_path);
  BOOST_TEST(a.stdin_path == b.stdin_path);
  BOOST_TEST(a.new_process_group == b.new_process_group);
  BOOST_TEST(a.notify_fd == b.notify_fd);
  BOOST_TEST(a.ready_timeout_ms == b.ready_timeout_ms);
  BOOST_TEST(a.stop_signal == b.stop_signal);
  BOOST_TEST(a.stop_timeout_ms == b.stop_timeout_ms);
  BOOST_TEST(a.kill_group == b.kill_group);
}

void check_same(const pa::backoff_spec& a, const pa::backoff_spec& b) {
  BOOST_TEST(a.initial_ms == b.initial_ms);
  BOOST_TEST(a.max_ms == b.max_ms);
  BOOST_TEST(a.multiplier == b.multiplier);
  BOOST_TEST(a.jitter == b.jitter);
  BOOST_TEST(a.reset_after_ms == b.reset_after_ms);
}

void check_same(const pa::supervisor_flags& a, const pa::supervisor_flags& b) {
  BOOST_TEST(a.strategy == b.strategy);
  BOOST_TEST(a.intensity == b.intensity);
  BOOST_TEST(a.period_ms == b.period_ms);
  BOOST_TEST(a.shutdown == b.shutdown);
  check_same(a.backoff, b.backoff);
  BOOST_TEST(a.min_uptime_ms == b.min_uptime_ms);
  BOOST_TEST(a.max_failed_starts == b.max_failed_starts);
}

void check_same(const pa::supervisor_spec& a, const pa::supervisor_spec& b);

void check_same(const pa::child_spec& a, const pa::child_spec& b) {
  BOOST_TEST(a.id == b.id);
  check_same(a.process, b.process);
  BOOST_TEST_REQUIRE(a.supervisor.size() == b.supervisor.size());
  for (std::size_t i = 0; i < a.supervisor.size(); ++i) check_same(a.supervisor[i], b.supervisor[i]);
  BOOST_TEST(a.restart == b.restart);
  BOOST_TEST(a.shutdown_ms == b.shutdown_ms);
  BOOST_TEST(a.significant == b.significant);
}

void check_same(const pa::supervisor_spec& a, const pa::supervisor_spec& b) {
  BOOST_TEST(a.name == b.name);
  check_same(a.flags, b.flags);
  BOOST_TEST_REQUIRE(a.children.size() == b.children.size());
  for (std::size_t i = 0; i < a.children.size(); ++i) check_same(a.children[i], b.children[i]);
}

void check_same(const pa::child_info& a, const pa::child_info& b) {
  BOOST_TEST(a.id == b.id);
  BOOST_TEST(a.state == b.state);
  BOOST_TEST(a.pid == b.pid);
  BOOST_TEST(a.incarnation == b.incarnation);
  BOOST_TEST(a.is_supervisor == b.is_supervisor);
  BOOST_TEST(a.automatic_restarts == b.automatic_restarts);
  BOOST_TEST(a.manual_restarts == b.manual_restarts);
  BOOST_TEST(a.has_last_exit == b.has_last_exit);
  BOOST_TEST(a.last_exit == b.last_exit);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(messages, actor_fixture)

// =====================================================================================
// Binary round trips
// =====================================================================================

BOOST_AUTO_TEST_CASE(exit_status_round_trips_through_the_binary_serializer) {
  const exit_status samples[] = {exit_status::exited(0), exit_status::exited(42),
                                 exit_status::exited(255), exit_status::killed(SIGKILL),
                                 exit_status::killed(SIGSEGV, true),
                                 exit_status::killed(SIGKILL).with_stop_escalated(),
                                 exit_status::killed(SIGTERM).with_stop_escalated()};
  for (const auto& x : samples) {
    BOOST_TEST_CONTEXT(x.to_string()) {
      // Read into a value unlike the sample, so an ignored field shows.
      exit_status out = x.is_killed() ? exit_status::exited(1) : exit_status::killed(SIGABRT, true);
      round_trip(system, x, out);
      BOOST_TEST(out == x);
      BOOST_TEST(out.is_killed() == x.is_killed());
      BOOST_TEST(out.code() == x.code());
      BOOST_TEST(out.signal() == x.signal());
      BOOST_TEST(out.core_dumped() == x.core_dumped());
      BOOST_TEST(out.stop_escalated() == x.stop_escalated());
    }
  }
}

BOOST_AUTO_TEST_CASE(every_enum_of_the_actor_layer_round_trips) {
  for (auto s : {pa::process_state::idle, pa::process_state::starting, pa::process_state::running,
                 pa::process_state::stopping, pa::process_state::exited}) {
    auto out = s == pa::process_state::idle ? pa::process_state::exited : pa::process_state::idle;
    round_trip(system, s, out);
    BOOST_TEST(out == s);
  }
  for (auto s : {pa::restart_strategy::one_for_one, pa::restart_strategy::one_for_all,
                 pa::restart_strategy::rest_for_one, pa::restart_strategy::simple_one_for_one}) {
    BOOST_TEST(round_trip(system, s) == s);
  }
  for (auto t : {pa::restart_type::permanent, pa::restart_type::transient, pa::restart_type::temporary})
    BOOST_TEST(round_trip(system, t) == t);
  for (auto a : {pa::auto_shutdown::never, pa::auto_shutdown::any_significant,
                 pa::auto_shutdown::all_significant})
    BOOST_TEST(round_trip(system, a) == a);
  for (auto c : {pa::child_state::stopped, pa::child_state::starting, pa::child_state::running,
                 pa::child_state::restarting, pa::child_state::stopping, pa::child_state::fatal})
    BOOST_TEST(round_trip(system, c) == c);
  for (auto k : {pa::event_kind::started, pa::event_kind::ready, pa::event_kind::exited,
                 pa::event_kind::restarting, pa::event_kind::gave_up, pa::event_kind::fatal,
                 pa::event_kind::stopped})
    BOOST_TEST(round_trip(system, k) == k);
}

BOOST_AUTO_TEST_CASE(process_spec_round_trips_with_every_field) {
  const auto x = sample_process_spec("p");
  check_same(round_trip(system, x), x);
}

BOOST_AUTO_TEST_CASE(process_info_round_trips_with_every_field) {
  pa::process_info x;
  x.name = "web";
  x.state = pa::process_state::stopping;
  x.pid = 31337;
  x.incarnation = 12;
  x.started_at_ns = 1'700'000'000'123'456'789;
  x.has_last_exit = true;
  x.last_exit = exit_status::killed(SIGTERM);
  const auto y = round_trip(system, x);
  BOOST_TEST(y.name == x.name);
  BOOST_TEST(y.state == x.state);
  BOOST_TEST(y.pid == x.pid);
  BOOST_TEST(y.incarnation == x.incarnation);
  BOOST_TEST(y.started_at_ns == x.started_at_ns);
  BOOST_TEST(y.has_last_exit == x.has_last_exit);
  BOOST_TEST(y.last_exit == x.last_exit);
}

BOOST_AUTO_TEST_CASE(start_failure_round_trips_with_every_field) {
  const pa::start_failure x{"web", "/usr/bin/web", "exec", 2, "cannot start '/usr/bin/web': exec: No such file or directory"};
  const auto y = round_trip(system, x);
  BOOST_TEST(y.name == x.name);
  BOOST_TEST(y.program == x.program);
  BOOST_TEST(y.stage == x.stage);
  BOOST_TEST(y.errno_value == x.errno_value);
  BOOST_TEST(y.text == x.text);
}

BOOST_AUTO_TEST_CASE(backoff_spec_and_supervisor_flags_round_trip_with_every_field) {
  const auto b = sample_backoff();
  check_same(round_trip(system, b), b);
  const auto f = sample_flags();
  check_same(round_trip(system, f), f);
}

BOOST_AUTO_TEST_CASE(a_worker_child_spec_round_trips_with_every_field) {
  const auto x = sample_worker("w");
  check_same(round_trip(system, x), x);
}

BOOST_AUTO_TEST_CASE(a_child_spec_with_a_nested_supervisor_spec_round_trips) {
  // A supervisor child whose supervisor has a supervisor child in turn: three levels.
  auto inner = sample_supervisor("inner");
  pa::child_spec inner_child;
  inner_child.id = "inner-sup";
  inner_child.supervisor = {inner};
  inner_child.restart = pa::restart_type::temporary;
  inner_child.shutdown_ms = -1;
  auto middle = sample_supervisor("middle");
  middle.children.push_back(inner_child);
  pa::child_spec x;
  x.id = "middle-sup";
  x.supervisor = {middle};
  x.restart = pa::restart_type::transient;
  x.shutdown_ms = 7000;
  x.significant = true;

  const auto y = round_trip(system, x);
  check_same(y, x);
  BOOST_TEST_REQUIRE(y.supervisor.size() == 1u);
  BOOST_TEST_REQUIRE(y.supervisor[0].children.size() == 3u);
  BOOST_TEST_REQUIRE(y.supervisor[0].children[2].supervisor.size() == 1u);
  BOOST_TEST(y.supervisor[0].children[2].supervisor[0].name == "inner");
  BOOST_TEST(y.supervisor[0].children[2].supervisor[0].children[1].process.name == "name-inner-w2");
}

BOOST_AUTO_TEST_CASE(a_supervisor_spec_round_trips_with_its_children_in_order) {
  const auto x = sample_supervisor("top");
  check_same(round_trip(system, x), x);
}

BOOST_AUTO_TEST_CASE(child_info_and_a_vector_of_them_round_trip) {
  const auto x = sample_child_info("c1");
  check_same(round_trip(system, x), x);
  std::vector<pa::child_info> v{sample_child_info("a"), sample_child_info("b")};
  v[1].state = pa::child_state::fatal;
  v[1].has_last_exit = false;
  v[1].last_exit = exit_status::exited(0);
  const auto w = round_trip(system, v);
  BOOST_TEST_REQUIRE(w.size() == 2u);
  check_same(w[0], v[0]);
  check_same(w[1], v[1]);
}

BOOST_AUTO_TEST_CASE(child_counts_round_trip) {
  pa::child_counts x;
  x.specs = 4;
  x.active = 3;
  x.supervisors = 1;
  x.workers = 2;
  const auto y = round_trip(system, x);
  BOOST_TEST(y.specs == x.specs);
  BOOST_TEST(y.active == x.active);
  BOOST_TEST(y.supervisors == x.supervisors);
  BOOST_TEST(y.workers == x.workers);
}

BOOST_AUTO_TEST_CASE(supervisor_event_round_trips_with_every_field) {
  pa::supervisor_event x;
  x.supervisor = "root";
  x.child = "db";
  x.kind = pa::event_kind::restarting;
  x.incarnation = 9;
  x.pid = 2024;
  x.has_status = true;
  x.status = exit_status::exited(3);
  x.delay_ms = 1500;
  x.reason = "crashed";
  const auto y = round_trip(system, x);
  BOOST_TEST(y.supervisor == x.supervisor);
  BOOST_TEST(y.child == x.child);
  BOOST_TEST(y.kind == x.kind);
  BOOST_TEST(y.incarnation == x.incarnation);
  BOOST_TEST(y.pid == x.pid);
  BOOST_TEST(y.has_status == x.has_status);
  BOOST_TEST(y.status == x.status);
  BOOST_TEST(y.delay_ms == x.delay_ms);
  BOOST_TEST(y.reason == x.reason);
}

// Messages carry type information; deserializing them needs the types pkit::actors::init
// registered with this actor system.
BOOST_AUTO_TEST_CASE(messages_of_pkit_types_round_trip_with_the_registered_types) {
  auto exited_msg = caf::make_message(pa::child_exited_atom_v, std::string("web"), std::uint64_t{3},
                                      exit_status::killed(SIGKILL));
  caf::message out;
  round_trip(system, exited_msg, out);
  BOOST_TEST_REQUIRE((out.match_elements<pa::child_exited_atom, std::string, std::uint64_t, exit_status>()),
                     "got " << caf::to_string(out));
  BOOST_TEST(out.get_as<std::string>(1) == "web");
  BOOST_TEST(out.get_as<std::uint64_t>(2) == 3u);
  BOOST_TEST(out.get_as<exit_status>(3) == exit_status::killed(SIGKILL));

  auto spec_msg = caf::make_message(pa::start_child_atom_v, sample_worker("w"), sample_supervisor("s"));
  caf::message out2;
  round_trip(system, spec_msg, out2);
  BOOST_TEST_REQUIRE((out2.match_elements<pa::start_child_atom, pa::child_spec, pa::supervisor_spec>()),
                     "got " << caf::to_string(out2));
  check_same(out2.get_as<pa::child_spec>(1), sample_worker("w"));
  check_same(out2.get_as<pa::supervisor_spec>(2), sample_supervisor("s"));
}

// =====================================================================================
// The "pkit" error category
// =====================================================================================

BOOST_AUTO_TEST_CASE(the_pkit_error_category_renders_code_and_context) {
  auto e = caf::make_error(pa::error::start_failed,
                           std::string("cannot start 'x': exec: No such file or directory"));
  BOOST_TEST(e.category() == caf::atom("pkit"));
  BOOST_TEST(e.code() == static_cast<std::uint8_t>(pa::error::start_failed));
  BOOST_TEST(render(e) == "pkit: start_failed (cannot start 'x': exec: No such file or directory)");
  BOOST_TEST(render(caf::make_error(pa::error::not_started)) == "pkit: not_started");
}

BOOST_AUTO_TEST_CASE(every_pkit_error_code_renders_with_its_name) {
  const std::pair<pa::error, const char*> names[] = {
      {pa::error::not_started, "not_started"},
      {pa::error::already_running, "already_running"},
      {pa::error::start_failed, "start_failed"},
      {pa::error::ready_timeout, "ready_timeout"},
      {pa::error::died_before_ready, "died_before_ready"},
      {pa::error::unknown_child, "unknown_child"},
      {pa::error::already_present, "already_present"},
      {pa::error::still_running, "still_running"},
      {pa::error::restart_limit, "restart_limit"},
      {pa::error::shutting_down, "shutting_down"},
      {pa::error::invalid_spec, "invalid_spec"},
      {pa::error::no_fork_server, "no_fork_server"},
      {pa::error::wrong_strategy, "wrong_strategy"},
  };
  for (const auto& [code, name] : names) {
    BOOST_TEST(pa::to_string(code) == name);
    BOOST_TEST(render(caf::make_error(code, std::string("ctx"))) == std::string("pkit: ") + name + " (ctx)");
  }
}

BOOST_AUTO_TEST_CASE(a_pkit_error_round_trips_with_its_context) {
  auto e = caf::make_error(pa::error::ready_timeout, std::string("web not ready within 300 ms"));
  caf::error out;
  round_trip(system, e, out);
  BOOST_TEST(out.category() == caf::atom("pkit"));
  BOOST_TEST(out.code() == static_cast<std::uint8_t>(pa::error::ready_timeout));
  BOOST_TEST(render(out) == "pkit: ready_timeout (web not ready within 300 ms)");
}

BOOST_AUTO_TEST_SUITE_END()

// What a start may wait for beyond its spawn, the one rule every bound on a start (the
// supervisor's, the node agent's, the node directory's, pkit node's front) builds on. A
// user or group is looked up before the spawn and counts toward the readiness deadline:
// before, the remote bounds left it out — a 5 s bound for a lookup allowed 10 s.
BOOST_AUTO_TEST_CASE(start_wait_covers_readiness_and_the_lookup_of_a_user) {
  pa::process_spec plain;
  plain.argv = {"/bin/true"};
  BOOST_TEST((pa::start_wait_ms(plain) == std::optional<std::int64_t>(0)));
  auto notify = plain;
  notify.notify_fd = 3;
  notify.ready_timeout_ms = 700;
  BOOST_TEST((pa::start_wait_ms(notify) == std::optional<std::int64_t>(700)));
  notify.ready_timeout_ms = 0;
  BOOST_TEST((pa::start_wait_ms(notify) == std::optional<std::int64_t>(0)));
  notify.ready_timeout_ms = -1;
  BOOST_TEST(!pa::start_wait_ms(notify).has_value());
  auto user = plain;
  user.user = "nobody";
  user.ready_timeout_ms = 900;
  BOOST_TEST((pa::start_wait_ms(user) == std::optional<std::int64_t>(900)));
  auto group = plain;
  group.group = "nogroup";
  BOOST_TEST((pa::start_wait_ms(group) == std::optional<std::int64_t>(group.ready_timeout_ms)));
  user.ready_timeout_ms = 0;  // bounds no lookup
  BOOST_TEST(!pa::start_wait_ms(user).has_value());
  user.ready_timeout_ms = -1;
  BOOST_TEST(!pa::start_wait_ms(user).has_value());
}
