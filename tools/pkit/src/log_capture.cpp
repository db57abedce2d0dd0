#include <pkit/tool/log_capture.hpp>

#include "log_listeners.hpp"
#include "rotating_line_sink.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace pkit::tool {
namespace {

// One read's worth: a default pipe buffer, so one read usually empties a pipe, and the
// only per-read memory pkit has.
constexpr std::size_t read_size = 64 * 1024;
constexpr std::uint64_t wake_id = 0;

std::system_error os_error(const char* what) { return {errno, std::system_category(), what}; }

// One pipe of one run. Owned by the reader's table; the reader alone erases it.
struct pipe_state {
  std::string name;
  int stream = 1;
  std::uint64_t run = 0;
  pkit::unique_fd fd;
  std::shared_ptr<log_capture::line_sink> sink;  // null: listeners only
  std::string partial;                           // at most line_limit bytes
  bool sink_failed = false;
};

}  // namespace

struct log_capture::impl {
  options opts;
  pkit::unique_fd epoll;
  pkit::unique_fd wake;
  std::shared_ptr<detail::log_listeners> listeners;

  mutable std::mutex m;  // everything below, but the reader-only part
  std::map<std::pair<std::string, int>, std::shared_ptr<line_sink>> routes;
  std::map<std::string, std::weak_ptr<line_sink>> sinks_by_path;
  std::unordered_map<std::uint64_t, std::unique_ptr<pipe_state>> pipes;
  std::uint64_t next_pipe = 1;
  struct closed_waiter {
    std::set<std::uint64_t> pipes;  // the program's pipes open when it asked
    std::function<void()> fn;
  };
  std::list<closed_waiter> closed_waiters;  // when_closed()
  bool stopping = false;
  bool stopped = false;
  std::chrono::steady_clock::time_point deadline;

  // Reader thread only: sinks written to since their last flush.
  std::unordered_map<line_sink*, std::shared_ptr<line_sink>> dirty;
  std::array<char, read_size> buffer{};
  std::thread reader;

