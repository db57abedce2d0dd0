#include "detail/spawn_thread.hpp"

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <exception>
#include <mutex>
#include <new>
#include <unistd.h>

namespace pkit::detail {

struct spawn_thread::job {
  const std::function<void()>* task = nullptr;
  std::exception_ptr error;
  bool done = false;
};

struct spawn_thread::queue {
  std::mutex m;
  std::condition_variable work;  // a job was queued
  std::condition_variable done;  // a job finished
  std::deque<job*> jobs;
};

namespace {
// Like the reaper: never destroyed (children made here must not lose their creating
// thread before the program ends), and re-created in a forked child, whose copy has no
// thread behind it (the copy is abandoned, its mutex may have been held at fork time).
alignas(spawn_thread) unsigned char storage[sizeof(spawn_thread)];
std::atomic<spawn_thread*> current{nullptr};
std::atomic<pid_t> current_owner{0};
std::mutex creation;
}  // namespace

spawn_thread& spawn_thread::instance() {
  const pid_t self = ::getpid();
  spawn_thread* t = current.load(std::memory_order_acquire);
  if (t != nullptr && current_owner.load(std::memory_order_acquire) == self) return *t;
  std::lock_guard<std::mutex> lock(creation);
  t = current.load(std::memory_order_acquire);
  if (t == nullptr || current_owner.load(std::memory_order_acquire) != self) {
    t = ::new (static_cast<void*>(storage)) spawn_thread();
    current_owner.store(self, std::memory_order_release);
    current.store(t, std::memory_order_release);
  }
  return *t;
}

spawn_thread::spawn_thread() : queue_(std::make_unique<queue>()) {
  // Blocks every signal, like the reaper: process-directed signals belong to the host's
  // threads, and the fork start method copies this mask into the child (which resets it).
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  std::thread t([this] { loop(); });
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  thread_id_ = t.get_id();
  t.detach();
}

void spawn_thread::run(const std::function<void()>& task) {
  if (std::this_thread::get_id() == thread_id_) {
    task();
    return;
  }
  job j;
  j.task = &task;
  std::unique_lock<std::mutex> lock(queue_->m);
  queue_->jobs.push_back(&j);
  queue_->work.notify_one();
  queue_->done.wait(lock, [&] { return j.done; });
  if (j.error) std::rethrow_exception(j.error);
}

void spawn_thread::loop() {
  std::unique_lock<std::mutex> lock(queue_->m);
  for (;;) {
    queue_->work.wait(lock, [&] { return !queue_->jobs.empty(); });
    job* j = queue_->jobs.front();
    queue_->jobs.pop_front();
    lock.unlock();
    try {
      (*j->task)();
    } catch (...) {
      j->error = std::current_exception();
    }
    lock.lock();
    j->done = true;
    queue_->done.notify_all();
  }
}

}  // namespace pkit::detail
