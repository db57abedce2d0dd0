#include "detail/spawn_stack.hpp"

#include <cerrno>
#include <sys/mman.h>
#include <unistd.h>

namespace pkit::detail {
namespace {

std::size_t page_size() noexcept {
  static const std::size_t page = [] {
    const long p = ::sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<std::size_t>(p) : std::size_t{4096};
  }();
  return page;
}

// One mapping: a PROT_NONE guard page, then `spawn_stack::size` bytes of stack (rounded
// up to whole pages). Returns the lowest usable address, or nullptr with errno set.
void* map_stack() noexcept {
  const std::size_t page = page_size();
  const std::size_t usable = (spawn_stack::size + page - 1) / page * page;
  void* p = ::mmap(nullptr, page + usable, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                   -1, 0);
  if (p == MAP_FAILED) return nullptr;
  char* base = static_cast<char*>(p) + page;
  if (::mprotect(base, usable, PROT_READ | PROT_WRITE) != 0) {
    const int err = errno;
    ::munmap(p, page + usable);
    errno = err;
    return nullptr;
  }
  return base;
}

void unmap_stack(void* base) noexcept {
  const std::size_t page = page_size();
  const std::size_t usable = (spawn_stack::size + page - 1) / page * page;
  ::munmap(static_cast<char*>(base) - page, page + usable);
}

// The thread's kept stack. Both variables are trivially destructible, so they stay
// readable while the thread's thread_local destructors run and after (until the thread's
// storage goes away, which is after every destructor; for the main thread, never): a
// spawn from any destructor can tell whether the stack is still there.
enum class kept_state : unsigned char { none, kept, released };
thread_local kept_state state = kept_state::none;
thread_local void* kept_base = nullptr;

// Unmaps the kept stack when the thread's thread_locals are destroyed. Constructed (and
// so its destructor registered) with the first kept stack of the thread.
struct kept_stack_release {
  kept_stack_release() = default;
  kept_stack_release(const kept_stack_release&) = delete;
  kept_stack_release& operator=(const kept_stack_release&) = delete;
  ~kept_stack_release() {
    if (kept_base != nullptr) unmap_stack(kept_base);
    kept_base = nullptr;
    state = kept_state::released;
  }
};

}  // namespace

spawn_stack::spawn_stack() noexcept {
  if (state == kept_state::kept) {
    base_ = kept_base;
    return;
  }
  base_ = map_stack();
  if (base_ == nullptr) return;
  if (state == kept_state::released) {
    // This thread's thread_locals are being (or have been) destroyed: a stack for this
    // spawn alone.
    owned_ = true;
    return;
  }
  // First spawn of the thread. Registering a thread_local destructor allocates and can
  // fail only by terminating; done once per thread.
  thread_local kept_stack_release release;
  (void)release;
  kept_base = base_;
  state = kept_state::kept;
}

spawn_stack::~spawn_stack() {
  if (owned_) unmap_stack(base_);
}

}  // namespace pkit::detail
