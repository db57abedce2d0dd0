#include "detail/fork_server_core.hpp"

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

namespace pkit::detail {
namespace {

// Wire format on two SOCK_SEQPACKET socket pairs (one message = one record):
//   control: request (parent → server) and its reply (server → parent), in lock-step;
//   events:  exit events (server → parent), read by the reaper thread.
constexpr std::size_t max_message = 256 * 1024;
constexpr std::size_t max_fds = 3 + 256;

struct request_header {
  std::uint64_t id;
  std::uint32_t flags;
  std::int32_t stdio_index[3];  // index into the passed fds, or -1
  std::uint32_t pass_count;     // followed by pass_count int32 targets
  std::uint32_t name_len;       // then the name
  std::uint32_t arg_count;      // then each argument as uint32 length + bytes
};
constexpr std::uint32_t flag_ready = 1, flag_group = 2, flag_pdeathsig = 4;

enum : std::int32_t { reply_ok = 0, reply_errno = 1, reply_errc = 2 };
struct reply {
  std::uint64_t id;
  std::int32_t kind;
  std::int32_t value;
  std::int32_t stage;  // child_stage
  std::int32_t pid;
  std::int32_t has_ready;
};

struct event {
  std::uint64_t id;
  std::int32_t code;
  std::int32_t status;
};

void append(std::string& out, const void* p, std::size_t n) {
  out.append(static_cast<const char*>(p), n);
}

bool send_with_fds(int sock, const std::string& data, const int* fds, std::size_t nfds) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (nfds > 0) {
    control.resize(CMSG_SPACE(sizeof(int) * nfds));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t r;
  do r = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r == static_cast<ssize_t>(data.size());
}

// Receives one message and the descriptors attached to it (close-on-exec). Returns the
// byte count, 0 on EOF, -1 on error (errno set).
ssize_t recv_with_fds(int sock, std::vector<char>& buf, std::vector<unique_fd>& fds, int flags = 0) {
  std::vector<char> control(CMSG_SPACE(sizeof(int) * max_fds));
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t r;
  do r = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
  while (r < 0 && errno == EINTR);
  if (r < 0) return r;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.emplace_back(fd);
    }
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    errno = EMSGSIZE;
    return -1;
  }
  return r;
}

