#include <pkit/process_pool.hpp>

#include <pkit/errc.hpp>
#include <pkit/process.hpp>

#include "detail/reaper.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace pkit {
namespace detail {

namespace {

// Blocking on the reaper thread for something only that thread can deliver (an exit, a
// slot) would wedge it for good: fail instead, as process::join does.
void refuse_on_reaper_thread(const char* what) {
  if (reaper::called_on_reaper_thread()) throw std::system_error(errc::would_deadlock, what);
}

}  // namespace

struct pool_task_state {
  std::uint64_t id = 0;
  std::unique_ptr<process> proc;
  mutable std::mutex m;
  std::condition_variable cv;
  process_pool::task_state state = process_pool::task_state::ready;
  pid_t pid = 0;
  std::optional<exit_status> status;
  std::optional<spawn_failure> failure;

  bool done() const { return state == process_pool::task_state::finished; }

  void started(pid_t p) {
    std::lock_guard<std::mutex> lock(m);
    if (state != process_pool::task_state::ready) return;  // already exited and reported
    state = process_pool::task_state::running;
    pid = p;
  }
  void fail(spawn_failure f) {
    std::lock_guard<std::mutex> lock(m);
    state = process_pool::task_state::finished;
    failure = std::move(f);
    cv.notify_all();
  }
  void exited(exit_status st) {
    std::lock_guard<std::mutex> lock(m);
    state = process_pool::task_state::finished;
    status = st;
    cv.notify_all();
  }
  // Under `m`, once done().
  int result() const {
    if (failure) throw spawn_error(*failure);
    return status->exit_code();
  }
};

struct pool_state : std::enable_shared_from_this<pool_state> {
  /// The process that made the pool: a forked copy of the program has the pool too, but
  /// not its children — there the blocking calls fail with not_owner and the destructor
  /// does nothing.
  const pid_t owner_pid = ::getpid();
  std::size_t slots = 1;
  process_options options;
  mutable std::mutex m;
  std::condition_variable changed;
  std::size_t busy = 0;  // slots taken: by a task in `running`, or being passed on
  std::size_t in_callbacks = 0;  // tasks' on_exit wrappers running now (reaper thread)
  bool closed = false;
  std::uint64_t next_id = 1;
  // A task is in `running` from the moment it holds a slot; whoever takes it out of there
  // (its exit, or its failed start) passes the slot on — exactly once.
  std::map<std::uint64_t, std::shared_ptr<pool_task_state>> running;
  std::deque<std::shared_ptr<pool_task_state>> waiting;
  // Finished tasks are parked here by the reaper thread and dropped by the next call: a
  // process must not be destroyed from inside its own on_exit.
  std::vector<std::shared_ptr<pool_task_state>> finished;

  enum class slot { taken, free };

