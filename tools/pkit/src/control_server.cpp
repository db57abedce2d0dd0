#include <pkit/tool/control_server.hpp>

#include "control_connection.hpp"
#include "control_socket.hpp"

#include <pkit/tool/control_protocol.hpp>
#include <pkit/tool/version.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace pkit::tool {

using detail::connection;
using json = nlohmann::json;

namespace {

constexpr std::uint64_t listener_key = 1;
constexpr std::uint64_t wake_key = 2;
constexpr std::uint64_t first_client_key = 16;
constexpr auto accept_backoff = std::chrono::milliseconds(100);

/// Best effort, never blocking: used for the one line a refused peer gets.
void send_line_now(int fd, const std::string& line) noexcept {
  [[maybe_unused]] const auto n = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

struct control_server::impl {
  control_handler& handler;
  control_server_options opt;
  detail::bound_socket listener;
  unique_fd epoll;
  unique_fd wake_fd;

  // Event-loop thread only.
  std::unordered_map<std::uint64_t, std::shared_ptr<connection>> conns;
  std::unordered_map<const connection*, std::uint64_t> keys;
  std::uint64_t next_key = first_client_key;
  std::optional<std::chrono::steady_clock::time_point> accept_paused_until;

  // Wake-ups for the loop, from workers and sinks.
  std::mutex wake_m;
  std::vector<std::shared_ptr<connection>> woken;
  bool stopping = false;

  // The workers' queue.
  std::mutex task_m;
  std::condition_variable task_cv;
  std::deque<std::function<void()>> tasks;
  bool workers_stop = false;

  std::atomic<bool> draining{false};  ///< stopping: no new requests, in-flight ones finish

  std::atomic<std::uint64_t> n_accepted{0}, n_refused{0}, n_requests{0}, n_dropped{0}, n_pauses{0};
  std::atomic<std::size_t> n_clients{0};

  std::mutex stop_m;
  bool stopped = false;
  std::thread loop_thread;
  std::vector<std::thread> workers;

  impl(control_handler& h, control_server_options o) : handler(h), opt(std::move(o)) {
    listener = detail::listen_at(opt.socket_path);
    try {
      start();
    } catch (...) {
      detail::remove_socket_file(opt.socket_path, listener);
      throw;
    }
  }

  void start() {
    epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    wake_fd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!epoll || !wake_fd) throw control_server_error(control_server_error::kind::system, "epoll/eventfd: " + std::string(std::strerror(errno)));
    watch(listener.fd.get(), EPOLLIN, listener_key);
    watch(wake_fd.get(), EPOLLIN, wake_key);
    for (unsigned i = 0; i < std::max(1u, opt.workers); ++i) workers.emplace_back([this] { work(); });
    loop_thread = std::thread([this] { loop(); });
  }

  void watch(int fd, unsigned events, std::uint64_t key, int op = EPOLL_CTL_ADD) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = key;
    if (::epoll_ctl(epoll.get(), op, fd, &ev) != 0 && op == EPOLL_CTL_ADD)
      throw control_server_error(control_server_error::kind::system, "epoll_ctl: " + std::string(std::strerror(errno)));
  }

  // ---------------------------------------------------------------- cross-thread