void enlarge_buffers(int sock) {
  int size = 4 * 1024 * 1024;
  // The Force variants pass the system limit when we are privileged; else best effort.
  if (::setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
    ::setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (::setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    ::setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

// ---------------------------------------------------------------------------------------
// The server process.

struct server_child {
  pid_t pid;
  unique_fd pidfd;
  bool leader;
};

struct target_call {
  const fork_server::function* fn;
  const std::vector<std::string>* args;
};

int call_target(void* ctx) {
  auto* call = static_cast<target_call*>(ctx);
  return (*call->fn)(*call->args);
}

class server {
public:
  server(const fork_server::registry& targets, int control, int events)
      : targets_(targets), control_(control), events_(events), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}

  [[noreturn]] void run() {
    if (!epoll_) exit_now(1);
    add(control_, 0);
    ::fcntl(events_, F_SETFL, ::fcntl(events_, F_GETFL) | O_NONBLOCK);
    epoll_event events[32];
    for (;;) {
      int n = ::epoll_wait(epoll_.get(), events, 32, -1);
      for (int i = 0; i < n; ++i) {
        std::uint64_t key = events[i].data.u64;
        if (key == 0) {
          if (!serve_request()) shutdown();
        } else if (key == ~std::uint64_t{0}) {
          flush_events();
        } else {
          reap(key);
        }
      }
    }
  }

private:
  void add(int fd, std::uint64_t key, std::uint32_t what = EPOLLIN) {
    epoll_event ev{};
    ev.events = what;
    ev.data.u64 = key;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
  }

  // Exit events are queued and sent without blocking: a parent whose reaper thread is
  // busy must never stall the server (and with it every start request).
  void queue_event(const event& e) {
    queue_.push_back(e);
    flush_events();
  }

  void flush_events() {
    while (!queue_.empty()) {
      ssize_t r = ::send(events_, &queue_.front(), sizeof(event), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      queue_.pop_front();  // sent, or the parent is gone (then nobody wants it)
    }
    bool want_out = !queue_.empty();
    if (want_out != watching_out_) {
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.u64 = ~std::uint64_t{0};
      ::epoll_ctl(epoll_.get(), want_out ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, events_, &ev);
      watching_out_ = want_out;
    }
  }

  void reap(std::uint64_t id) {
    auto it = children_.find(id);
    if (it == children_.end()) return;
    siginfo_t info{};
    int r;
    do r = ::waitid(P_PIDFD, static_cast<id_t>(it->second.pidfd.get()), &info, WEXITED);
    while (r != 0 && errno == EINTR);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.pidfd.get(), nullptr);
    children_.erase(it);
    queue_event(r == 0 ? event{id, info.si_code, info.si_status} : event{id, CLD_EXITED, 255});
  }

  // The parent closed the control socket (shutdown) or died: stop every child, report
  // their exits, and leave.
  [[noreturn]] void shutdown() {
    for (auto& [id, c] : children_) {
      pidfd_send_signal(c.pidfd.get(), SIGKILL);
      if (c.leader) ::kill(-c.pid, SIGKILL);
    }
    while (!children_.empty()) reap(children_.begin()->first);
    ::fcntl(events_, F_SETFL, ::fcntl(events_, F_GETFL) & ~O_NONBLOCK);
    for (const event& e : queue_) ::send(events_, &e, sizeof e, MSG_NOSIGNAL);
    exit_now(0);
  }

  void send_reply(const reply& r, const int* fds = nullptr, std::size_t nfds = 0) {
    std::string data;
    append(data, &r, sizeof r);
    send_with_fds(control_, data, fds, nfds);
  }

  // Returns false when the parent is gone.
  bool serve_request() {
    std::vector<char> buf(max_message);
    std::vector<unique_fd> fds;
    ssize_t n = recv_with_fds(control_, buf, fds);
    if (n == 0 || (n < 0 && errno != EMSGSIZE)) return false;
    reply rep{};
    request_header h{};
    if (n < static_cast<ssize_t>(sizeof h)) {
      rep.kind = reply_errc;
      rep.value = static_cast<int>(errc::invalid_argument);
      send_reply(rep);
      return true;
    }
    std::memcpy(&h, buf.data(), sizeof h);
    rep.id = h.id;
    // Decode, checking every length against what arrived.
    std::size_t off = sizeof h;
    auto take = [&](void* out, std::size_t len) {
      if (off + len > static_cast<std::size_t>(n)) return false;
      std::memcpy(out, buf.data() + off, len);
      off += len;
      return true;
    };
    bool ok = h.pass_count <= 256;
    std::vector<std::pair<int, int>> pass;
    std::vector<int> keep;
    int stdio_fd[3] = {-1, -1, -1};
    for (int i = 0; i < 3 && ok; ++i) {
      int idx = h.stdio_index[i];
      if (idx >= 0) {
        ok = static_cast<std::size_t>(idx) < fds.size();
        if (ok) stdio_fd[i] = fds[static_cast<std::size_t>(idx)].get();
      }
    }
    std::size_t first_pass = 0;
    for (int idx : h.stdio_index)
      if (idx >= 0) ++first_pass;
    for (std::uint32_t i = 0; i < h.pass_count && ok; ++i) {
      std::int32_t target;
      ok = take(&target, sizeof target) && first_pass + i < fds.size();
      if (ok) {
        pass.emplace_back(target, fds[first_pass + i].get());
        keep.push_back(target);
      }
    }
    std::sort(keep.begin(), keep.end());
    std::string name;
    std::vector<std::string> args;
    if (ok) {
      name.resize(h.name_len);
      ok = take(name.data(), h.name_len);
    }
    for (std::uint32_t i = 0; i < h.arg_count && ok; ++i) {
      std::uint32_t len;
      ok = take(&len, sizeof len) && len <= max_message;
      if (ok) {
        std::string a(len, '\0');
        ok = take(a.data(), len);
        args.push_back(std::move(a));
      }
    }
    if (!ok || n < 0) {
      rep.kind = reply_errc;
      rep.value = static_cast<int>(errc::invalid_argument);
      send_reply(rep);
      return true;
    }
    const fork_server::function* fn = targets_.find(name);
    if (fn == nullptr) {
      rep.kind = reply_errc;
      rep.value = static_cast<int>(errc::unknown_target);
      send_reply(rep);
      return true;
    }

    child_setup setup;
    for (int i = 0; i < 3; ++i) setup.stdio[i] = stdio_fd[i];
    setup.pass = pass.data();
    setup.pass_count = pass.size();
    setup.keep = keep.data();
    setup.keep_count = keep.size();
    setup.new_process_group = (h.flags & flag_group) != 0;
    setup.die_with_parent = (h.flags & flag_pdeathsig) != 0;
    setup.parent = ::getpid();

    unique_fd status_read, status_write;
    if ((h.flags & flag_ready) != 0) {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) {
        rep.kind = reply_errno;
        rep.value = errno;
        send_reply(rep);
        return true;
      }
      status_read.reset(p[0]);
      status_write.reset(p[1]);
    }
    target_call call{fn, &args};
    bind_child_calls();
    sigset_t all, old;
    ::sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid = ::fork();
    if (pid == 0) {
      run_forked_child(setup, status_write.get(), name.c_str(), call_target, &call);
    }
    int fork_errno = errno;
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) {
      rep.kind = reply_errno;
      rep.value = fork_errno;
      rep.stage = -1;
      send_reply(rep);
      return true;
    }
    if (setup.new_process_group) ::setpgid(pid, pid);
    unique_fd pidfd(pidfd_open(pid, 0));
    if (!pidfd) {
      rep.kind = reply_errno;
      rep.value = errno;
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      send_reply(rep);
      return true;
    }
    rep.kind = reply_ok;
    rep.pid = pid;
    rep.has_ready = status_read ? 1 : 0;
    int out[2] = {pidfd.get(), status_read.get()};
    send_reply(rep, out, status_read ? 2 : 1);
    add(pidfd.get(), h.id);
    children_.emplace(h.id, server_child{pid, std::move(pidfd), setup.new_process_group});
    return true;
  }

  const fork_server::registry& targets_;
  int control_;
  int events_;
  unique_fd epoll_;
  std::map<std::uint64_t, server_child> children_;
  std::deque<event> queue_;
  bool watching_out_ = false;
};

}  // namespace

