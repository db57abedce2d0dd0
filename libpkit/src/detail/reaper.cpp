#include "detail/pidfd.hpp"
#include "detail/reaper.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <cstdio>
#include <new>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

namespace pkit::detail {
namespace {

// Storage for the one reaper. It is never destroyed: its thread runs until the program
// ends, and static `process` objects destroyed at exit still need it. A forked child that
// uses pkit constructs a new reaper over the copy it inherited (whose thread does not
// exist in the child) — the copy is abandoned, not destroyed, since its mutexes may have
// been held by other threads at fork time.
alignas(reaper) unsigned char storage[sizeof(reaper)];
std::atomic<reaper*> current{nullptr};
std::atomic<pid_t> current_owner{0};
std::mutex creation;

// SIGCHLD set to SIG_IGN (inherited from a careless launcher) or SA_NOCLDWAIT makes the
// kernel reap children on its own, and their statuses are lost. Undo that; a handler the
// host installed is kept.
void make_children_waitable() {
  struct sigaction sa {};
  if (::sigaction(SIGCHLD, nullptr, &sa) != 0) return;
  if (sa.sa_handler == SIG_IGN) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGCHLD, &dfl, nullptr);
  } else if ((sa.sa_flags & SA_NOCLDWAIT) != 0) {
    sa.sa_flags &= ~SA_NOCLDWAIT;
    ::sigaction(SIGCHLD, &sa, nullptr);
  }
}

// A handler's exception must not end the reaper thread (and with it the program).
template <class F>
void guarded(F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pkit reaper: a handler threw: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "pkit reaper: a handler threw an unknown exception\n");
  }
}

}  // namespace

reaper& reaper::instance() {
  const pid_t self = ::getpid();
  reaper* r = current.load(std::memory_order_acquire);
  if (r != nullptr && current_owner.load(std::memory_order_acquire) == self) return *r;
  std::lock_guard<std::mutex> lock(creation);
  r = current.load(std::memory_order_acquire);
  if (r == nullptr || current_owner.load(std::memory_order_acquire) != self) {
    r = ::new (static_cast<void*>(storage)) reaper();
    current_owner.store(self, std::memory_order_release);
    current.store(r, std::memory_order_release);
  }
  return *r;
}

bool reaper::called_on_reaper_thread() noexcept {
  const reaper* r = current.load(std::memory_order_acquire);
  return r != nullptr && current_owner.load(std::memory_order_acquire) == ::getpid() && r->on_reaper_thread();
}

reaper::reaper() : owner_(::getpid()), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!epoll_) throw std::system_error(errno, std::system_category(), "pkit reaper: epoll_create1");
  make_children_waitable();
  wakeup_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wakeup_) throw std::system_error(errno, std::system_category(), "pkit reaper: eventfd");
  // The reaper thread blocks every signal: it must never run the host's handlers, and
  // it is not a thread a process-directed signal should be delivered to.
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  std::thread t([this] { loop(); });
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  thread_id_ = t.get_id();
  t.detach();
  watch_fd(wakeup_.get(), [this] {
    std::uint64_t count;
    while (::read(wakeup_.get(), &count, sizeof count) > 0) {
    }
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks.swap(posted_);
    }
    for (auto& task : tasks) guarded(task);
    return true;
  });
}

void reaper::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    posted_.push_back(std::move(task));
  }
  std::uint64_t one = 1;
  while (::write(wakeup_.get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
}

std::uint64_t reaper::add(int fd, int kind, exit_handler on_exit,
                          std::function<void()> on_exited, fd_handler on_readable) {
  // An fd watch (kind 0) gets a descriptor of the reaper's own: it is taken out of epoll by
  // number after its handler, which may have closed the caller's number and reused it for
  // a new watch meanwhile. Child watches are taken out before their handler runs, and a
  // descriptor more per child would halve how many children fit under RLIMIT_NOFILE.
  unique_fd own{kind == 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1};
  if (kind == 0 && !own) throw std::system_error(errno, std::system_category(), "pkit reaper: dup");
  const int watched = kind == 0 ? own.get() : fd;
  std::lock_guard<std::mutex> lock(mutex_);
  std::uint64_t id = next_id_++;
  entries_.emplace(id, entry{std::move(own), watched, kind, std::move(on_exit), std::move(on_exited),
                             std::move(on_readable)});
  epoll_event ev{};
  ev.events = kind == 4 ? EPOLLOUT : EPOLLIN;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, watched, &ev) != 0) {
    int err = errno;
    entries_.erase(id);
    throw std::system_error(err, std::system_category(), "pkit reaper: epoll_ctl");
  }
  return id;
}

std::uint64_t reaper::watch_child(int pidfd, exit_handler handler) {
  return add(pidfd, 1, std::move(handler), {}, {});
}

std::uint64_t reaper::watch_exit(int pidfd, std::function<void()> on_exited) {
  return add(pidfd, 2, {}, std::move(on_exited), {});
}

std::uint64_t reaper::watch_fd(int fd, fd_handler handler) {
  return add(fd, 0, {}, {}, std::move(handler));
}

