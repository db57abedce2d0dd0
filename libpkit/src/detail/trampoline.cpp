#include "detail/trampoline.hpp"

#include "detail/child_setup.hpp"

#include <pkit/target.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <stdio_ext.h>
#include <string>
#include <sys/syscall.h>
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

// Without a status pipe (start without wait) a failed set-up can only be told on stderr.
void report_setup_failure(const char* name, child_failure f) noexcept {
  const char* parts[] = {"pkit: cannot set up process '", name, "': ", stage_name(f.stage), ": ",
                         ::strerrorname_np(f.error) ? ::strerrorname_np(f.error) : "?", "\n"};
  for (const char* p : parts) write_all(2, p, std::strlen(p));
}

}  // namespace

void run_forked_child(const child_setup& setup, int status_fd, const char* name, int (*body)(void*),
                      void* ctx) noexcept {
  forget_inherited_stdio();
  reset_signal_dispositions();
  child_failure f = apply_child_setup(setup, status_fd);
  if (status_fd >= 0) {
    write_all(status_fd, &f, sizeof f);
    raw_syscall(SYS_close, status_fd);
  } else if (f.stage != child_stage::none) {
    report_setup_failure(name, f);
  }
  if (f.stage != child_stage::none) exit_now(127);
  set_signal_mask(nullptr);
  run_child_body(name, body, ctx);
}

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