void fork_server_main(const fork_server::registry& targets, int control, int events) {
  server(targets, control, events).run();
}

std::shared_ptr<fork_server_core> fork_server_core::launch(fork_server::registry targets) {
  std::shared_ptr<fork_server_core> core(new fork_server_core(std::move(targets)));
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
    fork_server_main(core->targets_, ctl_server.get(), ev_server.get());
  }
  core->server_pid_ = pid;
  core->server_pidfd_.reset(pidfd_open(pid, 0));
  core->control_ = std::move(ctl_parent);
  core->events_ = std::move(ev_parent);
  core->events_open_ = true;
  core->server_alive_ = true;

  auto& r = reaper::instance();
  core->events_watch_ = r.watch_fd(core->events_.get(), [core] { return core->on_events(); });
  if (core->server_pidfd_) {
    core->exit_watch_ = r.watch_child(core->server_pidfd_.get(), [core](exit_status) { core->on_server_exit(); });
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

server_spawn_result fork_server_core::spawn(const server_spawn_request& req) {
  server_spawn_result result;
  result.stage = "fork server";
  std::lock_guard<std::mutex> request_lock(request_mutex_);
  if (!running() || !control_) {
    result.error = errc::fork_server_unavailable;
    return result;
  }
  const std::uint64_t id = next_id_++;
  request_header h{};
  h.id = id;
  h.flags = (req.want_ready ? flag_ready : 0) | (req.new_process_group ? flag_group : 0) |
            (req.die_with_parent ? flag_pdeathsig : 0);
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
  if (data.size() > max_message) {
    result.stage = "validate";
    result.error = std::make_error_code(std::errc::argument_list_too_long);
    return result;
  }
  if (!send_with_fds(control_.get(), data, fds.data(), fds.size())) {
    result.error = errc::fork_server_unavailable;
    return result;
  }
  std::vector<char> buf(sizeof(reply) + 64);
  std::vector<unique_fd> got;
  ssize_t n = recv_with_fds(control_.get(), buf, got);
  reply rep{};
  if (n < static_cast<ssize_t>(sizeof rep)) {
    result.error = errc::fork_server_unavailable;
    return result;
  }
  std::memcpy(&rep, buf.data(), sizeof rep);
  if (rep.kind == reply_errc) {
    result.error = static_cast<errc>(rep.value);
    return result;
  }
  if (rep.kind == reply_errno) {
    result.stage = "fork";
    result.error.assign(rep.value, std::system_category());
    return result;
  }
  if (got.empty() || (rep.has_ready != 0 && got.size() < 2)) {
    result.error = errc::fork_server_unavailable;
    return result;
  }
  result.id = id;
  result.pid = rep.pid;
  result.pidfd = std::move(got[0]);
  if (rep.has_ready != 0) result.ready = std::move(got[1]);
  return result;
}

void fork_server_core::watch(std::uint64_t id, int pidfd, exit_handler handler) {
  auto& r = reaper::instance();
  std::unique_lock<std::mutex> lock(mutex_);
  if (auto it = early_.find(id); it != early_.end()) {
    // The exit was relayed before the watch: report it from the reaper thread, as any
    // other exit (the caller may hold locks the handler needs).
    exit_status st = it->second;
    early_.erase(it);
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
  }
  if (fallback != 0) reaper::instance().unwatch(fallback);
  return true;
}

bool fork_server_core::on_events() {
  for (;;) {
    event e{};
    ssize_t n = ::recv(events_.get(), &e, sizeof e, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) {
      on_server_gone();
      return false;
    }
    if (n != sizeof e) continue;
    exit_status st = exit_status::from_siginfo(e.code, e.status);
    exit_handler h;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = watches_.find(e.id);
      if (it == watches_.end()) {
        early_.emplace(e.id, st);
        continue;
      }
      h = std::move(it->second.handler);
      watches_.erase(it);
    }
    h(st);
  }
}