  void wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd.get(), &one, sizeof one);
  }

  /// Puts `c` on the loop's list (once until the loop takes it) and wakes the loop.
  void wake_up(const std::shared_ptr<connection>& c) {
    // Once on the list, the loop will see everything queued until it takes `c` off it.
    if (c->scheduled.exchange(true)) return;
    {
      std::lock_guard lock(wake_m);
      woken.push_back(c);
    }
    wake();
  }

  /// Runs `task` on a worker; once the workers are stopping, here and now (only stream
  /// destructions come that late: no request is dispatched while draining).
  void post(std::function<void()> task) {
    {
      std::lock_guard lock(task_m);
      if (!workers_stop) {
        tasks.push_back(std::move(task));
        task_cv.notify_one();
        return;
      }
    }
    task();
  }

  void work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(task_m);
        task_cv.wait(lock, [this] { return workers_stop || !tasks.empty(); });
        if (tasks.empty()) return;  // stopping, and nothing left (stream destructions included)
        task = std::move(tasks.front());
        tasks.pop_front();
      }
      task();
    }
  }

  /// A worker's answer to the request in flight.
  void finish_request(const std::shared_ptr<connection>& c, std::string line) {
    {
      std::lock_guard lock(c->m);
      if (c->gone) return;
      c->enqueue_locked(std::move(line), opt.max_queued_bytes);
      c->request_done = true;
    }
    wake_up(c);
  }

  // ---------------------------------------------------------------- workers

  // A request taken is carried out even if its client has hung up since (a ctl that gave
  // up while the workers were busy): like one under way, only its reply goes nowhere
  // (finish_request, open_stream).
  void process(const std::shared_ptr<connection>& c, const std::string& line) {
    auto decoded = decode_request(line);
    if (draining && decoded.request)
      return finish_request(c, encode_reply(decoded.id, control_reply::failure("shutting_down", "pkit run is shutting down")));
    if (!decoded.request) return finish_request(c, encode_reply(decoded.id, decoded.error));
    auto& req = *decoded.request;
    if (req.command == "hello") {
      json result{{"protocol", control_protocol_version}, {"version", std::string(version())}, {"pid", ::getpid()}};
      return finish_request(c, encode_reply(req.id, control_reply::success(std::move(result))));
    }
    if (req.is_stream) return open_stream(c, req);
    control_reply reply;
    try {
      reply = handler.handle(req.command, req.args);
    } catch (const std::exception& e) {
      reply = control_reply::failure("internal", std::string("the daemon failed to answer: ") + e.what());
    }
    finish_request(c, encode_reply(req.id, reply));
  }

  void open_stream(const std::shared_ptr<connection>& c, const control_request& req) {
    {
      std::lock_guard lock(c->m);
      c->phase = connection::stream_phase::opening;
    }
    std::weak_ptr<connection> weak = c;
    control_handler::sink to = [this, weak, id = req.id](const json& item) {
      auto conn = weak.lock();
      return conn && push_item(conn, id, item);
    };
    control_reply error = control_reply::failure("internal", "the daemon could not open the stream");
    std::unique_ptr<control_stream> stream;
    try {
      stream = handler.open_stream(req.command, req.args, std::move(to), error);
    } catch (const std::exception& e) {
      error = control_reply::failure("internal", std::string("the daemon failed to open the stream: ") + e.what());
    }
    {
      std::lock_guard lock(c->m);
      if (stream && !c->gone) {
        // The ok reply first, then whatever the stream produced while it was opening.
        c->enqueue_locked(encode_reply(req.id, control_reply::success({{"stream", req.command}})), opt.max_queued_bytes);
        for (auto& line : c->pending) c->enqueue_locked(std::move(line), opt.max_queued_bytes);
        c->phase = connection::stream_phase::open;
        c->stream = std::move(stream);
        c->stream_id = req.id;
      } else if (!c->gone) {
        c->enqueue_locked(encode_reply(req.id, error.ok ? control_reply::failure("internal", "no stream") : error),
                          opt.max_queued_bytes);
        c->phase = connection::stream_phase::none;
      }
      c->pending.clear();
      c->pending_bytes = 0;
      c->request_done = true;
    }
    stream.reset();  // the client left while it opened: unhook now, outside the lock
    wake_up(c);
  }

  /// A sink's call: queue one item (or, for a null item, the stream's end).
  bool push_item(const std::shared_ptr<connection>& c, const json& id, const json& item) {
    const bool is_end = item.is_null();
    const bool go_on = c->queue_stream_line(is_end ? encode_end(id, "ended") : encode_item(id, item), is_end, opt.max_queued_bytes);
    wake_up(c);
    return go_on;
  }

  // ---------------------------------------------------------------- event loop

  void loop() {
    std::array<epoll_event, 64> events{};
    for (;;) {
      const int n = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), accept_timeout_ms());
      if (n < 0 && errno != EINTR) {
        spdlog::error("control: epoll_wait failed: {}", std::strerror(errno));
        break;
      }
      resume_accepting_if_due();
      for (int i = 0; i < n; ++i) {
        const auto key = events[i].data.u64;
        if (key == listener_key)
          accept_clients();
        else if (key == wake_key)
          drain_wake_ups();
        else if (auto it = conns.find(key); it != conns.end())
          on_client_event(std::shared_ptr<connection>(it->second), events[i].events);  // a copy: close() erases it
      }
      std::lock_guard lock(wake_m);
      if (stopping) break;
    }
    shut_down_clients();
  }

  int accept_timeout_ms() const {
    if (!accept_paused_until) return -1;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*accept_paused_until - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::int64_t>(0, left.count()) + 1);
  }

  void resume_accepting_if_due() {
    if (accept_paused_until && std::chrono::steady_clock::now() >= *accept_paused_until) {
      accept_paused_until.reset();
      watch(listener.fd.get(), EPOLLIN, listener_key, EPOLL_CTL_MOD);
    }
  }

  void accept_clients() {
    for (;;) {
      unique_fd fd(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: the pending connection stays pending. Stop listening
          // for a while instead of spinning on an accept that keeps failing (FAULTS F4).
          if (n_pauses++ == 0) spdlog::warn("control: cannot accept a client ({}); pausing accepts", std::strerror(errno));
          accept_paused_until = std::chrono::steady_clock::now() + accept_backoff;
          watch(listener.fd.get(), 0, listener_key, EPOLL_CTL_MOD);
        }
        return;  // EAGAIN, or a client that vanished (ECONNABORTED): next time
      }
      admit(std::move(fd));
    }
  }

  /// max_clients, and at most a quarter of the descriptors the program may open: the
  /// tree it serves needs the rest (pidfds, pipes, log files), and 1024 idle clients
  /// under a common soft limit of 1024 left it none.
  std::size_t client_limit() const {
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur == RLIM_INFINITY) return opt.max_clients;
    return std::min<std::size_t>(opt.max_clients, std::max<std::size_t>(1, nofile.rlim_cur / 4));
  }

  void admit(unique_fd fd) {
    const long uid = detail::peer_uid(fd.get());
    if (!detail::peer_allowed(uid)) {
      ++n_refused;
      spdlog::warn("control: refused a client of uid {} at {} (only uid {} or root may control)", uid,
                   opt.socket_path.string(), ::geteuid());
      send_line_now(fd.get(), encode_reply(nullptr, control_reply::failure("permission_denied",
                                                                           "permission denied: uid " + std::to_string(uid) +
                                                                               " may not control this pkit run")));
      return;
    }
    if (conns.size() >= client_limit()) {
      send_line_now(fd.get(), encode_reply(nullptr, control_reply::failure("too_many_clients", "too many control clients; try again")));
      return;
    }
    auto c = std::make_shared<connection>();
    c->fd = std::move(fd);
    const auto key = next_key++;
    c->epoll_events = EPOLLIN | EPOLLRDHUP;
    watch(c->fd.get(), c->epoll_events, key);
    keys[c.get()] = key;
    conns.emplace(key, std::move(c));
    ++n_accepted;
    ++n_clients;
  }

  void drain_wake_ups() {
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(wake_fd.get(), &count, sizeof count);
    std::vector<std::shared_ptr<connection>> list;
    {
      std::lock_guard lock(wake_m);
      list.swap(woken);
    }
    for (auto& c : list) {
      c->scheduled = false;
      if (!c->closed) service(c);
    }
  }

  void on_client_event(const std::shared_ptr<connection>& c, unsigned events) {
    if (events & EPOLLERR) return close(c, nullptr);
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) read_input(*c);
    if (c->closed) return;
    // Nobody left to answer: the peer has shut both ways (a half-close is EPOLLRDHUP, and
    // its last request is still answered). Also with a request taken — it runs to its
    // end, its reply goes nowhere (`gone`): the hang-up stays reported, level-triggered,
    // whatever the interest, and kept the loop spinning until the request was done.
    if (events & EPOLLHUP) return close(c, nullptr);
    service(c);
  }

  void read_input(connection& c) {
    std::array<char, 64 * 1024> buf;  // NOLINT: filled by recv
    for (int round = 0; round < 16 && !c.peer_eof; ++round) {
      const auto n = ::recv(c.fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n == 0) {
        c.peer_eof = true;
      } else if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) c.peer_eof = true;
        return;
      } else if (!c.streaming) {
        // A stream's connection takes no requests: its input is discarded unread.
        c.in.append(buf.data(), static_cast<std::size_t>(n));
        if (c.in.size() > opt.max_request_bytes && c.in.find('\n') == std::string::npos) return;
        if (c.busy && c.in.size() > 2 * opt.max_request_bytes) return;  // pipelined too far ahead: wait
      }
    }
  }

  /// Frames complete lines into requests, one at a time per client. What is framed is
  /// cut from the input once, at the end: cutting each line as it came moved the rest of
  /// the input every time — a flood of blank lines (never a request, so the loop went on)
  /// cost the loop thread seconds per MiB, every other client waiting.
  void dispatch(const std::shared_ptr<connection>& c, bool closing) {
    std::size_t from = 0;
    struct consume {
      std::string& in;
      std::size_t& from;
      ~consume() { in.erase(0, from); }
    } cut{c->in, from};
    while (!c->busy && !c->streaming && !closing && !draining) {
      auto pos = c->in.find('\n', from);
      if (pos == std::string::npos) {
        if (c->in.size() - from > opt.max_request_bytes) return reject_too_large(c);
        if (!c->peer_eof || c->in.size() == from) return;
        pos = c->in.size();  // the client's last request, sent without a newline before EOF
      }
      if (pos - from > opt.max_request_bytes) return reject_too_large(c);
      std::string_view line(c->in.data() + from, pos - from);
      from = std::min(pos + 1, c->in.size());
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
      ++n_requests;
      c->busy = true;
      post([this, c, line = std::string(line)] { process(c, line); });
    }
  }

  void reject_too_large(const std::shared_ptr<connection>& c) {
    ++n_dropped;
    spdlog::warn("control: a client sent a request over {} bytes; disconnecting it", opt.max_request_bytes);
    c->in.clear();
    c->in.shrink_to_fit();
    std::lock_guard lock(c->m);
    const std::string message = "request larger than " + std::to_string(opt.max_request_bytes) + " bytes";
    c->enqueue_locked(encode_reply(nullptr, control_reply::failure("too_large", message)), opt.max_queued_bytes);
    c->close_after_flush = true;
  }

  /// Brings a client up to date: finished requests, output, next requests, interest.
  void service(const std::shared_ptr<connection>& c) {
    bool closing = false;
    bool broken = false;
    bool want_out = false;
    const char* drop_reason = nullptr;
    {
      std::lock_guard lock(c->m);
      if (c->request_done) {
        c->request_done = false;
        c->busy = false;
        c->streaming = c->phase == connection::stream_phase::open;
      }
      if (c->overflow) {
        drop_reason = "it does not read its replies (output queue full)";
      } else {
        broken = !c->flush_locked();
        want_out = !c->out.empty();
        closing = c->close_after_flush;
      }
    }
    if (drop_reason != nullptr) {
      ++n_dropped;
      return close(c, drop_reason);
    }
    // A stream that ended while it was still opening: its ok reply is not queued yet.
    if (broken || (closing && !want_out && !c->busy)) return close(c, nullptr);
    dispatch(c, closing);
    {
      std::lock_guard lock(c->m);
      want_out = !c->out.empty();
      closing = c->close_after_flush;
    }
    if (closing && !want_out && !c->busy) return close(c, nullptr);
    // A client that half-closed after its request has had its answer once nothing is left
    // to send — unless that answer is a stream, which runs until the client closes both
    // ways (EPOLLHUP) or stops reading (PROTOCOL.md): `printf '{"command":"events"}\n' |
    // socat - UNIX-CONNECT:...` got the ok reply and then the stream's end at once.
    if (c->peer_eof && !c->busy && !c->streaming && !want_out) return close(c, nullptr);
    update_interest(*c, want_out, closing);
  }

  void update_interest(connection& c, bool want_out, bool closing) {
    unsigned events = 0;
    const bool backlog = c.busy && c.in.size() > 2 * opt.max_request_bytes;
    if (!c.peer_eof && !closing && !backlog) events |= EPOLLIN | EPOLLRDHUP;
    if (want_out) events |= EPOLLOUT;
    if (events != c.epoll_events) {
      c.epoll_events = events;
      watch(c.fd.get(), events, keys.at(&c), EPOLL_CTL_MOD);
    }
  }

  void close(std::shared_ptr<connection> c, const char* reason) {  // by value: conns holds the other copy
    if (c->closed) return;
    if (reason != nullptr) spdlog::warn("control: disconnecting a client: {}", reason);
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, c->fd.get(), nullptr);
    c->fd.reset();
    c->closed = true;
    conns.erase(keys.at(c.get()));
    keys.erase(c.get());
    --n_clients;
    std::shared_ptr<control_stream> stream;
    {
      std::lock_guard lock(c->m);
      c->gone = true;
      c->out.clear();
      c->out_bytes = 0;
      stream = std::move(c->stream);
    }
    // Unhooking a stream may wait for the daemon: never on the loop thread.
    if (stream) post([stream]() mutable { stream.reset(); });
  }

  void shut_down_clients() {
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, listener.fd.get(), nullptr);
    listener.fd.reset();
    std::vector<std::shared_ptr<connection>> all;
    for (auto& [key, c] : conns) all.push_back(c);
    for (auto& c : all) {
      {
        std::lock_guard lock(c->m);
        if (c->phase == connection::stream_phase::open && !c->close_after_flush)
          c->enqueue_locked(encode_end(c->stream_id, "shutdown"), opt.max_queued_bytes);
        c->flush_locked();
      }
      close(c, nullptr);
    }
  }

  void stop() {
    {
      std::lock_guard lock(stop_m);
      if (stopped) return;
      stopped = true;
    }
    // First the requests in flight: their replies (a `shutdown`'s "ok" above all) are
    // queued while the loop still runs and flushes; then the loop and the clients.
    draining = true;
    {
      std::lock_guard lock(task_m);
      workers_stop = true;
    }
    task_cv.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
    {
      std::lock_guard lock(wake_m);
      stopping = true;
    }
    wake();
    if (loop_thread.joinable()) loop_thread.join();
    {
      std::lock_guard lock(wake_m);
      woken.clear();  // connections kept alive only by late wake-ups
    }
    detail::remove_socket_file(opt.socket_path, listener);
    listener.claim.reset();  // after the removal: a next server's socket is never removed
  }
};

control_server::control_server(control_handler& handler, control_server_options options)
    : impl_(std::make_unique<impl>(handler, std::move(options))) {}

control_server::~control_server() { stop(); }

void control_server::stop() { impl_->stop(); }

const std::filesystem::path& control_server::socket_path() const noexcept { return impl_->opt.socket_path; }

control_server_stats control_server::stats() const {
  control_server_stats s;
  s.accepted = impl_->n_accepted;
  s.refused_peers = impl_->n_refused;
  s.requests = impl_->n_requests;
  s.dropped_clients = impl_->n_dropped;
  s.accept_pauses = impl_->n_pauses;
  s.clients = impl_->n_clients;
  return s;
}

}  // namespace pkit::tool
