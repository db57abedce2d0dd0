#include "detail/trampoline.hpp"

#include "detail/child_setup.hpp"

#include <pkit/target.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <stdio_ext.h>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__GLIBCXX__)
#include <ext/stdio_sync_filebuf.h>
#endif

namespace pkit::detail {
namespace {

// The put area of any stream buffer, through pointers to basic_streambuf's protected
// members (naming them through a derived class is what makes them accessible).
template <class CharT>
struct put_area : std::basic_streambuf<CharT> {
  using buffer = std::basic_streambuf<CharT>;

  static bool pending(buffer& b) noexcept {
    CharT* (buffer::*begin)() const = &put_area::pbase;
    CharT* (buffer::*next)() const = &put_area::pptr;
    return (b.*next)() > (b.*begin)();
  }

  // Drops the pending characters, keeping the buffer.
  static void discard(buffer& b) noexcept {
    CharT* (buffer::*begin)() const = &put_area::pbase;
    CharT* (buffer::*end)() const = &put_area::epptr;
    void (buffer::*set)(CharT*, CharT*) = &put_area::setp;
    (b.*set)((b.*begin)(), (b.*end)());
  }
};

// A standard stream's own buffer holds text of the process that wrote it: with
// sync_with_stdio(false) (or a file buffer installed by the program), each standard
// stream buffers in a std::basic_filebuf. Only file buffers are touched: another kind of
// buffer (a string, the program's own) is not output waiting for a descriptor.
template <class CharT>
void forget_inherited(std::basic_ostream<CharT>& os) noexcept {
  auto* file = dynamic_cast<std::basic_filebuf<CharT>*>(os.rdbuf());
  if (file != nullptr && put_area<CharT>::pending(*file)) put_area<CharT>::discard(*file);
}

// What the target wrote through `os`, flushed as exit() would. Skipped when nothing is
// pending, to write no page of the child's copy of the parent for nothing: an empty file
// buffer, or libstdc++'s buffer of synchronised streams, which keeps nothing itself (its
// text is in C stdio, flushed after).
template <class CharT>
void flush_target_output(std::basic_ostream<CharT>& os) noexcept {
  std::basic_streambuf<CharT>* buf = os.rdbuf();
  if (buf == nullptr) return;
  if (auto* file = dynamic_cast<std::basic_filebuf<CharT>*>(buf)) {
    if (!put_area<CharT>::pending(*file)) return;
  }
#if defined(__GLIBCXX__)
  else if (dynamic_cast<__gnu_cxx::stdio_sync_filebuf<CharT>*>(buf) != nullptr) {
    return;
  }
#endif
  try {
    os.flush();
  } catch (...) {
    // exceptions() asked for it; the child is ending either way.
  }
}

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

namespace {

// The standard streams' buffers as the parent saw them just before it forked, and whether
// any of them buffers on its own (a file buffer: sync_with_stdio(false), or one the
// program installed). In the usual case — none does — the child leaves the iostreams
// alone: inspecting them (dynamic_cast, RTTI, libstdc++'s stream objects) touches pages
// the child has not touched yet, a minor fault each after fork — +15% on a callable's
// start+join. The child checks the buffers are still those (a pointer compare) before it
// relies on that.
struct stream_snapshot {
  std::atomic<bool> own_buffers{true};  // until a parent has looked
  std::atomic<void*> bufs[6] = {};
};
stream_snapshot snapshot;

template <class CharT>
bool buffers_on_its_own(std::basic_ostream<CharT>& os) noexcept {
  std::basic_streambuf<CharT>* buf = os.rdbuf();
  if (buf == nullptr) return false;
#if defined(__GLIBCXX__)
  if (dynamic_cast<__gnu_cxx::stdio_sync_filebuf<CharT>*>(buf) != nullptr) return false;
#endif
  return true;
}

std::array<void*, 6> current_buffers() noexcept {
  return {std::cout.rdbuf(), std::clog.rdbuf(), std::cerr.rdbuf(),
          std::wcout.rdbuf(), std::wclog.rdbuf(), std::wcerr.rdbuf()};
}

// In the child: may the iostreams be left alone?
bool streams_unbuffered_since_fork() noexcept {
  if (snapshot.own_buffers.load(std::memory_order_relaxed)) return false;
  const auto now = current_buffers();
  for (std::size_t i = 0; i < now.size(); ++i)
    if (now[i] != snapshot.bufs[i].load(std::memory_order_relaxed)) return false;
  return true;
}

}  // namespace

void bind_child_calls() noexcept {
  // Reads only; the result is irrelevant.
  (void)::__fpending(stdout);
  const auto bufs = current_buffers();
  bool own = buffers_on_its_own(std::cout) || buffers_on_its_own(std::clog) ||
             buffers_on_its_own(std::cerr) || buffers_on_its_own(std::wcout) ||
             buffers_on_its_own(std::wclog) || buffers_on_its_own(std::wcerr);
  for (std::size_t i = 0; i < bufs.size(); ++i) snapshot.bufs[i].store(bufs[i], std::memory_order_relaxed);
  snapshot.own_buffers.store(own, std::memory_order_relaxed);
}

void forget_inherited_stdio() noexcept {
  // Only when something is pending: purging writes to the FILE, and every page the child
  // writes is a copy-on-write fault on the way to running the target.
  if (::__fpending(stdout) != 0) ::__fpurge(stdout);
  if (::__fpending(stderr) != 0) ::__fpurge(stderr);
  if (streams_unbuffered_since_fork()) return;
  forget_inherited(std::cout);
  forget_inherited(std::clog);
  forget_inherited(std::cerr);
  forget_inherited(std::wcout);
  forget_inherited(std::wclog);
  forget_inherited(std::wcerr);
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
  // Only what the target wrote (see forget_inherited_stdio). The iostreams first: when
  // synchronised with stdio (the default), they write into C stdio.
  if (!streams_unbuffered_since_fork()) {
    flush_target_output(std::cout);
    flush_target_output(std::clog);
    flush_target_output(std::cerr);
    flush_target_output(std::wcout);
    flush_target_output(std::wclog);
    flush_target_output(std::wcerr);
  }
  if (::__fpending(stdout) != 0) std::fflush(stdout);
  if (::__fpending(stderr) != 0) std::fflush(stderr);
  exit_now(code);
}

}  // namespace pkit::detail
