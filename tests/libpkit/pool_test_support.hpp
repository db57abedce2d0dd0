#pragma once

// Shared by the pool suites: the "gate" that lets the tests decide when tasks end.
//
// Most tasks block reading one byte from fd 3, a gate pipe the test controls: each byte
// the test writes lets exactly one task finish, so the test decides when slots free up,
// without sleeping.

#include "test_support.hpp"

#include <pkit/process_pool.hpp>

#include <cerrno>
#include <string>
#include <unistd.h>

namespace pool_test {

using pkit_test::pipe_ends;

inline constexpr int gate_fd = 3;

/// Pool options that give every task the gate's read end as fd 3.
inline pkit::process_options gated(const pipe_ends& gate, pkit::process_options o = {}) {
  o.pass_fds.emplace_back(gate_fd, gate.read.get());
  return o;
}

/// A task that waits for one byte on the gate, then exits with `code`.
inline pkit::callable_target gated_task(int code) {
  return [code] {
    char c;
    while (::read(gate_fd, &c, 1) < 0 && errno == EINTR) {
    }
    return code;
  };
}

inline void open_gate(const pipe_ends& gate, int tasks) {
  BOOST_TEST_REQUIRE(
      pkit_test::write_all(gate.write.get(), std::string(static_cast<std::size_t>(tasks), 'x')));
}

/// Children of this test process that are alive (not zombies): the kernel's view of how
/// many tasks run.
inline std::size_t live_children() {
  std::size_t n = 0;
  for (pid_t pid : pkit_test::children_of_self()) n += pkit_test::is_zombie(pid) ? 0 : 1;
  return n;
}

}  // namespace pool_test
