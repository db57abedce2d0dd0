#include "systemd_notify.hpp"

#include <systemd/sd-daemon.h>  // the prototypes only: nothing is linked

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <dlfcn.h>

namespace pkit::tool::detail {

namespace {

struct systemd_api {
  decltype(&::sd_notify) notify = nullptr;
  decltype(&::sd_watchdog_enabled) watchdog_enabled = nullptr;
};

// Set and not empty (an empty NOTIFY_SOCKET names no socket: sd_notify would do nothing).
bool set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

bool under_systemd() { return set("NOTIFY_SOCKET") || set("WATCHDOG_USEC"); }

// Opened once, on first use (a function-local static: thread-safe), and never closed.
const systemd_api& api() {
  static const systemd_api loaded = [] {
    systemd_api a;
    if (!under_systemd()) return a;
    void* lib = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = ::dlerror();
      std::fprintf(stderr,
                   "pkit: NOTIFY_SOCKET or WATCHDOG_USEC is set (run by systemd) but libsystemd.so.0 cannot be "
                   "loaded (%s): systemd will not be told that the tree is ready, nor fed its watchdog\n",
                   why ? why : "unknown error");
      return a;
    }
    a.notify = reinterpret_cast<decltype(&::sd_notify)>(::dlsym(lib, "sd_notify"));
    a.watchdog_enabled = reinterpret_cast<decltype(&::sd_watchdog_enabled)>(::dlsym(lib, "sd_watchdog_enabled"));
    if (a.notify == nullptr || a.watchdog_enabled == nullptr)
      std::fprintf(stderr, "pkit: libsystemd.so.0 lacks sd_notify or sd_watchdog_enabled: systemd is not told\n");
    return a;
  }();
  return loaded;
}

}  // namespace

void notify(const std::string& state) {
  if (auto f = api().notify) f(0, state.c_str());
}

std::chrono::microseconds systemd_watchdog() {
  std::uint64_t usec = 0;
  if (auto f = api().watchdog_enabled; f != nullptr && f(0, &usec) > 0) return std::chrono::microseconds(usec);
  return std::chrono::microseconds(0);
}

}  // namespace pkit::tool::detail
