#include "detail/fork_server_core.hpp"

#include "detail/fork_server_wire.hpp"
#include "detail/reaper.hpp"
#include "detail/trampoline.hpp"

#include <pkit/errc.hpp>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <sys/epoll.h>
#include "detail/pidfd.hpp"
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

namespace pkit::detail {
namespace {

using namespace wire;

void enlarge_buffers(int sock) {
  int size = 4 * 1024 * 1024;
  // The Force variants pass the system limit when we are privileged; else best effort.
  if (::setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
    ::setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (::setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    ::setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

std::error_code transport_error(int e) {
  if (e == ETIMEDOUT) return errc::fork_server_timeout;
  return errc::fork_server_unavailable;  // EOF, EPIPE, ECONNRESET: the server is gone
}

}  // namespace

std::shared_ptr<fork_server_core> fork_server_core::launch(fork_server::registry targets,
                                                           const fork_server::options& options,
                                                           const fork_server_faults& faults) {
  std::shared_ptr<fork_server_core> core(new fork_server_core(std::move(targets)));
  core->request_timeout_ = options.request_timeout;
  core->faults_ = faults;
  int ctl[2], ev[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) != 0)
    throw std::system_error(errno, std::system_category(), "pkit fork server: socketpair");
  unique_fd ctl_parent(ctl[0]), ctl_server(ctl[1]);
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ev) != 0)
    throw std::system_error(errno, std::system_category(), "pkit fork server: socketpair");
  unique_fd ev_parent(ev[0]), ev_server(ev[1]);
  enlarge_buffers(ev_server.get());
  enlarge_buffers(ev_parent.get());

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::system_category(), "pkit fork server: fork");
  if (pid == 0) {
    // The server. It dies with its parent, leads its own process group (a terminal's ^C
    // for the program must not take it down), runs no handler of the program's, and keeps
    // only stdio and its two sockets.
    // Its exits are raw exit_group calls and it drops the program's unwritten stdio
    // buffers at once: no path (a sanitizer's _exit interceptor flushes streams) may write
    // the program's output a second time.
    forget_inherited_stdio();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) exit_now(0);
    ::setpgid(0, 0);
    reset_signal_dispositions();
    set_signal_mask(nullptr);
    int keep[2] = {std::min(ctl_server.get(), ev_server.get()), std::max(ctl_server.get(), ev_server.get())};
    child_setup s;
    s.keep = keep;
    s.keep_count = 2;
    s.new_process_group = false;
    s.die_with_parent = false;
    int none = -1;
    apply_child_setup(s, none);
    fork_server_main(core->targets_, ctl_server.get(), ev_server.get(), faults);
  }
  core->server_pid_ = pid;
  if (faults.server_pid != nullptr) *faults.server_pid = pid;
  using watch_fault = fork_server_faults::watch_fault;
  const auto fault_if = [&faults](watch_fault where) {
    if (faults.watch == where)
      throw std::system_error(EMFILE, std::system_category(), "pkit fork server: test fault");
  };
  if (faults.watch == watch_fault::pidfd) {
    errno = EMFILE;
  } else {
    core->server_pidfd_.reset(pidfd_open(pid, 0));
  }
  // Without its pidfd and both watches the server's death would never be seen: every
  // later shutdown would wait for it for ever. No server, then (EMFILE, ENOMEM).
  auto abort_server = [pid] {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  };
  if (!core->server_pidfd_) {
    const int err = errno;
    abort_server();
    throw std::system_error(err, std::system_category(), "pkit fork server: pidfd_open");
  }
  core->control_ = std::move(ctl_parent);
  core->events_ = std::move(ev_parent);
  core->events_open_ = true;
  core->server_alive_ = true;

  try {
    auto& r = reaper::instance();
    fault_if(watch_fault::events);
    core->events_watch_ = r.watch_fd(core->events_.get(), [core] { return core->on_events(); });
    try {
      fault_if(watch_fault::exit);
      core->exit_watch_ = r.watch_child(core->server_pidfd_.get(), [core](exit_status) { core->on_server_exit(); });
    } catch (...) {
      r.unwatch(core->events_watch_);
      throw;
    }
  } catch (...) {
    abort_server();
    throw;
  }
  return core;
}

