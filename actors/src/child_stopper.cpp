#include "child_stopper.hpp"

#include <csignal>
#include <system_error>

#include <signal.h>

namespace pkit::actors::detail {

child_stopper& child_stopper::instance() {
  // Never destroyed: children may still be in its care while static destructors run.
  // A failed construction (no thread) is retried by the next call.
  static child_stopper* const stopper = new child_stopper();
  return *stopper;
}

child_stopper::child_stopper() : thread_([this] { loop(); }) {}

void child_stopper::adopt(std::unique_ptr<stop_job> job) noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job->next = jobs_;
    jobs_ = job.release();
    changed_ = true;
  }
  wake_.notify_one();
}

void child_stopper::exited(stop_job* job) noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job->exited = true;
    changed_ = true;
  }
  wake_.notify_one();
}

void child_stopper::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    // Under the lock: take the finished jobs out, and find the kills that are due.
    // Outside it: kill and destroy (both take the process's own lock, which its exit
    // callback — calling exited() — may hold while it waits for ours).
    const auto now = stop_job::clock::now();
    auto next_deadline = stop_job::clock::time_point::max();
    stop_job* done = nullptr;
    stop_job* due = nullptr;
    for (stop_job** link = &jobs_; *link != nullptr;) {
      stop_job* job = *link;
      if (job->exited) {
        *link = job->next;
        job->next = done;
        done = job;
        continue;
      }
      if (!job->killed) {
        if (job->kill_at <= now) {
          job->killed = true;
          job->next_due = due;
          due = job;
        } else if (job->kill_at < next_deadline) {
          next_deadline = job->kill_at;
        }
      }
      link = &job->next;
    }
    changed_ = false;
    lock.unlock();
    // A job on `due` stays in jobs_ and only this thread destroys jobs: still valid.
    for (stop_job* job = due; job != nullptr; job = job->next_due) {
      std::error_code ignored;
      job->proc->kill(ignored);
    }
    while (done != nullptr) {
      std::unique_ptr<stop_job> job(done);
      done = done->next;
      // Whatever the leader left in its group goes too, as process::stop does.
      if (job->group > 0) ::kill(-job->group, SIGKILL);
      job.reset();  // the child is reaped: destroying the process does not wait for it
    }
    lock.lock();
    if (changed_) continue;
    if (next_deadline == stop_job::clock::time_point::max()) {
      wake_.wait(lock, [this] { return changed_; });
    } else {
      wake_.wait_until(lock, next_deadline, [this] { return changed_; });
    }
  }
}

}  // namespace pkit::actors::detail
