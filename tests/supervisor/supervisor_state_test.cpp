// Part of supervisor_table_test: the supervisor's child registry (supervisor/state.hpp)
// keeps the previous run of a child it removed while that run's process still ends, so
// that a child added again under the same id waits for it (never two instances of one
// id). A real process, watched through its pidfd as the supervisor watches one.

#include <boost/test/unit_test.hpp>

#include "supervisor/state.hpp"

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace sv = pkit::actors::detail::supervisor;

namespace {

sv::child child_named(const std::string& id) {
  sv::child c;
  c.spec.id = id;
  return c;
}

}  // namespace

// Review 18b #1: a start_child that failed after its process was made drops the child
// while that process is still in its stop timeout; a start_child of the same id at once
// found no watch and started a second instance beside it.
BOOST_AUTO_TEST_CASE(a_child_added_again_waits_for_the_removed_ones_previous_run) {
  const pid_t pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
  sv::supervisor_state st;
  auto c = child_named("w");
  c.previous.watch(pid);
  st.add(std::move(c));
  st.remove("w");
  st.add(child_named("other"));
  BOOST_TEST(!st.find("other")->previous.lingers(), "another id took the watch");
  st.add(child_named("w"));
  BOOST_TEST(st.find("w")->previous.lingers(), "the child added again does not wait for the removed one's run");
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  BOOST_TEST(!st.find("w")->previous.lingers());
  BOOST_TEST(st.removed_runs.empty());
}

// A removed run that has ended is forgotten: the map does not grow with ids never added again.
BOOST_AUTO_TEST_CASE(removed_runs_that_ended_are_pruned) {
  const pid_t pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(0);
  sv::supervisor_state st;
  auto c = child_named("gone");
  c.previous.watch(pid);
  st.add(std::move(c));
  ::waitpid(pid, nullptr, 0);
  st.remove("gone");
  st.add(child_named("x"));
  st.remove("x");
  BOOST_TEST(st.removed_runs.empty());
}
