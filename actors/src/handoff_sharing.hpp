#pragma once

// The CAF scheduler policy pkit::actors::use_pkit_scheduler selects ("pkit"): work sharing plus a
// hand-off slot per worker.
//
// Why not CAF's own policies. Work stealing (CAF's default) polls while idle: CPU spent
// by a supervisor that has nothing to do, and a message landing between polls waits up to
// ~100 µs. Work sharing sleeps on one condition variable, but every enqueue wakes a
// sleeping worker — also when the enqueuing worker itself is about to be free. A
// supervisor's work is chains of one message each (reaper → process actor → supervisor →
// process actor → supervisor): each link then costs a futex wake and a thread switch
// (~10–20 µs on a small VM, more than the message itself), and the woken threads compete
// with the child processes for the cores.
//
// Here, the first actor a worker makes runnable during a resume is handed to that same
// worker, which runs it next: no wake-up, warm caches. Every further one goes to the
// shared queue and wakes a sleeping worker, as in work sharing, so fan-out still spreads
// over the cores. Two limits keep the slot from delaying work: a resume that has run
// long and makes yet another actor runnable gives its slot job to the shared queue
// (where any worker can take it); and after a run of hand-offs the slot job queues
// behind jobs already waiting.
//
// The slot job waits for the end of the resume that made it. An actor that blocks in a
// handler (which no actor should; a process actor's spawn is the one short exception)
// delays it by that long.

#include <caf/actor_system.hpp>
#include <caf/policy/unprofiled.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>

namespace pkit::actors::detail {

/// The counts the policy keeps for a look from outside without its lock:
/// pkit::actors::liveness_probe (a watchdog that must tell a busy system from a wedged
/// one) and the policy's own check for jobs waiting behind a run of hand-offs. Relaxed:
/// counts that move, not an ordering. Jobs in the workers' slots are not counted: only
/// their own worker can run them, and the probe's own job, sent from outside, always
/// goes to the shared queue.
struct scheduler_counters {
  std::atomic<std::size_t> waiting{0};    ///< the shared queue's size
  std::atomic<std::uint64_t> resumes{0};  ///< resumes begun while `watched`
  /// Set by a probe: only then does every resume pay for a shared increment (a system
  /// without a watchdog, `pkit run`'s, keeps its resumes as they were).
  std::atomic<bool> watched{false};
};

class handoff_sharing : public caf::policy::unprofiled {
public:
  /// A resume that has run this long hands its slot job to the shared queue when it
  /// makes another actor runnable (which then takes the slot).
  static constexpr std::chrono::microseconds max_hold{200};
  /// Hand-offs in a row before the slot job queues behind jobs already waiting.
  static constexpr unsigned max_streak = 32;

  struct coordinator_data {
    explicit coordinator_data(caf::scheduler::abstract_coordinator*) {}
    std::mutex lock;
    std::condition_variable cv;
    std::deque<caf::resumable*> queue;  // guarded by lock
    std::size_t sleeping = 0;           // workers waiting on cv; guarded by lock
    scheduler_counters counters;
  };

  struct worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator*) {}
    caf::resumable* slot = nullptr;  // runs next on this worker
    std::chrono::steady_clock::time_point resume_began{};
    unsigned streak = 0;  // hand-offs in a row
  };

  template <class Coordinator>
  void central_enqueue(Coordinator* self, caf::resumable* job) {
    push(d(self), job);
  }

  template <class Worker>
  void external_enqueue(Worker* self, caf::resumable* job) {
    push(d(self->parent()), job);
  }

  // Called on the worker's own thread, by the actor it is running.
  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    auto& wd = d(self);
    // The slot is taken however long the resume has run: handlers send last, so the
    // resume is almost always about to end (a process actor's start sends after its
    // spawn, which alone can take longer than max_hold).
    if (wd.slot == nullptr) {
      wd.slot = job;
      return;
    }
    if (std::chrono::steady_clock::now() - wd.resume_began >= max_hold) {
      // Still running, and sending again: the held job goes to whichever worker is free,
      // the new one waits here instead.
      push(d(self->parent()), std::exchange(wd.slot, job));
      return;
    }
    push(d(self->parent()), job);
  }

  template <class Worker>
  void resume_job_later(Worker* self, caf::resumable* job) {
    push(d(self->parent()), job);
  }

  template <class Worker>
  caf::resumable* dequeue(Worker* self) {
    auto& wd = d(self);
    auto& cd = d(self->parent());
    if (caf::resumable* job = std::exchange(wd.slot, nullptr)) {
      if (++wd.streak < max_streak || cd.counters.waiting.load(std::memory_order_relaxed) == 0) return job;
      // Others have waited through a run of hand-offs: this job goes behind them.
      std::lock_guard<std::mutex> guard(cd.lock);
      cd.queue.push_back(job);
      wd.streak = 0;
      return pop(cd);
    }
    wd.streak = 0;
    std::unique_lock<std::mutex> guard(cd.lock);
    ++cd.sleeping;
    cd.cv.wait(guard, [&] { return !cd.queue.empty(); });
    --cd.sleeping;
    return pop(cd);
  }

  template <class Worker>
  void before_resume(Worker* self, caf::resumable*) {
    d(self).resume_began = std::chrono::steady_clock::now();
    auto& c = d(self->parent()).counters;
    if (c.watched.load(std::memory_order_relaxed)) c.resumes.fetch_add(1, std::memory_order_relaxed);
  }

  // At shutdown, for jobs never run.
  template <class Worker, class UnaryFunction>
  void foreach_resumable(Worker* self, UnaryFunction f) {
    if (caf::resumable* job = std::exchange(d(self).slot, nullptr)) f(job);
  }

  template <class Coordinator, class UnaryFunction>
  void foreach_central_resumable(Coordinator* self, UnaryFunction f) {
    auto& cd = d(self);
    std::unique_lock<std::mutex> guard(cd.lock);
    while (!cd.queue.empty()) f(pop(cd));
  }

private:
  static void push(coordinator_data& cd, caf::resumable* job) {
    bool wake;
    {
      std::lock_guard<std::mutex> guard(cd.lock);
      cd.queue.push_back(job);
      cd.counters.waiting.store(cd.queue.size(), std::memory_order_relaxed);
      wake = cd.sleeping > 0;
    }
    if (wake) cd.cv.notify_one();
  }

  // With cd.lock held and the queue not empty.
  static caf::resumable* pop(coordinator_data& cd) {
    caf::resumable* job = cd.queue.front();
    cd.queue.pop_front();
    cd.counters.waiting.store(cd.queue.size(), std::memory_order_relaxed);
    return job;
  }
};

/// CAF's actor_system_config module factory for the scheduler: handoff_sharing when
/// "scheduler.policy" is "pkit", otherwise what CAF itself would make of the setting
/// ("sharing", "stealing", "testing", with "scheduler.enable-profiling"; "pkit" has no
/// profiled variant, and ignores that flag).
caf::actor_system::module* make_scheduler(caf::actor_system& system);

}  // namespace pkit::actors::detail
