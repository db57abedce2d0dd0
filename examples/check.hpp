#pragma once

// Shared by the examples (not part of pkit).
//
// check(condition, what) is the examples' assertion. Unlike assert() it is never compiled
// out: it prints "ok: what", or "FAILED: what" and throws, so the example ends with exit
// code 1 (after its pkit::process objects have stopped and reaped their children).
//
// run_example(name, body) runs one example: it makes stdout line-buffered (so the output
// of parent and children interleaves line by line, even into a pipe), runs `body`, and
// returns the exit code for main: 0 when every check held, 1 otherwise.

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

struct check_failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void check(bool ok, const std::string& what) {
  std::printf("  %s %s\n", ok ? "ok:" : "FAILED:", what.c_str());
  if (!ok) throw check_failed(what);
}

template <class Body>
int run_example(const char* name, Body&& body) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("== example %s\n", name);
  try {
    body();
  } catch (const check_failed&) {
    std::printf("== example %s: FAIL\n", name);
    return 1;
  } catch (const std::exception& e) {
    std::printf("== example %s: FAIL (exception: %s)\n", name, e.what());
    return 1;
  }
  std::printf("== example %s: PASS\n", name);
  return 0;
}