  std::shared_ptr<pool_task_state> make_task(process_pool::work&& w);
  std::shared_ptr<pool_task_state> execute(process_pool::work&& w, bool wait);
  slot launch(const std::shared_ptr<pool_task_state>& t, bool wait);
  void pass_slot_on(const std::shared_ptr<pool_task_state>& ended = nullptr, exit_status st = {});
  void finish(const std::shared_ptr<pool_task_state>& t, exit_status st);
  void abandon();
  void drop_finished();
};

std::shared_ptr<pool_task_state> pool_state::make_task(process_pool::work&& w) {
  auto t = std::make_shared<pool_task_state>();
  {
    std::lock_guard<std::mutex> lock(m);
    t->id = next_id++;
  }
  process_options o = options;
  std::weak_ptr<pool_state> weak_pool = weak_from_this();
  std::weak_ptr<pool_task_state> weak_task = t;
  o.on_exit = [weak_pool, weak_task, user = options.on_exit](process& p) {
    const exit_status st = p.status().value_or(exit_status::lost());
    // Both held until the user's callback has returned: should it destroy the pool, the
    // task (and `p` with it) must not go before the callback is done with `p`.
    auto task = weak_task.lock();
    auto pool = weak_pool.lock();
    // Counted, so that destroying the pool waits for the user's callback to return, as
    // destroying a process does: the callback may use what the pool's owner is about to
    // destroy.
    struct in_flight {
      std::shared_ptr<pool_state> pool;
      explicit in_flight(std::shared_ptr<pool_state> p) : pool(std::move(p)) {
        if (pool) {
          std::lock_guard<std::mutex> lock(pool->m);
          ++pool->in_callbacks;
        }
      }
      ~in_flight() {
        if (!pool) return;
        std::lock_guard<std::mutex> lock(pool->m);
        --pool->in_callbacks;
        pool->changed.notify_all();
      }
    } counted{pool};
    if (task && pool) {
      pool->finish(task, st);
    } else if (task) {
      task->exited(st);  // the pool was destroyed on the reaper thread, without waiting
    }
    if (user) user(p);
  };
  t->proc = std::visit(
      [&](auto&& target) { return std::make_unique<process>(std::move(target), std::move(o)); },
      std::move(w));
  return t;
}

// Takes a slot (blocking while none is free) and starts `w` in it.
std::shared_ptr<pool_task_state> pool_state::execute(process_pool::work&& w, bool wait) {
  auto t = make_task(std::move(w));
  {
    std::unique_lock<std::mutex> lock(m);
    // Queued tasks go first: execute() does not overtake submit().
    auto can_go = [&] { return closed || (busy < slots && waiting.empty()); };
    if (!can_go()) {
      refuse_on_reaper_thread("pkit::process_pool::execute");  // only an exit frees a slot
      changed.wait(lock, can_go);
    }
    if (closed) throw std::system_error(errc::pool_closed, "pkit::process_pool::execute");
    ++busy;
    running.emplace(t->id, t);
    drop_finished();
  }
  if (launch(t, wait) == slot::free) pass_slot_on();
  return t;
}

// Starts `t`, which holds a slot (and is in `running`). Tells whether the slot is still
// taken — by the started task, or already passed on by its exit (a start(wait) that
// failed after the child had run) — or free for the caller to pass on (the task then
// records why it did not start).
pool_state::slot pool_state::launch(const std::shared_ptr<pool_task_state>& t, bool wait) {
  std::error_code ec;
  const pid_t pid = wait ? t->proc->start(pkit::wait, ec) : t->proc->start(ec);
  if (!ec) {
    t->started(pid);
    return slot::taken;
  }
  bool owned;
  {
    std::lock_guard<std::mutex> lock(m);
    owned = running.erase(t->id) != 0;
  }
  t->fail(t->proc->last_failure().value_or(spawn_failure{t->proc->name(), "start", ec}));
  return owned ? slot::free : slot::taken;
}

// A slot counted in `busy` is free: the oldest queued task starts in it; one whose start
// fails has recorded why, and the next one is tried — in a loop, not by recursion, so a
// long run of failing tasks costs no stack. With nothing queued the slot goes back to the
// pool. `ended`, the task whose exit freed the slot, reads as finished only once its slot
// is taken again, or in the same step in which it is given back: whoever sees it finished
// sees its slot in use or free, and whoever sees the pool idle (close) sees every task
// finished.
void pool_state::pass_slot_on(const std::shared_ptr<pool_task_state>& ended, exit_status st) {
  for (;;) {
    std::shared_ptr<pool_task_state> next;
    {
      std::lock_guard<std::mutex> lock(m);
      if (waiting.empty()) {
        if (ended) ended->exited(st);
        --busy;
        changed.notify_all();
        return;
      }
      next = std::move(waiting.front());
      waiting.pop_front();
      running.emplace(next->id, next);
    }
    if (launch(next, false) == slot::taken) break;
  }
  if (ended) ended->exited(st);
}

// A task's process exited (reaper thread).
void pool_state::finish(const std::shared_ptr<pool_task_state>& t, exit_status st) {
  bool owned;
  {
    std::lock_guard<std::mutex> lock(m);
    owned = running.erase(t->id) != 0;
    if (owned) finished.push_back(t);
  }
  if (owned) {
    pass_slot_on(t, st);
  } else {
    t->exited(st);  // its failed start(wait) gave the slot back already
  }
}

// Under `m`: releases the finished tasks parked by `finish`. On the reaper thread one of
// them may be inside its own on_exit further up the stack, so there they are released by
// a task posted to that thread, which runs outside any callback.
void pool_state::drop_finished() {
  if (finished.empty()) return;
  reaper& r = reaper::instance();
  if (r.on_reaper_thread()) r.post([done = std::move(finished)] {});
  finished.clear();
}

// The pool is destroyed on the reaper thread, which cannot wait for exits it has yet to
// report: drop the queue and kill what runs, as ~process does there. The exits are still
// reported to the tasks (see make_task).
void pool_state::abandon() {
  std::deque<std::shared_ptr<pool_task_state>> dropped;
  std::vector<std::shared_ptr<pool_task_state>> tasks;
  {
    std::lock_guard<std::mutex> lock(m);
    closed = true;
    dropped.swap(waiting);
    for (auto& [id, t] : running) tasks.push_back(t);
    changed.notify_all();
  }
  for (auto& t : dropped)
    t->fail(spawn_failure{t->proc->name(), "queued", make_error_code(errc::pool_closed)});
  for (auto& t : tasks) {
    std::error_code ignored;  // not started yet, or already gone
    t->proc->kill(ignored);
  }
}

}  // namespace detail