  explicit impl(options o) : opts(std::move(o)) {
    if (opts.line_limit == 0) throw std::invalid_argument("log_capture: line_limit must be > 0");
    if (!opts.make_sink) opts.make_sink = detail::make_rotating_line_sink;
    listeners = std::make_shared<detail::log_listeners>(opts.history_bytes);
    epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll) throw os_error("log_capture: epoll_create1");
    wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake) throw os_error("log_capture: eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = wake_id;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0) throw os_error("log_capture: epoll_ctl");
    reader = std::thread([this] { run(); });
  }

  void poke() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof one);  // full counter: already woken
  }

  // -- lines ----------------------------------------------------------------------------

  void emit(pipe_state& p, std::string_view text, bool continued) {
    if (p.sink && !p.sink_failed) {
      try {
        p.sink->write(text, continued);
        dirty.emplace(p.sink.get(), p.sink);
      } catch (const std::exception& e) {
        // Disk full, file removed under us...: the lines go to listeners only from now on
        // (the pipe is still read, so the child is not blocked for ever); said once.
        p.sink_failed = true;
        std::fprintf(stderr, "pkit: cannot write the log of %s (stream %d): %s\n", p.name.c_str(),
                     p.stream, e.what());
      }
    }
    listeners->deliver(p.name, p.stream, p.run, text, continued);
  }

  // `segment` continues the pipe's partial line; `ends_line`: a newline followed it.
  void append(pipe_state& p, std::string_view segment, bool ends_line) {
    const std::size_t limit = opts.line_limit;
    if (p.partial.empty() && ends_line && segment.size() <= limit) {
      emit(p, segment, false);  // the common case: a whole line in one read, no copy
      return;
    }
    while (p.partial.size() + segment.size() > limit) {
      const std::size_t take = limit - p.partial.size();
      p.partial.append(segment.substr(0, take));
      segment.remove_prefix(take);
      emit(p, p.partial, true);
      p.partial.clear();
    }
    p.partial.append(segment);
    if (ends_line) {
      emit(p, p.partial, false);
      p.partial.clear();
    }
  }

  void feed(pipe_state& p, std::string_view data) {
    while (!data.empty()) {
      const auto nl = data.find('\n');
      if (nl == std::string_view::npos) {
        append(p, data, false);
        return;
      }
      append(p, data.substr(0, nl), true);
      data.remove_prefix(nl + 1);
    }
  }

  // EOF (or a read error): the run's last partial line is a line of its own. The pipe
  // leaves the table first, so that a failing write cannot leave an EOF'd pipe in epoll
  // (level-triggered: it would be handled again and again).
  // The partial line goes out while the pipe is still in the table: a when_closed()
  // that comes meanwhile still sees the pipe open and waits for that last line.
  void finish(std::uint64_t id, pipe_state& p) {
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, p.fd.get(), nullptr);
    if (!p.partial.empty()) {
      try {
        emit(p, p.partial, false);
      } catch (const std::exception& e) {  // out of memory in a listener's copy
        std::fprintf(stderr, "pkit: log capture: %s\n", e.what());
      }
      p.partial.clear();
    }
    std::unique_ptr<pipe_state> gone;  // destroyed (closed) after the lock is released
    std::vector<std::function<void()>> due;
    {
      std::lock_guard<std::mutex> lock(m);
      if (auto i = pipes.find(id); i != pipes.end()) {
        gone = std::move(i->second);
        pipes.erase(i);
      }
      due = take_when_closed(id);
    }
    for (auto& fn : due) fn();
  }

  // Under m: pipe `id` is done; the waiters whose pipes are now all done.
  std::vector<std::function<void()>> take_when_closed(std::uint64_t id) {
    std::vector<std::function<void()>> due;
    for (auto i = closed_waiters.begin(); i != closed_waiters.end();) {
      i->pipes.erase(id);
      if (i->pipes.empty()) {
        due.push_back(std::move(i->fn));
        i = closed_waiters.erase(i);
      } else {
        ++i;
      }
    }
    return due;
  }

  // One read; false once the pipe is finished. Level-triggered epoll: a pipe with more
  // data is back in the next round, after the other ready pipes had their turn.
  bool read_once(std::uint64_t id, pipe_state& p) {
    const ssize_t n = ::read(p.fd.get(), buffer.data(), buffer.size());
    if (n > 0) {
      feed(p, std::string_view(buffer.data(), static_cast<std::size_t>(n)));
      return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    finish(id, p);
    return false;
  }

  pipe_state* find(std::uint64_t id) {
    std::lock_guard<std::mutex> lock(m);
    auto i = pipes.find(id);
    return i == pipes.end() ? nullptr : i->second.get();
  }

  void flush_dirty() {
    for (auto& [raw, sink] : dirty) {
      try {
        sink->flush();
      } catch (const std::exception&) {
        // As for a failed write: reported by the write that failed, if any.
      }
    }
    dirty.clear();
  }

  // -- the reader thread ------------------------------------------------------------------

  // How long the next epoll_wait may block (ms, -1: no limit), or nullopt: time to end.
  std::optional<int> next_timeout() {
    std::lock_guard<std::mutex> lock(m);
    if (!stopping) return -1;
    if (pipes.empty()) return std::nullopt;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    return static_cast<int>(std::min<std::int64_t>(left.count() + 1, 60000));
  }

  void run() noexcept {
    std::array<epoll_event, 64> events{};
    for (;;) {
      auto timeout = next_timeout();
      if (!timeout) break;
      // Records are flushed once the pipes are idle: a busy stream is written in stdio's
      // blocks, an idle one reaches the file at once (for `tail -f` on the file).
      if (!dirty.empty()) {
        const int n = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), 0);
        if (n == 0) flush_dirty();
        if (n > 0) {
          handle(events.data(), n);
          continue;
        }
      }
      const int n = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), *timeout);
      if (n > 0) handle(events.data(), n);
    }
    close_all();
  }

  void handle(const epoll_event* events, int n) {
    for (int i = 0; i < n; ++i) {
      const std::uint64_t id = events[i].data.u64;
      if (id == wake_id) {
        std::uint64_t count = 0;
        [[maybe_unused]] auto r = ::read(wake.get(), &count, sizeof count);
        continue;
      }
      if (pipe_state* p = find(id)) {
        try {
          read_once(id, *p);
        } catch (const std::exception& e) {  // out of memory in a listener's copy
          // (`p` may be gone: a pipe at EOF leaves the table before its last line.)
          std::fprintf(stderr, "pkit: log capture: %s\n", e.what());
        }
      }
    }
  }

  // The deadline has passed (or every pipe is done): what is readable now is read, the
  // last partial lines written, every pipe closed, every sink flushed.
  void close_all() noexcept {
    std::vector<std::uint64_t> ids;
    {
      std::lock_guard<std::mutex> lock(m);
      for (auto& [id, p] : pipes) ids.push_back(id);
    }
    for (auto id : ids) {
      pipe_state* p = find(id);
      if (!p) continue;
      try {
        // Bounded: a child still flooding its pipe must not hold the stop for ever.
        for (int rounds = 0; rounds < 16 && read_once(id, *p); ++rounds) {
        }
        if ((p = find(id))) finish(id, *p);
      } catch (const std::exception&) {
      }
    }
    std::vector<std::function<void()>> left;  // pipes given up on: their waiters go now
    {
      std::lock_guard<std::mutex> lock(m);
      pipes.clear();
      flush_dirty();
      for (auto& w : closed_waiters) left.push_back(std::move(w.fn));
      closed_waiters.clear();
    }
    for (auto& fn : left) {
      try {
        fn();
      } catch (...) {
      }
    }
  }
};

log_capture::log_capture() : log_capture(options{}) {}

log_capture::log_capture(options opts) : impl_(std::make_unique<impl>(std::move(opts))) {}

log_capture::~log_capture() { stop(); }