fork_server_core::~fork_server_core() = default;

pid_t fork_server_core::pid() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return server_alive_ ? server_pid_ : -1;
}

bool fork_server_core::running() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return server_alive_ && events_open_ && !shutting_down_;
}

void fork_server_core::abandon(std::uint64_t id) {
  // Sent now if the socket takes it, else before the next request. The server handles
  // requests in order, so an abandon always finds its spawn done (or never received).
  request_header h{};
  h.id = id;
  h.op = static_cast<std::uint32_t>(op::abandon);
  std::string data;
  append(data, &h, sizeof h);
  const clock::time_point now = clock::now();
  if (send_record(control_.get(), data, nullptr, 0, &now) != 0) unsent_abandons_.push_back(id);
}

std::error_code fork_server_core::flush_abandoned(const clock::time_point& deadline) {
  while (!unsent_abandons_.empty()) {
    request_header h{};
    h.id = unsent_abandons_.front();
    h.op = static_cast<std::uint32_t>(op::abandon);
    std::string data;
    append(data, &h, sizeof h);
    if (int e = send_record(control_.get(), data, nullptr, 0, &deadline); e != 0)
      return transport_error(e);
    unsent_abandons_.erase(unsent_abandons_.begin());
  }
  return {};
}

std::error_code fork_server_core::round_trip(std::uint64_t id, const std::string& data,
                                             const int* fds, std::size_t nfds, bool want_fds,
                                             void* reply_out, std::vector<unique_fd>& fds_out) {
  const clock::time_point deadline = clock::now() + request_timeout_;
  if (auto ec = flush_abandoned(deadline)) return ec;
  // A record that could not be sent never reached the server: nothing to abandon.
  if (int e = send_record(control_.get(), data, fds, nfds, &deadline); e != 0)
    return e == EMSGSIZE ? std::make_error_code(std::errc::argument_list_too_long)
                         : transport_error(e);
  // One byte more than a reply, so a longer record shows as truncated.
  std::vector<char> buf(sizeof(reply) + 1);
  for (;;) {
    received r = receive_record(control_.get(), buf, &deadline);
    if (r.size <= 0) {
      if (r.size < 0 && r.error == ETIMEDOUT) abandon(id);  // it may still make the child
      return transport_error(r.size == 0 ? EPIPE : r.error);
    }
    reply rep{};
    std::memcpy(&rep, buf.data(), std::min(sizeof rep, static_cast<std::size_t>(r.size)));
    bool stale = false;
    if (auto ec = check_reply(r, rep, id, want_fds, stale)) {
      // Whatever the server did for this request, the parent cannot use it.
      abandon(id);
      return ec;
    }
    if (stale) {
      // The late answer to a request given up on (already abandoned; once more is
      // harmless). Its descriptors close here.
      if (static_cast<reply_kind>(rep.kind) == reply_kind::ok && rep.fd_count > 0)
        abandon(rep.id);
      continue;
    }
    std::memcpy(reply_out, &rep, sizeof rep);
    fds_out = std::move(r.fds);
    return {};
  }
}

