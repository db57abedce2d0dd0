#pragma once

// `pkit run`'s messages to systemd (sd_notify) and its watchdog period.
//
// Implemented here, as systemd's sd_notify(3) documents ("Standalone implementation of
// the notification protocol", which projects may copy instead of linking libsystemd):
// one datagram to the AF_UNIX socket that NOTIFY_SOCKET names. libsystemd and what it
// pulls in (gcrypt, gpg-error, zstd, lzma, lz4, libcap: ~1 MB resident) would otherwise
// be mapped into every `pkit run` under systemd — the usual way to run it — for these
// few lines; libpkit already serves the other end of the same protocol for programs
// (notify_socket.cpp). Not supported: NOTIFY_SOCKET=vsock:… (a VM's manager), and
// file descriptors passed to the store (FDSTORE=1), which pkit does not use.

#include <chrono>
#include <string>

namespace pkit::tool::detail {

/// sd_notify(0, state): `state` as one datagram to NOTIFY_SOCKET (a path, or @name for
/// the abstract namespace); a no-op when it is unset or empty. A socket that cannot be
/// reached (or a vsock address) is said once on stderr, then ignored: the tree runs on,
/// but systemd is not told. Thread-safe.
void notify(const std::string& state);

/// sd_watchdog_enabled(0, ...): the period systemd asked for (WatchdogSec=, as
/// WATCHDOG_USEC, for this process if WATCHDOG_PID names another), or zero. Thread-safe.
std::chrono::microseconds systemd_watchdog();

}  // namespace pkit::tool::detail
