#include <pkit/process_pool.hpp>

#include <pkit/errc.hpp>
#include <pkit/process.hpp>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace pkit {
namespace detail {

struct pool_task_state {
  std::uint64_t id = 0;
  std::unique_ptr<process> proc;
  mutable std::mutex m;
  std::condition_variable cv;
  process_pool::task_state state = process_pool::task_state::ready;
  pid_t pid = 0;
  std::optional<exit_status> status;
  std::optional<spawn_failure> failure;

  bool done() const { return status.has_value() || failure.has_value(); }

  void fail(spawn_failure f) {
    std::lock_guard<std::mutex> lock(m);
    state = process_pool::task_state::finished;
    failure = std::move(f);
    cv.notify_all();
  }
};

struct pool_state : std::enable_shared_from_this<pool_state> {
  std::size_t slots = 1;
  process_options options;
  mutable std::mutex m;
  std::condition_variable changed;
  std::size_t busy = 0;
  bool closed = false;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, std::shared_ptr<pool_task_state>> running;
  std::deque<std::shared_ptr<pool_task_state>> waiting;
  // Finished tasks are parked here by the reaper thread and dropped by the next caller on
  // another thread: a process must not be destroyed from inside its own on_exit.
  std::vector<std::shared_ptr<pool_task_state>> finished;

  std::shared_ptr<pool_task_state> make_task(process_pool::work&& w);
  void launch(const std::shared_ptr<pool_task_state>& t);
  void hand_over_slot();
  void finish(const std::shared_ptr<pool_task_state>& t, exit_status st);
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
    auto pool = weak_pool.lock();
    auto task = weak_task.lock();
    if (pool && task) pool->finish(task, p.status().value_or(exit_status::exited(255)));
    if (user) user(p);
  };
  t->proc = std::visit(
      [&](auto&& target) { return std::make_unique<process>(std::move(target), std::move(o)); },
      std::move(w));
  return t;
}

// Starts a task whose slot is already counted in `busy`. On failure the task records why
// and its slot goes on (to the next queued task, or back to the pool).
void pool_state::launch(const std::shared_ptr<pool_task_state>& t) {
  {
    std::lock_guard<std::mutex> lock(m);
    running.emplace(t->id, t);
  }
  std::error_code ec;
  pid_t pid = t->proc->start(ec);
  if (ec) {
    {
      std::lock_guard<std::mutex> lock(m);
      running.erase(t->id);
    }
    t->fail(t->proc->last_failure().value_or(spawn_failure{t->proc->name(), "start", ec}));
    hand_over_slot();
    return;
  }
  std::lock_guard<std::mutex> lock(t->m);
  if (t->state == process_pool::task_state::ready) {
    t->state = process_pool::task_state::running;
    t->pid = pid;
  }
}

// A slot came free: the oldest queued task starts in it, or the pool gets it back.
void pool_state::hand_over_slot() {
  std::shared_ptr<pool_task_state> next;
  {
    std::lock_guard<std::mutex> lock(m);
    if (waiting.empty()) {
      --busy;
      changed.notify_all();
      return;
    }
    next = std::move(waiting.front());
    waiting.pop_front();
  }
  launch(next);
}

// A task's process exited (reaper thread). Its slot goes to the next queued task before
// the task reads as finished, and the task reads as finished in the same step in which an
// unneeded slot is given back: whoever saw it finish sees its slot taken or free, and
// whoever saw the pool idle (close) sees every task finished.
void pool_state::finish(const std::shared_ptr<pool_task_state>& t, exit_status st) {
  std::shared_ptr<pool_task_state> next;
  {
    std::lock_guard<std::mutex> lock(m);
    if (!waiting.empty()) {
      next = std::move(waiting.front());
      waiting.pop_front();
      ++busy;  // the next task's slot; this task keeps its own until it reads as finished
    }
  }
  if (next) launch(next);
  std::lock_guard<std::mutex> lock(m);
  if (running.erase(t->id) != 0) finished.push_back(t);
  {
    std::lock_guard<std::mutex> task_lock(t->m);
    t->state = process_pool::task_state::finished;
    t->status = st;
    t->cv.notify_all();
  }
  --busy;
  changed.notify_all();
}

}  // namespace detail