server_spawn_result fork_server_core::spawn(const server_spawn_request& req) {
  server_spawn_result result;
  result.stage = "fork server";
  if (::getpid() != owner_pid_) {
    result.error = errc::not_owner;
    return result;
  }
  std::lock_guard<std::mutex> request_lock(request_mutex_);
  if (!running() || !control_) {
    result.error = errc::fork_server_unavailable;
    return result;
  }
  const std::uint64_t id = next_id_++;
  request_header h{};
  h.id = id;
  h.op = static_cast<std::uint32_t>(op::spawn);
  h.flags = (req.want_ready ? flag_ready : 0) | (req.new_process_group ? flag_group : 0) |
            (req.die_with_parent ? flag_pdeathsig : 0) |
            (req.kill_group_at_exit ? flag_kill_group_at_exit : 0);
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    h.stdio_index[i] = -1;
    if (req.stdio[i] >= 0) {
      h.stdio_index[i] = static_cast<std::int32_t>(fds.size());
      fds.push_back(req.stdio[i]);
    }
  }
  h.pass_count = req.pass ? static_cast<std::uint32_t>(req.pass->size()) : 0;
  h.name_len = static_cast<std::uint32_t>(req.name->size());
  if (std::exchange(faults_.huge_name_len, false)) h.name_len = 0xFFFFFFF0u;
  h.arg_count = static_cast<std::uint32_t>(req.args->size());
  std::string data;
  append(data, &h, sizeof h);
  if (req.pass) {
    for (const auto& [target, source] : *req.pass) {
      std::int32_t t = target;
      append(data, &t, sizeof t);
      fds.push_back(source);
    }
  }
  append(data, req.name->data(), req.name->size());
  for (const auto& a : *req.args) {
    auto len = static_cast<std::uint32_t>(a.size());
    append(data, &len, sizeof len);
    append(data, a.data(), a.size());
  }
  if (data.size() > max_message || fds.size() > max_fds) {
    result.stage = "validate";
    result.error = std::make_error_code(std::errc::argument_list_too_long);
    return result;
  }
  // Expected from now on: the child's exit may be relayed before its reply is read.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    unwatched_.insert(id);
  }
  auto forget = [&] {
    std::lock_guard<std::mutex> lock(mutex_);
    unwatched_.erase(id);
    early_.erase(id);
    changed_.notify_all();
  };
  reply rep{};
  std::vector<unique_fd> got;
  if (auto ec = round_trip(id, data, fds.data(), fds.size(), true, &rep, got)) {
    forget();
    result.error = ec;
    return result;
  }
  if (static_cast<reply_kind>(rep.kind) != reply_kind::ok) forget();
  switch (static_cast<reply_kind>(rep.kind)) {
    case reply_kind::errc_value: result.error = static_cast<errc>(rep.value); return result;
    case reply_kind::errno_value:
      result.error.assign(rep.value, std::system_category());
      if (rep.stage == stage_reply) {
        result.pid = rep.pid;  // made, then killed and reaped by the server
      } else if (rep.stage == stage_fork) {
        result.stage = "fork";
      } else {
        result.stage = stage_name(static_cast<child_stage>(rep.stage));
      }
      return result;
    case reply_kind::ok: break;
  }
  result.id = id;
  result.pid = rep.pid;
  result.pidfd = std::move(got[0]);
  if (rep.fd_count == 2) result.ready = std::move(got[1]);
  return result;
}

int fork_server_core::send_signal_record(const unsent_signal& u) {
  request_header h{};
  h.id = 0;  // no reply names it
  h.op = static_cast<std::uint32_t>(op::signal_group);
  h.flags = u.and_at_exit ? flag_and_at_exit : 0;
  h.child = u.child;
  h.signo = u.signo;
  const clock::time_point now = clock::now();
  return send_record(control_.get(), {reinterpret_cast<const char*>(&h), sizeof h}, nullptr, 0, &now);
}

namespace {

// What a failed non-blocking send of a group signal means.
enum class send_outcome { sent, full, transient, gone };

send_outcome outcome_of(int e) noexcept {
  if (e == 0) return send_outcome::sent;
  if (e == ETIMEDOUT) return send_outcome::full;  // wait until the socket is writable
  if (e == ENOBUFS || e == ENOMEM) return send_outcome::transient;  // try again shortly
  return send_outcome::gone;  // EPIPE, ECONNRESET: the server, and its children with it
}

}  // namespace

