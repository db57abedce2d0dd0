#include "launcher.hpp"

#include <utility>

namespace pkit::actors::detail {

launcher& launcher::instance() {
  // Never destroyed (see the class doc). A failed construction is retried by the next call.
  static launcher* const one = new launcher();
  return *one;
}

launcher::launcher() : thread_([this] { loop(); }) { thread_.detach(); }

void launcher::launch(std::shared_ptr<process_parcel> parcel, done_fn done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(job{std::move(parcel), std::move(done)});
  }
  wake_.notify_one();
}

void launcher::loop() {
  for (;;) {
    job next;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return !jobs_.empty(); });
      next = std::move(jobs_.front());
      jobs_.pop_front();
    }
    std::error_code ec;
    const pid_t pid = next.parcel->proc->start(ec);
    try {
      next.done(std::move(next.parcel), pid, ec);
    } catch (...) {
      // Out of memory for the report: the parcel, dropped with `next`, releases the
      // process — its child is stopped, and the actor's start request ends with its
      // own timeout.
    }
  }
}

}  // namespace pkit::actors::detail