std::uint64_t process_pool::task::id() const noexcept { return s_->id; }

process_pool::task_state process_pool::task::state() const {
  std::lock_guard<std::mutex> lock(s_->m);
  return s_->state;
}

std::optional<pid_t> process_pool::task::pid() const {
  std::lock_guard<std::mutex> lock(s_->m);
  if (s_->state != task_state::running) return std::nullopt;
  return s_->pid;
}

std::optional<int> process_pool::task::exitcode() const {
  std::lock_guard<std::mutex> lock(s_->m);
  if (!s_->status) return std::nullopt;
  return s_->status->exit_code();
}

std::optional<exit_status> process_pool::task::status() const {
  std::lock_guard<std::mutex> lock(s_->m);
  return s_->status;
}

std::optional<spawn_failure> process_pool::task::failure() const {
  std::lock_guard<std::mutex> lock(s_->m);
  return s_->failure;
}

int process_pool::task::join() const {
  std::unique_lock<std::mutex> lock(s_->m);
  if (!s_->done()) {
    detail::refuse_on_reaper_thread("pkit::process_pool::task::join");
    s_->cv.wait(lock, [&] { return s_->done(); });
  }
  return s_->result();
}

std::optional<int> process_pool::task::join(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(s_->m);
  if (!s_->done()) {
    detail::refuse_on_reaper_thread("pkit::process_pool::task::join");
    if (!s_->cv.wait_for(lock, timeout, [&] { return s_->done(); })) return std::nullopt;
  }
  return s_->result();
}

process_pool::process_pool(std::size_t slots, process_options options)
    : state_(std::make_shared<detail::pool_state>()) {
  if (slots == 0) slots = std::max(1u, std::thread::hardware_concurrency());
  state_->slots = slots;
  state_->options = std::move(options);
}

process_pool::~process_pool() {
  if (::getpid() != state_->owner_pid) return;
  if (detail::reaper::called_on_reaper_thread()) {
    state_->abandon();
    return;
  }
  try {
    terminate();
  } catch (...) {
    // Every child was signalled; nothing more to do in a destructor.
  }
  // The tasks' exits are reported; their callbacks may still run on the reaper thread.
  auto& s = *state_;
  std::unique_lock<std::mutex> lock(s.m);
  s.changed.wait(lock, [&] { return s.in_callbacks == 0; });
}

std::size_t process_pool::slots() const noexcept { return state_->slots; }

std::size_t process_pool::busy() const {
  std::lock_guard<std::mutex> lock(state_->m);
  return state_->busy;
}

std::size_t process_pool::queued() const {
  std::lock_guard<std::mutex> lock(state_->m);
  return state_->waiting.size();
}

