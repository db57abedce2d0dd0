#include <pkit/process_pool.hpp>

#include <pkit/errc.hpp>
#include <pkit/process.hpp>

#include <map>
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
};

struct pool_state {
  std::size_t slots = 1;
  process_options options;
  std::mutex m;
  std::condition_variable changed;
  std::size_t busy = 0;
  bool closed = false;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, std::shared_ptr<pool_task_state>> running;
  // Finished tasks are parked here by the reaper thread and dropped by the next caller on
  // another thread: a process must not be destroyed from inside its own on_exit.
  std::vector<std::shared_ptr<pool_task_state>> finished;

  // The slot is given back before the task is marked finished, so that whoever saw the
  // task finish (join) also sees its slot free.
  void finish(const std::shared_ptr<pool_task_state>& t, exit_status st) {
    {
      std::lock_guard<std::mutex> lock(m);
      if (running.erase(t->id) != 0) finished.push_back(t);
      --busy;
      changed.notify_all();
    }
    std::lock_guard<std::mutex> lock(t->m);
    t->state = process_pool::task_state::finished;
    t->status = st;
    t->cv.notify_all();
  }
};

}  // namespace detail

namespace {

std::unique_ptr<process> make_process(process_pool::work&& w, process_options o) {
  return std::visit([&](auto&& target) { return std::make_unique<process>(std::move(target), std::move(o)); },
                    std::move(w));
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

int process_pool::task::join() const {
  std::unique_lock<std::mutex> lock(s_->m);
  s_->cv.wait(lock, [&] { return s_->status.has_value(); });
  return s_->status->exit_code();
}

std::optional<int> process_pool::task::join(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(s_->m);
  if (!s_->cv.wait_for(lock, timeout, [&] { return s_->status.has_value(); })) return std::nullopt;
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

process_pool::task process_pool::execute(work w) {
  std::uint64_t id;
  std::vector<std::shared_ptr<detail::pool_task_state>> drop;
  {
    std::unique_lock<std::mutex> lock(state_->m);
    state_->changed.wait(lock, [&] { return state_->closed || state_->busy < state_->slots; });
    if (state_->closed) throw std::system_error(errc::pool_closed, "pkit::process_pool::execute");
    ++state_->busy;
    id = state_->next_id++;
    drop.swap(state_->finished);
  }
  auto t = std::make_shared<detail::pool_task_state>();
  t->id = id;
  process_options o = state_->options;
  std::weak_ptr<detail::pool_state> weak_pool = state_;
  std::weak_ptr<detail::pool_task_state> weak_task = t;
  o.on_exit = [weak_pool, weak_task, user = state_->options.on_exit](process& p) {
    auto pool = weak_pool.lock();
    auto task = weak_task.lock();
    if (pool && task) pool->finish(task, p.status().value_or(exit_status::exited(255)));
    if (user) user(p);
  };
  t->proc = make_process(std::move(w), std::move(o));
  {
    std::lock_guard<std::mutex> lock(state_->m);
    state_->running.emplace(id, t);
  }
  std::error_code ec;
  pid_t pid = t->proc->start(ec);
  if (ec) {
    std::lock_guard<std::mutex> lock(state_->m);
    state_->running.erase(id);
    --state_->busy;
    state_->changed.notify_all();
    auto failure = t->proc->last_failure();
    throw spawn_error(failure.value_or(spawn_failure{t->proc->name(), "start", ec}));
  }
  {
    std::lock_guard<std::mutex> lock(t->m);
    if (t->state == task_state::ready) {
      t->state = task_state::running;
      t->pid = pid;
    }
  }
  return task(t);
}

std::optional<process_pool::task> process_pool::try_execute(work w, std::error_code& ec) {
  ec.clear();
  {
    std::lock_guard<std::mutex> lock(state_->m);
    if (state_->closed) {
      ec = errc::pool_closed;
      return std::nullopt;
    }
    if (state_->busy >= state_->slots) {
      ec = errc::pool_full;
      return std::nullopt;
    }
  }
  // A slot was free a moment ago; execute() waits only if another thread took it since.
  try {
    return execute(std::move(w));
  } catch (const std::system_error& e) {
    ec = e.code();
    return std::nullopt;
  }
}

void process_pool::close() {
  std::unique_lock<std::mutex> lock(state_->m);
  state_->closed = true;
  state_->changed.notify_all();
  state_->changed.wait(lock, [&] { return state_->busy == 0; });
  state_->finished.clear();
}

void process_pool::terminate() {
  std::vector<std::shared_ptr<detail::pool_task_state>> tasks;
  {
    std::lock_guard<std::mutex> lock(state_->m);
    state_->closed = true;
    state_->changed.notify_all();
    for (auto& [id, t] : state_->running) tasks.push_back(t);
  }
  for (auto& t : tasks) {
    if (t->proc->runs() == 0) continue;
    try {
      t->proc->stop();
    } catch (const std::system_error&) {
      // Already gone.
    }
  }
  std::unique_lock<std::mutex> lock(state_->m);
  state_->changed.wait(lock, [&] { return state_->busy == 0; });
  state_->finished.clear();
}

}  // namespace pkit
