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

void bind_child_calls() noexcept {
  // Reads only; the result is irrelevant.
  (void)::__fpending(stdout);
}

void forget_inherited_stdio() noexcept {
  // Only when something is pending: purging writes to the FILE, and every page the child
  // writes is a copy-on-write fault on the way to running the target.
  if (::__fpending(stdout) != 0) ::__fpurge(stdout);
  if (::__fpending(stderr) != 0) ::__fpurge(stderr);
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
  // Only what the target wrote (see forget_inherited_stdio).
  if (::__fpending(stdout) != 0) std::fflush(stdout);
  if (::__fpending(stderr) != 0) std::fflush(stderr);
  exit_now(code);
}

}  // namespace pkit::detail