namespace {

[[noreturn]] void throw_closed(const char* what) {
  throw std::system_error(errc::pool_closed, what);
}

}  // namespace

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
  s_->cv.wait(lock, [&] { return s_->done(); });
  if (s_->failure) throw spawn_error(*s_->failure);
  return s_->status->exit_code();
}

std::optional<int> process_pool::task::join(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(s_->m);
  if (!s_->cv.wait_for(lock, timeout, [&] { return s_->done(); })) return std::nullopt;
  if (s_->failure) throw spawn_error(*s_->failure);
  return s_->status->exit_code();
}

process_pool::process_pool(std::size_t slots, process_options options)
    : state_(std::make_shared<detail::pool_state>()) {
  if (slots == 0) slots = std::max(1u, std::thread::hardware_concurrency());
  state_->slots = slots;
  state_->options = std::move(options);
}

process_pool::~process_pool() {
  try {
    terminate();
  } catch (...) {
    // Every child was signalled; nothing more to do in a destructor.
  }
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
  auto t = state_->make_task(std::move(w));
  {
    std::unique_lock<std::mutex> lock(state_->m);
    // Queued tasks go first: execute() does not overtake submit().
    state_->changed.wait(lock, [&] {
      return state_->closed || (state_->busy < state_->slots && state_->waiting.empty());
    });
    if (state_->closed) throw_closed("pkit::process_pool::execute");
    ++state_->busy;
    state_->finished.clear();
  }
  state_->launch(t);
  if (auto f = t->failure) throw spawn_error(*f);
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
    state_->finished.clear();
  }
  state_->launch(t);
  if (auto f = t->failure) {
    ec = f->error;
    return std::nullopt;
  }
  return task(t);
}

process_pool::task process_pool::submit(work w) {
  auto t = state_->make_task(std::move(w));
  {
    std::lock_guard<std::mutex> lock(state_->m);
    if (state_->closed) throw_closed("pkit::process_pool::submit");
    state_->finished.clear();
    if (state_->busy >= state_->slots) {
      state_->waiting.push_back(t);
      return task(t);
    }
    ++state_->busy;
  }
  state_->launch(t);
  return task(t);
}

void process_pool::close() {
  std::unique_lock<std::mutex> lock(state_->m);
  state_->closed = true;
  state_->changed.notify_all();
  state_->changed.wait(lock, [&] { return state_->busy == 0 && state_->waiting.empty(); });
  state_->finished.clear();
}

void process_pool::terminate() {
  std::deque<std::shared_ptr<detail::pool_task_state>> dropped;
  {
    std::lock_guard<std::mutex> lock(state_->m);
    state_->closed = true;
    dropped.swap(state_->waiting);
    state_->changed.notify_all();
  }
  for (auto& t : dropped)
    t->fail(spawn_failure{t->proc->name(), "queued", make_error_code(errc::pool_closed)});
  // A task may be between its slot and its start (another thread inside execute): stop
  // whatever runs until no slot is taken.
  std::unique_lock<std::mutex> lock(state_->m);
  while (state_->busy != 0) {
    std::vector<std::shared_ptr<detail::pool_task_state>> tasks;
    for (auto& [id, t] : state_->running) tasks.push_back(t);
    lock.unlock();
    for (auto& t : tasks) {
      if (t->proc->runs() == 0) continue;
      try {
        t->proc->stop();
      } catch (const std::system_error&) {
        // Already gone.
      }
    }
    lock.lock();
    state_->changed.wait_for(lock, std::chrono::milliseconds(100), [&] { return state_->busy == 0; });
  }
  state_->finished.clear();
}

}  // namespace pkit
