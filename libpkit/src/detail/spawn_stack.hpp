#pragma once

// The stack a CLONE_VM program-spawn child runs on.

#include <cstddef>

namespace pkit::detail {

/// A stack for one spawn, held for the duration of the clone (CLONE_VFORK: the child has
/// exec'd or died when the clone returns, so the stack is free again then).
///
/// Normally the calling thread's own stack, mapped on the thread's first spawn and kept
/// for its next ones: a fresh mapping per spawn cost an munmap each time, and with other
/// threads of the process running on other CPUs every munmap is a TLB shoot-down (an
/// interrupt to each, a VM exit apiece on virtual machines), plus page faults for the new
/// pages. The thread's stack is unmapped by a thread_local destructor; a spawn made after
/// that (from a later thread_local destructor, or from a static destructor once the main
/// thread's thread_locals are gone) gets a mapping of its own, released by this object's
/// destructor — never the unmapped one.
///
/// Every stack has a PROT_NONE guard page below it: an overflow faults instead of writing
/// over whatever is mapped next.
///
/// Not copyable or movable; used by the thread that made it.
class spawn_stack {
public:
  /// The usable size, above the guard page.
  static constexpr std::size_t size = 64 * 1024;

  /// Acquires a stack; `ok()` is false (errno set by mmap/mprotect) if none could be
  /// mapped.
  spawn_stack() noexcept;
  ~spawn_stack();
  spawn_stack(const spawn_stack&) = delete;
  spawn_stack& operator=(const spawn_stack&) = delete;

  bool ok() const noexcept { return base_ != nullptr; }
  /// The lowest usable address (the guard page is just below).
  void* base() const noexcept { return base_; }
  /// The initial stack pointer for the child: the end of the usable area.
  void* top() const noexcept { return static_cast<char*>(base_) + size; }
  /// False for the calling thread's kept stack, true for a one-spawn mapping.
  bool owned() const noexcept { return owned_; }

private:
  void* base_ = nullptr;
  bool owned_ = false;
};

}  // namespace pkit::detail
