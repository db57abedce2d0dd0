// pkit::exit_status and pkit::signal_name: decoding wait statuses and siginfo, the
// text form, and Python's exitcode convention.

#define BOOST_TEST_MODULE libpkit value types
#include "test_support.hpp"

#include <pkit/exit_status.hpp>

#include <csignal>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

using pkit::exit_status;

namespace {
/// Forks a child running `body` (which must end the process) and returns its raw
/// wait status. Uses no pkit code, so the statuses are the kernel's own.
template <class F>
int real_wait_status(F body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(99);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_default_exit_status_means_exited_with_0) {
  constexpr exit_status s;
  BOOST_TEST(s.is_exited());
  BOOST_TEST(!s.is_killed());
  BOOST_TEST(s.code() == 0);
  BOOST_TEST(s.signal() == 0);
  BOOST_TEST(s.success());
  BOOST_TEST(s == exit_status::exited(0));
}

BOOST_AUTO_TEST_CASE(exited_carries_the_code_and_no_signal) {
  constexpr auto s = exit_status::exited(3);
  static_assert(s.is_exited() && s.code() == 3 && s.exit_code() == 3);
  BOOST_TEST(s.is_exited());
  BOOST_TEST(!s.is_killed());
  BOOST_TEST(s.code() == 3);
  BOOST_TEST(s.signal() == 0);
  BOOST_TEST(!s.core_dumped());
  BOOST_TEST(!s.success());
  BOOST_TEST(s.exit_code() == 3);
}

BOOST_AUTO_TEST_CASE(killed_carries_the_signal_and_exit_code_is_its_negation) {
  constexpr auto s = exit_status::killed(SIGKILL);
  static_assert(s.exit_code() == -SIGKILL);
  BOOST_TEST(s.is_killed());
  BOOST_TEST(!s.is_exited());
  BOOST_TEST(s.signal() == SIGKILL);
  BOOST_TEST(s.code() == -1);
  BOOST_TEST(!s.core_dumped());
  BOOST_TEST(!s.success());
  BOOST_TEST(s.exit_code() == -9);
  BOOST_TEST(exit_status::killed(SIGSEGV, true).core_dumped());
}

BOOST_AUTO_TEST_CASE(statuses_compare_by_kind_value_and_core) {
  BOOST_TEST(exit_status::exited(9) != exit_status::killed(9));
  BOOST_TEST(exit_status::killed(11) != exit_status::killed(11, true));
  BOOST_TEST(exit_status::exited(1) != exit_status::exited(2));
  BOOST_TEST(exit_status::killed(15) == exit_status::killed(15));
}

BOOST_AUTO_TEST_CASE(a_stop_escalation_is_an_annotation_that_equality_ignores) {
  BOOST_TEST(!exit_status::killed(SIGKILL).stop_escalated());
  const exit_status forced = exit_status::killed(SIGKILL).with_stop_escalated();
  BOOST_TEST(forced.stop_escalated());
  BOOST_TEST(forced.signal() == SIGKILL);
  BOOST_TEST(forced == exit_status::killed(SIGKILL), "how the process ended is the same");
  BOOST_TEST(!forced.with_stop_escalated(false).stop_escalated());
  BOOST_TEST(forced.to_string() == exit_status::killed(SIGKILL).to_string());
}

BOOST_AUTO_TEST_CASE(from_wait_status_decodes_an_exit_code) {
  BOOST_TEST(exit_status::from_wait_status(W_EXITCODE(3, 0)) == exit_status::exited(3));
  BOOST_TEST(exit_status::from_wait_status(W_EXITCODE(0, 0)) == exit_status::exited(0));
  BOOST_TEST(exit_status::from_wait_status(W_EXITCODE(255, 0)) == exit_status::exited(255));
}

BOOST_AUTO_TEST_CASE(from_wait_status_decodes_a_signal_death_with_and_without_core) {
  BOOST_TEST(exit_status::from_wait_status(W_EXITCODE(0, SIGKILL)) == exit_status::killed(SIGKILL));
  BOOST_TEST(exit_status::from_wait_status(W_EXITCODE(0, SIGSEGV) | WCOREFLAG) ==
             exit_status::killed(SIGSEGV, true));
}

BOOST_AUTO_TEST_CASE(from_wait_status_decodes_real_statuses_from_the_kernel) {
  BOOST_TEST(exit_status::from_wait_status(real_wait_status([] { ::_exit(42); })) ==
             exit_status::exited(42));
  BOOST_TEST(exit_status::from_wait_status(real_wait_status([] {
               ::signal(SIGKILL, SIG_DFL);
               ::raise(SIGKILL);
             })) == exit_status::killed(SIGKILL));
  BOOST_TEST(exit_status::from_wait_status(real_wait_status([] {
               ::signal(SIGTERM, SIG_DFL);
               ::raise(SIGTERM);
             })).exit_code() == -SIGTERM);
}

BOOST_AUTO_TEST_CASE(from_siginfo_decodes_exited_killed_and_dumped) {
  BOOST_TEST(exit_status::from_siginfo(CLD_EXITED, 7) == exit_status::exited(7));
  BOOST_TEST(exit_status::from_siginfo(CLD_KILLED, SIGTERM) == exit_status::killed(SIGTERM));
  BOOST_TEST(exit_status::from_siginfo(CLD_DUMPED, SIGABRT) == exit_status::killed(SIGABRT, true));
}

BOOST_AUTO_TEST_CASE(from_siginfo_decodes_real_siginfo_from_waitid) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGUSR1, SIG_DFL);
    ::raise(SIGUSR1);
    ::_exit(99);
  }
  siginfo_t si{};
  BOOST_TEST_REQUIRE(::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED) == 0);
  BOOST_TEST(exit_status::from_siginfo(si.si_code, si.si_status) == exit_status::killed(SIGUSR1));

  const pid_t pid2 = ::fork();
  if (pid2 == 0) ::_exit(13);
  siginfo_t si2{};
  BOOST_TEST_REQUIRE(::waitid(P_PID, static_cast<id_t>(pid2), &si2, WEXITED) == 0);
  BOOST_TEST(exit_status::from_siginfo(si2.si_code, si2.si_status) == exit_status::exited(13));
}

