#include "launcher.hpp"

#include <algorithm>
#include <chrono>
#include <system_error>
#include <thread>
#include <utility>

#include <pthread.h>

namespace pkit::actors::detail {

const char* launcher::thread_name(launcher_lane lane) noexcept {
  return lane == launcher_lane::fork_server ? fork_server_thread_name : name_service_thread_name;
}

launcher& launcher::instance(launcher_lane lane) {
  // Never destroyed (see the class doc). Each lane is made on its first use only.
  if (lane == launcher_lane::fork_server) {
    static launcher* const servers = new launcher(fork_server_threads, thread_name(lane));
    return *servers;
  }
  static launcher* const names = new launcher(name_service_threads, thread_name(lane));
  return *names;
}

launcher::launcher(std::size_t max_threads, const char* thread_name)
    : max_threads_(max_threads), thread_name_(thread_name) {}

void launcher::post(std::function<void()> job) {
  std::unique_lock<std::mutex> lock(mutex_);
  jobs_.push_back(std::move(job));
  // A job that finds every thread busy gets a new one, up to the lane's number: a lookup
  // that waits on a slow server does not hold up the next one.
  // (Counted against the idle threads, not "none idle": an idle thread not yet woken
  // for the job before this one would otherwise take both in turn.)
  if (jobs_.size() > idle_ && threads_ < max_threads_) {
    try {
      std::thread([this] { loop(); }).detach();
      ++threads_;
    } catch (...) {
      // No thread now: a busy one takes the job in turn — unless there is none at all.
      if (threads_ == 0) {
        jobs_.pop_back();
        throw;
      }
    }
  }
  lock.unlock();
  wake_.notify_one();
}

void launcher::loop() {
  // Named so that a thread waiting on a wedged server or name service is recognised in a
  // stack dump or top -H (and by the tests, which wait until a job has begun). A failure
  // leaves the program's name: nothing depends on it.
  (void)::pthread_setname_np(::pthread_self(), thread_name_);
  for (;;) {
    std::function<void()> next;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++idle_;
      wake_.wait(lock, [this] { return !jobs_.empty(); });
      --idle_;
      next = std::move(jobs_.front());
      jobs_.pop_front();
    }
    next();
  }
}

void launcher::report_until_made(const std::function<void()>& send) noexcept {
  auto delay = std::chrono::milliseconds(1);
  for (;;) {
    try {
      send();
      return;
    } catch (...) {
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, std::chrono::milliseconds(1000));
    }
  }
}

}  // namespace pkit::actors::detail