void log_capture::configure(const std::string& name, int stream, const output_spec& spec) {
  if (stream != 1 && stream != 2)
    throw std::invalid_argument("log_capture: stream " + std::to_string(stream) + " of " + name +
                                " is neither 1 (stdout) nor 2 (stderr)");
  auto& d = *impl_;
  if (spec.mode != output_spec::kind::log) {
    std::lock_guard<std::mutex> lock(d.m);
    d.routes.erase({name, stream});
    return;
  }
  if (spec.path.empty()) throw std::invalid_argument("log_capture: the log of " + name + " has no path");
  if (spec.max_bytes == 0)
    throw std::invalid_argument("log_capture: max_bytes of " + spec.path.string() + " is 0");
  const std::string key = spec.path.lexically_normal().string();
  auto existing = [&]() -> std::shared_ptr<line_sink> {
    auto i = d.sinks_by_path.find(key);
    return i == d.sinks_by_path.end() ? nullptr : i->second.lock();
  };
  std::shared_ptr<line_sink> sink;
  {
    std::lock_guard<std::mutex> lock(d.m);
    sink = existing();
  }
  // The file is opened without the lock: attach() (a CAF worker) must not wait for a disk.
  std::shared_ptr<line_sink> made = sink ? nullptr : d.opts.make_sink(spec);
  std::lock_guard<std::mutex> lock(d.m);
  if (!sink) sink = existing();  // another configure of the same path won the race
  if (!sink) {
    sink = std::move(made);
    d.sinks_by_path[key] = sink;
  }
  d.routes[{name, stream}] = std::move(sink);
  // Paths nobody uses any more are forgotten (their sinks close with their last pipe).
  std::erase_if(d.sinks_by_path, [](const auto& e) { return e.second.expired(); });
}

void log_capture::attach(const std::string& name, int stream, std::uint64_t run,
                         pkit::unique_fd read_end) noexcept {
  auto& d = *impl_;
  if (!read_end) return;
  try {
    const int flags = ::fcntl(read_end.get(), F_GETFL);
    if (flags < 0 || ::fcntl(read_end.get(), F_SETFL, flags | O_NONBLOCK) != 0) return;
    auto p = std::make_unique<pipe_state>();
    p->name = name;
    p->stream = stream;
    p->run = run;
    p->fd = std::move(read_end);
    p->partial.reserve(std::min<std::size_t>(d.opts.line_limit, 256));
    std::lock_guard<std::mutex> lock(d.m);
    if (d.stopping) return;  // closed: the child's writes fail with EPIPE
    if (auto i = d.routes.find({name, stream}); i != d.routes.end()) p->sink = i->second;
    const std::uint64_t id = d.next_pipe++;
    epoll_event ev{};
    ev.events = EPOLLIN;  // EPOLLHUP/EPOLLERR are always reported
    ev.data.u64 = id;
    pipe_state& ref = *p;
    d.pipes.emplace(id, std::move(p));
    if (::epoll_ctl(d.epoll.get(), EPOLL_CTL_ADD, ref.fd.get(), &ev) != 0) d.pipes.erase(id);
  } catch (...) {
    // Out of memory: the pipe is closed (read_end or the pipe_state owns it).
  }
}

void log_capture::when_closed(const std::string& name, std::function<void()> fn) {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.m);
    // Only the pipes open now: a later run of a program of that name is not waited for.
    std::set<std::uint64_t> open;
    for (const auto& [id, p] : d.pipes)
      if (p->name == name) open.insert(id);
    if (!open.empty() && !d.stopped) {
      d.closed_waiters.push_back({std::move(open), std::move(fn)});
      return;
    }
  }
  fn();
}

std::size_t log_capture::open_pipes() const {
  std::lock_guard<std::mutex> lock(impl_->m);
  return impl_->pipes.size();
}

void log_capture::stop() noexcept {
  if (!impl_) return;
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.m);
    if (d.stopped) return;
    d.stopped = true;
    d.stopping = true;
    d.deadline = std::chrono::steady_clock::now() + d.opts.drain_timeout;
  }
  d.poke();
  if (d.reader.joinable()) d.reader.join();
}

log_capture::listener_handle log_capture::add_listener(const std::string& name, listener fn,
                                                       const history_handler& history) {
  const std::uint64_t id = impl_->listeners->add(name, std::move(fn), history);
  return listener_handle(impl_->listeners, id);
}

log_capture::listener_handle::listener_handle(std::shared_ptr<detail::log_listeners> owner,
                                              std::uint64_t id) noexcept
    : owner_(std::move(owner)), id_(id) {}

log_capture::listener_handle::listener_handle(listener_handle&& other) noexcept
    : owner_(std::move(other.owner_)), id_(std::exchange(other.id_, 0)) {}

log_capture::listener_handle& log_capture::listener_handle::operator=(listener_handle&& other) noexcept {
  if (this != &other) {
    reset();
    owner_ = std::move(other.owner_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

log_capture::listener_handle::~listener_handle() { reset(); }

void log_capture::listener_handle::reset() noexcept {
  if (owner_) owner_->remove(id_);
  owner_.reset();
  id_ = 0;
}

}  // namespace pkit::tool
