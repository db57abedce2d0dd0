#include "launcher.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace pkit::actors::detail {

launcher& launcher::instance(launcher_lane lane) {
  // Never destroyed (see the class doc). A failed construction is retried by the next
  // call. Each lane's thread is made on its first use only.
  if (lane == launcher_lane::fork_server) {
    static launcher* const servers = new launcher();
    return *servers;
  }
  static launcher* const names = new launcher();
  return *names;
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
    report(next, pid, ec);
  }
}

void launcher::report(job& next, pid_t pid, std::error_code ec) noexcept {
  // The report is the actor's only way out of its launch: dropped, the actor stayed
  // `starting` for ever and its start request (a supervisor's among them) was never
  // answered (review D6). So it is retried until it is made — it can only fail for
  // want of memory —, holding up later launches meanwhile. The parcel is passed as a
  // copy: a `done` that throws must not take the process with it.
  auto delay = std::chrono::milliseconds(1);
  for (;;) {
    try {
      next.done(next.parcel, pid, ec);
      next.parcel.reset();  // the report holds it now
      return;
    } catch (...) {
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, std::chrono::milliseconds(1000));
    }
  }
}

}  // namespace pkit::actors::detail
