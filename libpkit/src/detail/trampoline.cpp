#include "detail/trampoline.hpp"

#include "detail/child_setup.hpp"

#include <pkit/target.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <stdio_ext.h>
#include <string>
#include <unistd.h>

namespace pkit::detail {
namespace {

void report(const char* name, const char* what) noexcept {
  // Built by hand into a fixed buffer: the heap may be unusable after a bad exception.
  char buf[1024];
  std::size_t n = 0;
  auto put = [&](const char* s) {
    while (*s != '\0' && n < sizeof buf - 1) buf[n++] = *s++;
  };
  char pid[24];
  std::snprintf(pid, sizeof pid, "%d", static_cast<int>(::getpid()));
  put("pkit: process '");
  put(name);
  put("' (pid ");
  put(pid);
  put("): uncaught exception: ");
  put(what);
  put("\n");
  write_all(2, buf, n);
}

}  // namespace

void forget_inherited_stdio() noexcept {
  ::__fpurge(stdout);
  ::__fpurge(stderr);
}

void run_child_body(const char* name, int (*body)(void*), void* ctx) noexcept {
  int code = 0;
  try {
    code = body(ctx);
  } catch (const exit_request& r) {
    code = r.code;
  } catch (const std::exception& e) {
    report(name, e.what());
    code = 1;
  } catch (...) {
    report(name, "unknown exception");
    code = 1;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);
}

}  // namespace pkit::detail
