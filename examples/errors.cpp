// Errors (beyond process-kit): misuse is a clear, typed error -- never a crash, never UB.
//
// Every operation that can fail has a throwing form (std::system_error, or its subclass
// pkit::spawn_error for start()) and a form taking a std::error_code&. Misuse and
// library-level failures are pkit::errc codes (category "pkit"); OS failures carry the
// errno in std::system_category(), comparable with std::errc. (Start failures of programs,
// with the stage that failed, are shown in program.cpp.)

#include "check.hpp"

#include <cstdio>

// [snippet]
#include <pkit/errc.hpp>
#include <pkit/process.hpp>

#include <chrono>
#include <system_error>
#include <thread>

using namespace std::chrono_literals;

void misuse_is_an_error() {
  pkit::process process{[] { std::this_thread::sleep_for(10s); }};

  std::error_code ec;
  process.terminate(ec);  // never started
  check(ec == pkit::errc::not_started, "terminate() before start(): " + ec.message());

  bool threw = false;
  try {
    process.join();  // never started
  } catch (const std::system_error& e) {
    threw = e.code() == pkit::errc::not_started;
  }
  check(threw, "join() before start() throws errc::not_started");

  process.start();
  process.start(ec);  // still running
  check(ec == pkit::errc::already_running, "start() while running: " + ec.message());
  process.terminate(pkit::wait);
}
// [/snippet]

int main() {
  return run_example("errors", [] { misuse_is_an_error(); });
}
