// The stack a program-spawn child runs on (libpkit's internal detail::spawn_stack): a
// guard page below it, one kept stack per thread, unmapped when the thread's
// thread_locals are destroyed, and a stack of its own for a spawn made after that.
//
// Whether an address is mapped (and accessible) is asked of the kernel with write(2) from
// it: EFAULT when it is not, without faulting this program.

#define BOOST_TEST_MODULE libpkit spawn stack
#include <boost/test/unit_test.hpp>

#include "detail/spawn_stack.hpp"

#include <fcntl.h>
#include <thread>
#include <unistd.h>

using pkit::detail::spawn_stack;

namespace {

// True if the byte at `p` can be read by the kernel on our behalf (write(2) fails with
// EFAULT otherwise). No Boost.Test macro: also called on other threads.
// A pipe, not /dev/null: its write copies the byte (and /dev/null's reads nothing).
bool readable(const void* p) {
  static int fds[2] = {-1, -1};
  if (fds[0] < 0 && ::pipe2(fds, O_CLOEXEC) != 0) return false;
  if (::write(fds[1], p, 1) != 1) return false;
  char c;
  return ::read(fds[0], &c, 1) == 1;
}

const char* below(const spawn_stack& s) { return static_cast<const char*>(s.base()) - 1; }
const char* last(const spawn_stack& s) { return static_cast<const char*>(s.top()) - 1; }

// What a spawn_stack made in a thread_local destructor looked like.
struct late_stack_report {
  bool made = false;
  bool ok = false;
  bool owned = false;
  bool usable = false;       // its lowest and highest bytes readable
  bool guarded = false;      // the byte below it not
  bool released = false;     // unmapped once the spawn_stack was destroyed
  bool kept_released = false;  // the thread's kept stack was unmapped before
  const void* kept = nullptr;  // the thread's kept stack (base)
};

// Makes a spawn_stack in its destructor, after the thread's kept stack was released
// (constructed before the thread's first spawn_stack, so destroyed after its release).
struct stack_in_destructor {
  late_stack_report* report;
  ~stack_in_destructor() {
    report->kept_released = !readable(report->kept);
    const void* base = nullptr;
    {
      const spawn_stack s;
      report->made = true;
      report->ok = s.ok();
      report->owned = s.owned();
      if (s.ok()) {
        report->usable = readable(s.base()) && readable(last(s));
        report->guarded = !readable(below(s));
        base = s.base();
      }
    }
    if (base != nullptr) report->released = !readable(base);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_stack_is_mapped_readable_and_writable_with_a_guard_page_below) {
  const spawn_stack s;
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(static_cast<const char*>(s.top()) - static_cast<const char*>(s.base()) ==
             static_cast<std::ptrdiff_t>(spawn_stack::size));
  BOOST_TEST(readable(s.base()));
  BOOST_TEST(readable(last(s)));
  BOOST_TEST(!readable(below(s)));
  // Writable: the child pushes onto it.
  static_cast<volatile char*>(s.base())[0] = 1;
  static_cast<volatile char*>(s.top())[-1] = 1;
}

BOOST_AUTO_TEST_CASE(a_thread_keeps_its_stack_for_its_next_spawns) {
  const void* first = nullptr;
  {
    const spawn_stack s;
    BOOST_REQUIRE(s.ok());
    BOOST_TEST(!s.owned());
    first = s.base();
  }
  BOOST_TEST(readable(first));  // not unmapped after the spawn
  const spawn_stack again;
  BOOST_TEST(again.base() == first);
  BOOST_TEST(!again.owned());
}

BOOST_AUTO_TEST_CASE(threads_have_stacks_of_their_own_unmapped_when_they_end) {
  const spawn_stack mine;
  BOOST_REQUIRE(mine.ok());
  const void* theirs = nullptr;
  std::thread t{[&] {
    const spawn_stack s;
    if (s.ok()) theirs = s.base();
  }};
  t.join();
  BOOST_REQUIRE(theirs != nullptr);
  BOOST_TEST(theirs != mine.base());
  BOOST_TEST(!readable(theirs));
}

BOOST_AUTO_TEST_CASE(a_spawn_after_the_threads_stack_was_released_gets_a_stack_of_its_own) {
  late_stack_report report;
  std::thread t{[&] {
    thread_local stack_in_destructor late{&report};
    (void)late;
    const spawn_stack s;  // the thread's kept stack, created after `late`
    if (s.ok()) report.kept = s.base();
  }};
  t.join();
  BOOST_REQUIRE(report.kept != nullptr);
  BOOST_TEST(report.made);
  BOOST_TEST(report.kept_released);
  BOOST_TEST(report.ok);
  BOOST_TEST(report.owned);
  BOOST_TEST(report.usable);
  BOOST_TEST(report.guarded);
  BOOST_TEST(report.released);
}
