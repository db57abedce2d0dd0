#pragma once

// The entry of a child that runs C++ code (fork start method and fork-server children).

namespace pkit::detail {

struct child_setup;

/// Called in the parent just before it forks: makes the dynamic linker bind the libc
/// functions the child calls, so each child does not bind them again on its own copy of
/// the parent's memory (a dozen copy-on-write faults per start).
void bind_child_calls() noexcept;

/// Discards the output buffers inherited from the parent — C stdio's stdout and stderr, and
/// the file buffers of the standard iostreams (std::cout, std::clog, std::cerr and their
/// wide twins; they have buffers of their own after `std::ios::sync_with_stdio(false)`):
/// their contents belong to the parent and would otherwise be written twice.
void forget_inherited_stdio() noexcept;

/// The life of a freshly forked child that runs C++ code, called with every signal
/// blocked: discards the inherited stdio buffers, resets the signal dispositions, applies
/// `setup`, then reports the outcome on `status_fd` (the start-up record a start with
/// wait reads) — or, without one, a failure on stderr — and exits with 127 on failure.
/// Otherwise unblocks the signals and runs `run_child_body(name, body, ctx)`.
[[noreturn]] void run_forked_child(const child_setup& setup, int status_fd, const char* name,
                                   int (*body)(void*), void* ctx) noexcept;

/// Runs `body(ctx)` and ends the process with its exit code: what `body` returned, the
/// code of an `exit_request`, 1 after an uncaught exception (reported on stderr with
/// `name` and the pid). Flushes what the target itself wrote to the standard iostreams
/// and to C stdio's stdout/stderr, then `_exit`s: the child never returns into its
/// caller, runs no atexit handler, and destroys no static.
[[noreturn]] void run_child_body(const char* name, int (*body)(void*), void* ctx) noexcept;

}  // namespace pkit::detail
