#pragma once

// The entry of a child that runs C++ code (fork start method and fork-server children).

namespace pkit::detail {

/// Called in the parent just before it forks: makes the dynamic linker bind the libc
/// functions the child calls, so each child does not bind them again on its own copy of
/// the parent's memory (a dozen copy-on-write faults per start).
void bind_child_calls() noexcept;

/// Discards the stdio buffers inherited from the parent (their contents belong to the
/// parent and would otherwise be written twice).
void forget_inherited_stdio() noexcept;

/// Runs `body(ctx)` and ends the process with its exit code: 0 on return, the code of an
/// `exit_request`, 1 after an uncaught exception (reported on stderr with `name` and
/// the pid). Flushes what the target itself wrote to stdout/stderr, then `_exit`s: the
/// child never returns into its caller, runs no atexit handler, and destroys no static.
[[noreturn]] void run_child_body(const char* name, int (*body)(void*), void* ctx) noexcept;

}  // namespace pkit::detail