std::error_code fork_server_core::signal_group(std::uint64_t id, int signo, bool and_at_exit) noexcept {
  if (::getpid() != owner_pid_) return errc::not_owner;
  if (signo < 0 || signo >= NSIG) return std::make_error_code(std::errc::invalid_argument);
  const unsent_signal u{id, signo, and_at_exit};
  // Not request_mutex_, which a start holds for a whole round trip: a record is sent whole
  // or not at all, so it cannot interleave with a spawn's. mutex_ keeps control_ open
  // (shutdown resets it holding both) and orders the group signals; it is held only for
  // non-blocking sends.
  std::lock_guard<std::mutex> lock(mutex_);
  if (!server_alive_ || !events_open_ || shutting_down_ || !control_)
    return errc::fork_server_unavailable;
  send_outcome out = send_outcome::full;
  if (unsent_signals_.empty()) {
    const int e = send_signal_record(u);
    out = outcome_of(e);
    if (out == send_outcome::sent) return {};
    if (out == send_outcome::gone) return {e, std::system_category()};
  }
  // Armed before anything is queued: a flush that could not be armed last time (no memory
  // for a watch nor a timer) is armed now, or the queue would wait for ever.
  if (flush_watch_ == 0 && flush_timer_ == 0 && !arm_flush(out == send_outcome::full))
    return std::make_error_code(std::errc::not_enough_memory);
  if (unsent_signals_.size() >= max_unsent_signals) return std::make_error_code(std::errc::no_buffer_space);
  try {
    unsent_signals_.push_back(u);
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  }
  return {};
}

bool fork_server_core::arm_flush(bool when_writable) noexcept {
  std::weak_ptr<fork_server_core> self = weak_from_this();
  auto flush = [self] {
    if (auto core = self.lock()) core->flush_signals();
  };
  try {
    if (when_writable) {
      flush_watch_ = reaper::instance().watch_writable_once(control_.get(), flush);
      return true;
    }
  } catch (...) {
    // No watch (no memory, no epoll slot): a retry shortly, rather than never.
  }
  try {
    flush_timer_ = reaper::instance().schedule(clock::now() + std::chrono::milliseconds{10}, flush);
    return true;
  } catch (...) {
    return false;
  }
}

void fork_server_core::flush_signals() {
  std::lock_guard<std::mutex> lock(mutex_);
  flush_watch_ = 0;
  flush_timer_ = 0;
  if (!server_alive_ || !events_open_ || shutting_down_ || !control_) {
    unsent_signals_.clear();  // the server is going, and its children with it
    return;
  }
  while (!unsent_signals_.empty()) {
    switch (outcome_of(send_signal_record(unsent_signals_.front()))) {
      case send_outcome::sent: unsent_signals_.pop_front(); break;
      case send_outcome::gone: unsent_signals_.clear(); return;
      case send_outcome::full: (void)arm_flush(true); return;
      // Never dropped while the server lives: a lost SIGKILL would leave a stop waiting
      // for ever. If not even a timer can be had (no memory), the next signal_group arms
      // one again; until then the records wait.
      case send_outcome::transient: (void)arm_flush(false); return;
    }
  }
}

void fork_server_core::watch(std::uint64_t id, int pidfd, exit_handler handler) {
  auto& r = reaper::instance();
  std::unique_lock<std::mutex> lock(mutex_);
  unwatched_.erase(id);
  if (auto it = early_.find(id); it != early_.end()) {
    // The exit was relayed before the watch: report it from the reaper thread, as any
    // other exit (the caller may hold locks the handler needs).
    exit_status st = it->second;
    early_.erase(it);
    changed_.notify_all();
    lock.unlock();
    r.post([handler = std::move(handler), st] { handler(st); });
    return;
  }
  pending& p = watches_[id];
  p.pidfd = pidfd;
  p.handler = std::move(handler);
  if (!events_open_) {
    // The server is gone; its children die of PDEATHSIG and nobody relays their status.
    p.fallback_watch = arm_fallback(id, pidfd);
  }
}

bool fork_server_core::unwatch(std::uint64_t id) {
  std::uint64_t fallback = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = watches_.find(id);
    if (it == watches_.end()) return false;
    fallback = it->second.fallback_watch;
    watches_.erase(it);
    changed_.notify_all();
  }
  if (fallback != 0) reaper::instance().unwatch(fallback);
  return true;
}

std::size_t fork_server_core::tracked_ids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return watches_.size() + unwatched_.size() + early_.size();
}

std::size_t fork_server_core::unsent_signals() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return unsent_signals_.size();
}