std::uint64_t reaper::watch_fd_once(int fd, std::function<void()> handler) {
  return add(fd, 3, {}, std::move(handler), {});
}

std::uint64_t reaper::watch_writable_once(int fd, std::function<void()> handler) {
  return add(fd, 4, {}, std::move(handler), {});
}

std::uint64_t reaper::schedule(clock::time_point when, std::function<void()> task) {
  bool earliest;
  std::uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    id = next_id_++;
    earliest = timers_.empty() || when < timers_.begin()->first;
    timers_.emplace(when, std::make_pair(id, std::move(task)));
  }
  // The loop sleeps until the earliest deadline it knew of: wake it to sleep less.
  if (earliest && !on_reaper_thread()) {
    std::uint64_t one = 1;
    while (::write(wakeup_.get(), &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
  return id;
}

bool reaper::cancel(std::uint64_t timer) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (it->second.first == timer) {
      timers_.erase(it);
      return true;
    }
  }
  return false;
}

void reaper::run_due_timers() {
  for (;;) {
    std::function<void()> task;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (timers_.empty() || timers_.begin()->first > clock::now()) return;
      task = std::move(timers_.begin()->second.second);
      timers_.erase(timers_.begin());
    }
    guarded(task);
  }
}

bool reaper::unwatch(std::uint64_t id) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!on_reaper_thread()) idle_.wait(lock, [&] { return running_ != id; });
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
  entries_.erase(it);
  return true;
}

void reaper::loop() {
  epoll_event events[64];
  for (;;) {
    int timeout = -1;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!timers_.empty()) {
        // Rounded up: waking before the deadline would only loop again.
        auto left = std::chrono::ceil<std::chrono::milliseconds>(timers_.begin()->first - clock::now());
        timeout = static_cast<int>(std::clamp<long long>(left.count(), 0, 1 << 30));
      }
    }
    int n = ::epoll_wait(epoll_.get(), events, 64, timeout);
    if (n < 0) n = 0;  // EINTR (all signals are blocked here, but be safe)
    for (int i = 0; i < n; ++i) dispatch(events[i].data.u64);
    run_due_timers();
  }
}

namespace {
constexpr std::chrono::milliseconds park_first{10};
constexpr std::chrono::milliseconds park_max{1000};
}  // namespace

// A child's pidfd is readable but the child cannot be collected (collectable(): traced by
// another process when it died). Its handler must not run yet — it would block in waitid
// until the tracer lets go, and every other child's exit with it — and its level-triggered
// pidfd would wake the loop at once, again and again: out of the epoll set it goes, to be
// looked at again later. `lock` holds mutex_; released here.
void reaper::park(std::unique_lock<std::mutex>& lock, std::uint64_t id) {
  entry& e = entries_.at(id);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, e.fd, nullptr);
  const auto wait = e.parked == std::chrono::milliseconds{0} ? park_first : std::min(e.parked * 2, park_max);
  e.parked = wait;
  lock.unlock();  // schedule() takes it; `e` may be unwatched from here on
  schedule(clock::now() + wait, [this, id] { unpark(id); });
}

// Back into the epoll set (readable at once): dispatch looks again. Nothing when the watch
// was dropped meanwhile (its fd may be closed, or another's, by now).
void reaper::unpark(std::uint64_t id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, it->second.fd, &ev) != 0) park(lock, id);
}

void reaper::dispatch(std::uint64_t id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;  // unwatched after epoll_wait returned
  const int kind = it->second.kind;
  if ((kind == 1 || kind == 2) && !collectable(it->second.fd)) return park(lock, id);
  if (kind == 2 || kind == 3 || kind == 4) {
    entry e = std::move(it->second);
    entries_.erase(it);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, e.fd, nullptr);
    running_ = id;
    lock.unlock();
    guarded(e.on_exited);
    lock.lock();
  } else if (it->second.kind == 1) {
    entry e = std::move(it->second);
    entries_.erase(it);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, e.fd, nullptr);
    running_ = id;
    lock.unlock();

    // Readable means the child has exited, so this blocking wait returns at once; a
    // single WNOHANG could miss a child that is still becoming a zombie.
    siginfo_t info{};
    int r;
    do r = ::waitid(P_PIDFD, static_cast<id_t>(e.fd), &info, WEXITED);
    while (r != 0 && errno == EINTR);
    exit_status status = r == 0 ? exit_status::from_siginfo(info.si_code, info.si_status)
                                : exit_status::lost();
    guarded([&] { e.on_exit(status); });
    lock.lock();
  } else {
    fd_handler handler = it->second.on_readable;
    running_ = id;
    lock.unlock();
    bool keep = true;
    guarded([&] { keep = handler(); });
    lock.lock();
    if (!keep) {
      auto again = entries_.find(id);
      if (again != entries_.end()) {
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, again->second.fd, nullptr);
        entries_.erase(again);
      }
    }
  }
  running_ = 0;
  idle_.notify_all();
}

}  // namespace pkit::detail