process_pool::task process_pool::execute(work w) {
  auto t = state_->execute(std::move(w), false);
  if (auto f = task(t).failure()) throw spawn_error(*f);
  return task(t);
}

process_pool::task process_pool::execute(wait_t, work w) {
  auto t = state_->execute(std::move(w), true);
  if (auto f = task(t).failure()) throw spawn_error(*f);
  return task(t);
}

std::optional<process_pool::task> process_pool::try_execute(work w, std::error_code& ec) {
  ec.clear();
  auto t = state_->make_task(std::move(w));
  {
    std::lock_guard<std::mutex> lock(state_->m);
    if (state_->closed) {
      ec = errc::pool_closed;
      return std::nullopt;
    }
    if (state_->busy >= state_->slots || !state_->waiting.empty()) {
      ec = errc::pool_full;
      return std::nullopt;
    }
    ++state_->busy;
    state_->running.emplace(t->id, t);
    state_->drop_finished();
  }
  if (state_->launch(t, false) == detail::pool_state::slot::free) state_->pass_slot_on();
  if (auto f = task(t).failure()) {
    ec = f->error;
    return std::nullopt;
  }
  return task(t);
}

process_pool::task process_pool::submit(work w) {
  auto t = state_->make_task(std::move(w));
  {
    std::lock_guard<std::mutex> lock(state_->m);
    if (state_->closed) throw std::system_error(errc::pool_closed, "pkit::process_pool::submit");
    state_->drop_finished();
    if (state_->busy >= state_->slots || !state_->waiting.empty()) {
      state_->waiting.push_back(t);
      return task(t);
    }
    ++state_->busy;
    state_->running.emplace(t->id, t);
  }
  if (state_->launch(t, false) == detail::pool_state::slot::free) state_->pass_slot_on();
  return task(t);
}

void process_pool::close() {
  auto& s = *state_;
  if (::getpid() != s.owner_pid) throw std::system_error(make_error_code(errc::not_owner), "pkit::process_pool::close");
  std::unique_lock<std::mutex> lock(s.m);
  auto idle = [&] { return s.busy == 0 && s.waiting.empty(); };
  if (!idle()) detail::refuse_on_reaper_thread("pkit::process_pool::close");
  s.closed = true;
  s.changed.notify_all();
  s.changed.wait(lock, idle);
  s.drop_finished();
}

void process_pool::terminate() {
  auto& s = *state_;
  if (::getpid() != s.owner_pid)
    throw std::system_error(make_error_code(errc::not_owner), "pkit::process_pool::terminate");
  std::deque<std::shared_ptr<detail::pool_task_state>> dropped;
  {
    std::lock_guard<std::mutex> lock(s.m);
    // With a task running, this would wait for an exit only the reaper thread reports.
    if (s.busy != 0) detail::refuse_on_reaper_thread("pkit::process_pool::terminate");
    s.closed = true;
    dropped.swap(s.waiting);
    s.changed.notify_all();
  }
  for (auto& t : dropped)
    t->fail(spawn_failure{t->proc->name(), "queued", make_error_code(errc::pool_closed)});
  // A task may be between its slot and its start (another thread inside execute): stop
  // whatever runs until no slot is taken.
  std::unique_lock<std::mutex> lock(s.m);
  while (s.busy != 0) {
    std::vector<std::shared_ptr<detail::pool_task_state>> tasks;
    for (auto& [id, t] : s.running) tasks.push_back(t);
    lock.unlock();
    // All at once: the reaper carries each stop on (deadline, SIGKILL, the group), so N
    // tasks that ignore SIGTERM take one stop timeout, not N. A stop under way is not
    // begun again.
    for (auto& t : tasks) {
      if (t->proc->runs() == 0) continue;
      try {
        t->proc->stop_async();
      } catch (const std::system_error&) {
        // Already gone.
      }
    }
    lock.lock();
    s.changed.wait_for(lock, std::chrono::milliseconds(100), [&] { return s.busy == 0; });
  }
  s.drop_finished();
}

}  // namespace pkit