bool fork_server_core::on_events() {
  for (;;) {
    event e{};
    ssize_t n = ::recv(events_.get(), &e, sizeof e, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) {
      on_server_gone();
      return false;
    }
    exit_status st;
    if (n != sizeof e) continue;  // malformed (MSG_TRUNC gives the real length): dropped
    if (e.kind == static_cast<std::int32_t>(event_kind::exited)) {
      st = exit_status::from_siginfo(e.code, e.status);
    } else if (e.kind == static_cast<std::int32_t>(event_kind::lost)) {
      st = exit_status::lost();
    } else {
      continue;
    }
    exit_handler h;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = watches_.find(e.id);
      if (it == watches_.end()) {
        // Kept only for a child handed out and not yet watched; the exit of one that
        // was unwatched or abandoned (or an id never handed out) is nobody's.
        if (unwatched_.erase(e.id) != 0) early_.emplace(e.id, st);
        changed_.notify_all();
        continue;
      }
      h = std::move(it->second.handler);
      watches_.erase(it);
      changed_.notify_all();
    }
    h(st);
  }
}

void fork_server_core::on_server_gone() {
  std::vector<exit_handler> unwatchable;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    events_open_ = false;
    for (auto it = watches_.begin(); it != watches_.end();) {
      try {
        it->second.fallback_watch = arm_fallback(it->first, it->second.pidfd);
        ++it;
      } catch (...) {
        // No watch (no memory for it): the child dies of PDEATHSIG all the same, its
        // status unknown — reported lost now rather than never.
        unwatchable.push_back(std::move(it->second.handler));
        it = watches_.erase(it);
      }
    }
    changed_.notify_all();
  }
  for (auto& h : unwatchable) h(exit_status::lost());
}

std::uint64_t fork_server_core::arm_fallback(std::uint64_t id, int pidfd) {
  // The child's pidfd turns readable when it is gone (it is not our child, so there is
  // no status to collect: PDEATHSIG's SIGKILL is what ended it).
  // A one-shot watch: out of epoll before the handler, which closes the pidfd (the run's
  // delivery), and no descriptor of the reaper's own — there may be thousands of these.
  auto self = shared_from_this();
  return reaper::instance().watch_fd_once(pidfd, [self, id] {
    exit_handler h;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      auto w = self->watches_.find(id);
      if (w == self->watches_.end()) return;
      h = std::move(w->second.handler);
      self->watches_.erase(w);
    }
    h(exit_status::killed(SIGKILL));
  });
}

void fork_server_core::on_server_exit() {
  std::lock_guard<std::mutex> lock(mutex_);
  server_alive_ = false;
  changed_.notify_all();
}

void fork_server_core::shutdown() noexcept {
  if (::getpid() != owner_pid_) return;  // a forked copy: the server is the original's
  unique_fd control;
  std::uint64_t flush = 0;
  std::uint64_t retry = 0;
  {
    std::lock_guard<std::mutex> request_lock(request_mutex_);
    std::lock_guard<std::mutex> lock(mutex_);
    shutting_down_ = true;
    unsent_signals_.clear();  // the server kills every child now
    flush = std::exchange(flush_watch_, 0);
    retry = std::exchange(flush_timer_, 0);
    control = std::move(control_);
  }
  // The watch borrows the socket: ended before it is closed (its handler takes mutex_,
  // and finds nothing to send now).
  if (flush != 0) reaper::instance().unwatch(flush);
  if (retry != 0) reaper::instance().cancel(retry);
  control.reset();  // the server sees EOF
  if (reaper::called_on_reaper_thread()) return;
  std::unique_lock<std::mutex> lock(mutex_);
  auto gone = [&] { return !events_open_ && !server_alive_; };
  // The server exits as soon as it has killed and reaped its children. If it does not
  // (a leaked copy of its socket keeps it from seeing EOF), it is killed: its children
  // then die of their PDEATHSIG and are reported as killed.
  if (!changed_.wait_for(lock, std::chrono::seconds(5), gone)) {
    if (server_pidfd_) pidfd_send_signal(server_pidfd_.get(), SIGKILL);
    changed_.wait(lock, gone);
  }
}

}  // namespace pkit::detail
