// OTP supervisor features beyond the restart rules: check_childspecs, get_childspec,
// start_link (a synchronous start), registered names, and supervisor reports on stderr.
// Children run tests/helper/pkit_test_child.

#define BOOST_TEST_MODULE pkit supervisor otp
#include "supervisor_test_support.hpp"

#include <fstream>
#include <iterator>

#include <fcntl.h>

using namespace sup_test;
using namespace std::chrono_literals;
using pa::restart_strategy;
using pa::restart_type;

namespace {

std::string rendered_context(const caf::actor_system& sys, const caf::error& err) { return sys.render(err); }

/// Redirects this program's stderr (fd 2) to a file while it lives.
struct stderr_capture {
  std::string path;
  int saved = -1;
  explicit stderr_capture(std::string file) : path(std::move(file)) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    BOOST_TEST_REQUIRE(fd >= 0);
    saved = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 10);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  std::string text() const {
    std::ifstream f(path);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }
  ~stderr_capture() {
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(supervisor_otp, sup_fixture)

// =====================================================================================
// check_childspecs
// =====================================================================================

BOOST_AUTO_TEST_CASE(check_childspecs_accepts_a_valid_tree_and_names_the_bad_field_of_an_invalid_one) {
  auto w = worker("w", {"pause"});
  auto inner = sup_spec("inner", restart_strategy::one_for_one, {w});
  std::vector<pa::child_spec> good{worker("a", {"pause"}), supervisor_child("sub", inner)};
  BOOST_TEST(!pa::check_childspecs(good), render(pa::check_childspecs(good)));
  BOOST_TEST(!pa::check_supervisor_spec(sup_spec("top", restart_strategy::one_for_all, good)));

  auto expect_bad = [&](const caf::error& err, const std::string& field) {
    BOOST_TEST(is_error(err, pa::error::invalid_spec), render(err));
    BOOST_TEST(rendered_context(system, err).find(field) != std::string::npos,
               "'" << render(err) << "' does not name " << field);
  };
  auto dup = good;
  dup.push_back(worker("a", {"pause"}));
  expect_bad(pa::check_childspecs(dup), "children[2].id");
  auto bad_shutdown = good;
  bad_shutdown[0].shutdown_ms = -7;
  expect_bad(pa::check_childspecs(bad_shutdown), "children[0] ('a').shutdown_ms");
  auto nested = good;
  nested[1].supervisor.front().children.front().process.argv.clear();
  expect_bad(pa::check_childspecs(nested), "children[1] ('sub').supervisor[0].children[0] ('w').process.argv");
  auto both = good;
  both[0].process.target = "t";
  expect_bad(pa::check_childspecs(both), "children[0] ('a').process.argv");
  auto bad_signal = good;
  bad_signal[0].process.stop_signal = 0;
  expect_bad(pa::check_childspecs(bad_signal), "children[0] ('a').process.stop_signal");
  auto significant = good;
  significant[0].significant = true;
  expect_bad(pa::check_childspecs(significant), "children[0] ('a').significant");
  auto no_id = good;
  no_id[0].id.clear();
  expect_bad(pa::check_childspecs(no_id), "children[0].id");

  auto flags = sup_spec("top", restart_strategy::one_for_one, good);
  flags.flags.period_ms = 0;
  expect_bad(pa::check_supervisor_spec(flags), "flags.period_ms");
  flags = sup_spec("top", restart_strategy::one_for_one, good);
  flags.flags.intensity = -1;
  expect_bad(pa::check_supervisor_spec(flags), "flags.intensity");
  flags.flags.intensity = 1;
  flags.flags.backoff.initial_ms = 100;
  flags.flags.backoff.max_ms = 10;
  expect_bad(pa::check_supervisor_spec(flags), "flags.backoff.max_ms");
  auto s141 = sup_spec("dyn", restart_strategy::simple_one_for_one, good);
  expect_bad(pa::check_supervisor_spec(s141), "children");
  auto named = sup_spec("top", restart_strategy::one_for_one, good);
  named.flags.registered_name = "much-too-long-a-name";
  expect_bad(pa::check_supervisor_spec(named), "registered_name");
  // Nothing was started by any check.
  BOOST_TEST(pids_with_marker(marker_prefix(), true).empty());
}

// OTP refuses duplicate child ids at init ({duplicate_child_name, Id}); pkit used to start
// the first and lose track of the second.
BOOST_AUTO_TEST_CASE(duplicate_child_ids_make_the_supervisor_exit_with_invalid_spec_starting_nothing) {
  auto a1 = worker("a", {"pause"});
  auto a2 = worker("a", {"pause"});
  auto s = spawn_sup(sup_spec("dups", restart_strategy::one_for_one, {a1, a2}));
  auto reason = await_down(s);
  BOOST_TEST_REQUIRE(reason.has_value(), "the supervisor did not exit");
  BOOST_TEST(is_error(*reason, pa::error::invalid_spec), render(*reason));
  BOOST_TEST(pids_with_marker(marker_prefix(), true).empty());
}

// =====================================================================================
// get_childspec
// =====================================================================================

BOOST_AUTO_TEST_CASE(get_childspec_returns_a_childs_spec_or_unknown_child) {
  auto a = worker("a", {"pause"});
  a.restart = restart_type::transient;
  a.shutdown_ms = 1234;
  auto s = start_sup(sup_spec("spec", restart_strategy::one_for_one, {a}));
  auto r = ask<pa::child_spec>(s, pa::get_childspec_atom_v, std::string("a"));
  BOOST_TEST_REQUIRE(r.ok(), r.describe());
  BOOST_TEST(r.value->id == "a");
  BOOST_TEST(r.value->process.argv == a.process.argv);
  BOOST_TEST(r.value->restart == restart_type::transient);
  BOOST_TEST(r.value->shutdown_ms == 1234);
  auto none = ask<pa::child_spec>(s, pa::get_childspec_atom_v, std::string("nobody"));
  BOOST_TEST(none.is(pa::error::unknown_child), none.describe());

  // A simple_one_for_one instance: the template with its args appended.
  auto d = start_sup(sup_spec("dyn", restart_strategy::simple_one_for_one, {worker("t", {"pause"})}));
  auto inst = ask<pa::child_info>(d, pa::start_child_atom_v, std::vector<std::string>{"extra"});
  BOOST_TEST_REQUIRE(inst.ok(), inst.describe());
  auto spec = ask<pa::child_spec>(d, pa::get_childspec_atom_v, inst.value->id);
  BOOST_TEST_REQUIRE(spec.ok(), spec.describe());
  BOOST_TEST(spec.value->process.argv.back() == "extra");
}

// =====================================================================================
// start_supervisor (OTP's start_link)
// =====================================================================================

BOOST_AUTO_TEST_CASE(start_supervisor_returns_once_every_child_is_ready) {
  auto spec = sup_spec("sync", restart_strategy::one_for_one, {notify_worker("a", 200), notify_worker("b", 100)});
  auto r = pa::start_supervisor(system, spec, 10s, nullptr, {{caf::actor_cast<caf::actor>(events_actor)}});
  BOOST_TEST_REQUIRE(static_cast<bool>(r), (r ? std::string() : render(r.error())));
  supervisors.push_back(*r);
  watcher->monitor(*r);
  // No waiting for events: the children are up when the call returns.
  for (const auto& c : which(*r)) {
    BOOST_TEST((c.state == child_state::running), c.id);
    BOOST_TEST(c.pid > 0);
    BOOST_TEST(is_running(c.pid));
  }
  BOOST_TEST(which(*r).size() == 2u);
}

BOOST_AUTO_TEST_CASE(start_supervisor_returns_the_init_failure) {
  temp_dir dir;
  auto ok = worker("ok", {"pause"});
  auto missing = worker("missing", {"pause"}, dir.file("no-such-program"));
  auto r = pa::start_supervisor(system, sup_spec("fails", restart_strategy::one_for_one, {ok, missing}), 10s);
  BOOST_TEST_REQUIRE(!r);
  BOOST_TEST(is_error(r.error(), pa::error::start_failed), render(r.error()));
  BOOST_TEST(render(r.error()).find("missing") != std::string::npos, render(r.error()));
  BOOST_TEST(eventually([&] { return pids_with_marker(marker_of(ok)).empty(); }), "the started child was left");

  auto invalid = pa::start_supervisor(system, sup_spec("invalid", restart_strategy::one_for_one, {worker("", {"pause"})}), 10s);
  BOOST_TEST_REQUIRE(!invalid);
  BOOST_TEST(is_error(invalid.error(), pa::error::invalid_spec), render(invalid.error()));
}

BOOST_AUTO_TEST_CASE(start_supervisor_kills_a_supervisor_whose_start_outlasts_the_timeout) {
  auto slow = notify_worker("slow", 60000);  // never ready within the test
  slow.process.ready_timeout_ms = 120000;
  const auto t0 = clock_type::now();
  auto r = pa::start_supervisor(system, sup_spec("slow", restart_strategy::one_for_one, {slow}), 300ms);
  BOOST_TEST_REQUIRE(!r);
  BOOST_TEST((r.error() == caf::sec::request_timeout), render(r.error()));
  BOOST_TEST(since(t0) < 5s);
  BOOST_TEST(eventually([&] { return pids_with_marker(marker_of(slow)).empty(); }), "its child outlived it");
}

// =====================================================================================
// Registered names
// =====================================================================================

BOOST_AUTO_TEST_CASE(a_registered_supervisor_is_found_by_name_until_it_ends_and_a_taken_name_is_refused) {
  auto spec = sup_spec("named", restart_strategy::one_for_one, {worker("a", {"pause"})});
  spec.flags.registered_name = "tree1";
  BOOST_TEST(!pa::whereis_supervisor(system, "tree1"));
  auto s = start_sup(spec);
  auto found = pa::whereis_supervisor(system, "tree1");
  BOOST_TEST_REQUIRE(static_cast<bool>(found));
  BOOST_TEST((found.address() == s.address()));
  BOOST_TEST(ask<pa::child_counts>(found, pa::count_children_atom_v).value->specs == 1u);

  // The name is taken: a second supervisor with it exits with already_present, starting nothing.
  auto twin_spec = sup_spec("twin", restart_strategy::one_for_one, {worker("b", {"pause"})});
  twin_spec.flags.registered_name = "tree1";
  auto twin = spawn_sup(twin_spec);
  auto reason = await_down(twin);
  BOOST_TEST_REQUIRE(reason.has_value());
  BOOST_TEST(is_error(*reason, pa::error::already_present), render(*reason));
  BOOST_TEST(pids_with_marker(marker_of(twin_spec.children.front())).empty());
  BOOST_TEST((pa::whereis_supervisor(system, "tree1").address() == s.address()));

  // Once it ends, the name is free.
  found = nullptr;
  BOOST_TEST_REQUIRE(ask<caf::ok_atom>(s, pa::stop_atom_v).ok());
  BOOST_TEST_REQUIRE(await_down(s).has_value());
  BOOST_TEST(eventually([&] { return !pa::whereis_supervisor(system, "tree1"); }));
}

// =====================================================================================
// Reports on stderr
// =====================================================================================

BOOST_AUTO_TEST_CASE(a_supervisor_that_gives_up_says_why_on_stderr_without_any_subscriber) {
  temp_dir dir;
  auto crash = worker("crasher", {"pause"});
  auto all = sup_spec("reporting", restart_strategy::one_for_one, {crash}, 0);
  all.flags.report = pa::supervisor_report::all;
  auto quiet = sup_spec("quiet", restart_strategy::one_for_one, {worker("q", {"pause"})}, 0);
  quiet.flags.report = pa::supervisor_report::none;
  std::string text;
  {
    stderr_capture capture(dir.file("stderr"));
    for (auto* spec : {&all, &quiet}) {
      auto s = start_sup(*spec);
      const pid_t pid = which(s).front().pid;
      ::kill(pid, SIGKILL);
      auto reason = await_down(s);
      BOOST_TEST_REQUIRE(reason.has_value());
      BOOST_TEST(is_error(*reason, pa::error::restart_limit), render(*reason));
    }
    text = capture.text();
  }
  BOOST_TEST_MESSAGE("stderr: " << text);
  BOOST_TEST(text.find("pkit supervisor 'reporting': reached_max_restart_intensity") != std::string::npos, text);
  BOOST_TEST(text.find("last: child 'crasher'") != std::string::npos, text);
  BOOST_TEST(text.find("pkit supervisor 'reporting': child_terminated: child 'crasher'") != std::string::npos, text);
  BOOST_TEST(text.find("'quiet'") == std::string::npos, "report none still wrote: " << text);
}

BOOST_AUTO_TEST_CASE(by_default_only_giving_up_is_reported) {
  temp_dir dir;
  auto s_spec = sup_spec("default-report", restart_strategy::one_for_one, {worker("c", {"pause"})}, 0);
  BOOST_TEST((s_spec.flags.report == pa::supervisor_report::give_up));
  std::string text;
  {
    stderr_capture capture(dir.file("stderr"));
    auto s = start_sup(s_spec);
    ::kill(which(s).front().pid, SIGKILL);
    BOOST_TEST_REQUIRE(await_down(s).has_value());
    text = capture.text();
  }
  BOOST_TEST(text.find("'default-report': reached_max_restart_intensity") != std::string::npos, text);
  BOOST_TEST(text.find("child_terminated") == std::string::npos, text);
}

// =====================================================================================
// start_child before a sibling (beyond OTP, for tools that replace a child in place)
// =====================================================================================

// A child started "before" a sibling takes that place in the start order: which_children,
// rest_for_one (the siblings after it restart with it) and the reverse-order stop all
// see it there. start_child alone appends — a reload that replaced a program moved it to
// the end of its group (review D10).
BOOST_AUTO_TEST_CASE(start_child_before_a_sibling_takes_its_place_in_the_start_order) {
  auto s = start_sup(sup_spec("placed", restart_strategy::rest_for_one, {worker("a", {"pause"}), worker("c", {"pause"})}, 5));
  auto r = ask<pa::child_info>(s, pa::start_child_atom_v, worker("b", {"pause"}), std::string{"c"});
  BOOST_TEST_REQUIRE(r.ok(), r.describe());
  BOOST_TEST((ids_of(which(s)) == std::vector<std::string>{"a", "b", "c"}));

  // rest_for_one: b's crash restarts b and c, not a.
  const pid_t a = child(s, "a").pid, c = child(s, "c").pid;
  drain();  // the events so far (b's start) are not part of the restart
  const std::size_t from = history.size();
  ::kill(r.value->pid, SIGKILL);
  require([c](const pa::supervisor_event& e) { return e.kind == event_kind::ready && e.child == "c" && e.pid != c; },
          "c restarted after b");
  BOOST_TEST(child(s, "a").pid == a);
  BOOST_TEST(child(s, "c").pid != c);
  BOOST_TEST(trace(events_since(from), {event_kind::started}) == (std::vector<std::string>{"started:b", "started:c"}),
             history_text(from));

  // Unknown sibling: an error, and nothing added.
  auto bad = ask<pa::child_info>(s, pa::start_child_atom_v, worker("x", {"pause"}), std::string{"nosuch"});
  BOOST_TEST(bad.is(pa::error::unknown_child), bad.describe());
  BOOST_TEST(bad.rendered.find("nosuch") != std::string::npos, bad.rendered);
  BOOST_TEST((ids_of(which(s)) == std::vector<std::string>{"a", "b", "c"}));

  // The stop goes in reverse start order: c, b, a.
  drain();
  const std::size_t stop_from = history.size();
  BOOST_TEST_REQUIRE(ask<caf::ok_atom>(s, pa::stop_atom_v).ok());
  drain();  // sent before the reply
  BOOST_TEST(trace(events_since(stop_from), {event_kind::stopped}) ==
                 (std::vector<std::string>{"stopped:c", "stopped:b", "stopped:a"}),
             history_text(stop_from));
}

BOOST_AUTO_TEST_CASE(start_child_before_is_refused_by_simple_one_for_one) {
  auto s = start_sup(sup_spec("dyn", restart_strategy::simple_one_for_one, {worker("t", {"pause"})}));
  auto r = ask<pa::child_info>(s, pa::start_child_atom_v, worker("x", {"pause"}), std::string{});
  BOOST_TEST(r.is(pa::error::wrong_strategy), r.describe());
}

BOOST_AUTO_TEST_SUITE_END()
