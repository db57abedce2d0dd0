#pragma once

// The fork server of a fault test program. It must be forked before any thread exists, so
// a global fixture starts it, before the first test case runs:
//
//   pkit::fork_server start_server() { ...registry...; return pkit::fork_server::start(...); }
//   using server_fixture = faults::fork_server_fixture<start_server>;
//   BOOST_TEST_GLOBAL_FIXTURE(server_fixture);
//
// and test cases reach it through faults::server(). Its shutdown is bounded by a watchdog:
// a shutdown that hangs fails the program.

#include "fault_support.hpp"

#include <pkit/fork_server.hpp>

#include <boost/test/unit_test.hpp>

#include <optional>

namespace faults {

inline pkit::fork_server*& current_server() {
  static pkit::fork_server* server = nullptr;
  return server;
}

template <pkit::fork_server (*Start)()>
struct fork_server_fixture {
  fork_server_fixture() {
    server.emplace(Start());
    current_server() = &*server;
  }
  ~fork_server_fixture() {
    current_server() = nullptr;
    watchdog dog{"fork server shutdown", 30s};
    server.reset();
  }
  fork_server_fixture(const fork_server_fixture&) = delete;
  fork_server_fixture& operator=(const fork_server_fixture&) = delete;

  std::optional<pkit::fork_server> server;
};

inline pkit::fork_server& server() {
  BOOST_TEST_REQUIRE(current_server() != nullptr);
  BOOST_TEST_REQUIRE(current_server()->running(), "the fork server is not running");
  return *current_server();
}

}  // namespace faults