void fork_server_core::on_server_gone() {
  std::lock_guard<std::mutex> lock(mutex_);
  events_open_ = false;
  for (auto& [id, p] : watches_) p.fallback_watch = arm_fallback(id, p.pidfd);
  changed_.notify_all();
}

std::uint64_t fork_server_core::arm_fallback(std::uint64_t id, int pidfd) {
  // The child's pidfd turns readable when it is gone (it is not our child, so there is
  // no status to collect: PDEATHSIG's SIGKILL is what ended it).
  auto self = shared_from_this();
  return reaper::instance().watch_fd(pidfd, [self, id] {
    exit_handler h;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      auto w = self->watches_.find(id);
      if (w == self->watches_.end()) return false;
      h = std::move(w->second.handler);
      self->watches_.erase(w);
    }
    h(exit_status::killed(SIGKILL));
    return false;
  });
}

void fork_server_core::on_server_exit() {
  std::lock_guard<std::mutex> lock(mutex_);
  server_alive_ = false;
  changed_.notify_all();
}

void fork_server_core::shutdown() noexcept {
  {
    std::lock_guard<std::mutex> request_lock(request_mutex_);
    std::lock_guard<std::mutex> lock(mutex_);
    shutting_down_ = true;
    control_.reset();  // the server sees EOF
  }
  if (reaper::instance().on_reaper_thread()) return;
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
