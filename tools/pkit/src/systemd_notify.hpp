#pragma once

// `pkit run`'s messages to systemd (sd_notify), with libsystemd loaded only under systemd.
//
// libsystemd and what it pulls in (gcrypt, gpg-error, zstd, lzma, lz4, libcap: ~1 MB of
// resident memory) are useless outside a unit, where sd_notify does nothing. So the
// executable does not link it: the first call opens libsystemd.so.0 with dlopen (as
// systemd's own documentation recommends for optional dependencies) only when
// NOTIFY_SOCKET or WATCHDOG_USEC is set, i.e. when systemd asked to be told.

#include <chrono>
#include <string>

namespace pkit::tool::detail {

/// sd_notify(0, state); a no-op outside systemd. When systemd asked for messages but
/// libsystemd.so.0 cannot be opened, says so once on stderr (and then does nothing).
/// Thread-safe.
void notify(const std::string& state);

/// sd_watchdog_enabled(0, ...): the period systemd asked for (WatchdogSec=), or zero
/// outside systemd or without a watchdog. Thread-safe.
std::chrono::microseconds systemd_watchdog();

}  // namespace pkit::tool::detail