BOOST_AUTO_TEST_CASE(to_string_describes_exited_killed_and_core_dumped) {
  BOOST_TEST(exit_status::exited(3).to_string() == "exited with code 3");
  BOOST_TEST(exit_status::exited(0).to_string() == "exited with code 0");
  BOOST_TEST(exit_status::killed(SIGKILL).to_string() == "killed by signal 9 (SIGKILL)");
  BOOST_TEST(exit_status::killed(SIGTERM).to_string() == "killed by signal 15 (SIGTERM)");
  BOOST_TEST(exit_status::killed(SIGSEGV, true).to_string() ==
             "killed by signal 11 (SIGSEGV) (core dumped)");
}

BOOST_AUTO_TEST_CASE(signal_name_gives_the_sig_name_or_sig_and_the_number) {
  BOOST_TEST(pkit::signal_name(SIGKILL) == "SIGKILL");
  BOOST_TEST(pkit::signal_name(SIGTERM) == "SIGTERM");
  BOOST_TEST(pkit::signal_name(SIGUSR1) == "SIGUSR1");
  BOOST_TEST(pkit::signal_name(200) == "SIG200");
  BOOST_TEST(pkit::signal_name(SIGRTMIN + 3).rfind("SIG", 0) == 0u);
}

// A status nobody could collect (the host reaped the child) was exited(255): a real exit
// code 255 and a lost status could not be told apart.
BOOST_AUTO_TEST_CASE(a_lost_status_is_neither_exited_nor_killed_and_differs_from_every_real_one) {
  const exit_status lost = exit_status::lost();
  BOOST_TEST(lost.is_lost());
  BOOST_TEST(!lost.is_exited());
  BOOST_TEST(!lost.is_killed());
  BOOST_TEST(!lost.success());
  BOOST_TEST(lost.code() == -1);
  BOOST_TEST(lost.signal() == 0);
  BOOST_TEST(lost.exit_code() == exit_status::lost_exit_code);
  BOOST_TEST(!(lost == exit_status::exited(255)));
  BOOST_TEST(!(lost == exit_status::exited(exit_status::lost_exit_code)));
  BOOST_TEST(!exit_status::exited(255).is_lost());
  BOOST_TEST(lost == exit_status::lost());
  BOOST_TEST(lost.to_string() == "exit status lost (collected by another waiter)");
}
