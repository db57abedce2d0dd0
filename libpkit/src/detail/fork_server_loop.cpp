// The fork server process: a single-threaded loop that forks targets on request, reaps
// them and relays their exits (see fork_server.hpp). Runs in the forked server only.

#include "detail/fork_server_core.hpp"
#include "detail/fork_server_wire.hpp"
#include "detail/pidfd.hpp"
#include "detail/trampoline.hpp"

#include <pkit/errc.hpp>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <map>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pkit::detail {
namespace {

using namespace wire;

struct server_child {
  pid_t pid;
  unique_fd pidfd;
  bool leader;
  bool kill_group_at_exit;
  bool abandoned = false;  // killed for a parent that no longer wants it: not reported
};

struct target_call {
  const fork_server::function* fn;
  const std::vector<std::string>* args;
};

int call_target(void* ctx) {
  auto* call = static_cast<target_call*>(ctx);
  return (*call->fn)(*call->args);
}

// A spawn request, decoded and checked: every length is checked against the bytes that
// arrived *before* anything is allocated for it.
struct spawn_request {
  std::string name;
  std::vector<std::string> args;
  int stdio[3] = {-1, -1, -1};
  std::vector<std::pair<int, int>> pass;
  std::vector<int> keep;
};

bool decode_spawn(const request_header& h, const char* data, std::size_t size,
                  const std::vector<unique_fd>& fds, spawn_request& out) {
  std::size_t off = sizeof h;
  auto take = [&](void* to, std::size_t len) {
    if (len > size - off) return false;
    std::memcpy(to, data + off, len);
    off += len;
    return true;
  };
  std::size_t used = 0;
  for (int i = 0; i < 3; ++i) {
    const int idx = h.stdio_index[i];
    if (idx < 0) continue;
    if (static_cast<std::size_t>(idx) >= fds.size()) return false;
    out.stdio[i] = fds[static_cast<std::size_t>(idx)].get();
    ++used;
  }
  if (h.pass_count > 256 || used + h.pass_count > fds.size()) return false;
  for (std::uint32_t i = 0; i < h.pass_count; ++i) {
    std::int32_t target;
    if (!take(&target, sizeof target) || target < 3) return false;
    out.pass.emplace_back(target, fds[used + i].get());
    out.keep.push_back(target);
  }
  std::sort(out.keep.begin(), out.keep.end());
  if (h.name_len > size - off) return false;
  out.name.assign(data + off, h.name_len);
  off += h.name_len;
  // Each argument takes at least its 4-byte length: a count beyond that is a lie.
  if (h.arg_count > (size - off) / sizeof(std::uint32_t)) return false;
  out.args.reserve(h.arg_count);
  for (std::uint32_t i = 0; i < h.arg_count; ++i) {
    std::uint32_t len;
    if (!take(&len, sizeof len) || len > size - off) return false;
    out.args.emplace_back(data + off, len);
    off += len;
  }
  return off == size;
}

class server {
public:
  server(const fork_server::registry& targets, int control, int events,
         const fork_server_faults& faults)
      : targets_(targets), control_(control), events_(events),
        epoll_(::epoll_create1(EPOLL_CLOEXEC)), faults_(faults) {}

  [[noreturn]] void run() {
    if (!epoll_) exit_now(1);
    add(control_, 0);
    ::fcntl(events_, F_SETFL, ::fcntl(events_, F_GETFL) | O_NONBLOCK);
    epoll_event events[32];
    for (;;) {
      int n = ::epoll_wait(epoll_.get(), events, 32, parked_wait_ms());
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
      look_at_parked();
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

  // Collects child `c`. A group kill is only ever sent while its leader is unreaped: its
  // pid — the group's id — cannot be reused until then. So the exit is first observed
  // without reaping (WNOWAIT), the group killed if that was asked for, and only then the
  // leader reaped. Returns the event to relay.
  static event collect(std::uint64_t id, server_child& c) {
    siginfo_t info{};
    int r;
    if (c.leader && c.kill_group_at_exit) {
      do r = ::waitid(P_PIDFD, static_cast<id_t>(c.pidfd.get()), &info, WEXITED | WNOWAIT);
      while (r != 0 && errno == EINTR);
      if (r == 0) ::kill(-c.pid, SIGKILL);
    }
    do r = ::waitid(P_PIDFD, static_cast<id_t>(c.pidfd.get()), &info, WEXITED);
    while (r != 0 && errno == EINTR);
    if (r != 0) return event{id, static_cast<std::int32_t>(event_kind::lost), 0, 0, 0};
    return event{id, static_cast<std::int32_t>(event_kind::exited), info.si_code, info.si_status, 0};
  }

  // A child whose parent-side owner cannot have it: killed (its group first, while it is
  // unreaped) and reaped, and not reported.
  static void discard(server_child& c) {
    if (c.leader) ::kill(-c.pid, SIGKILL);
    pidfd_send_signal(c.pidfd.get(), SIGKILL);
    siginfo_t info{};
    while (::waitid(P_PIDFD, static_cast<id_t>(c.pidfd.get()), &info, WEXITED) != 0 &&
           errno == EINTR) {
    }
  }

  void reap(std::uint64_t id) {
    auto it = children_.find(id);
    if (it == children_.end()) {
      parked_.erase(id);
      return;
    }
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.pidfd.get(), nullptr);
    // Traced by another process when it died: its zombie is the tracer's until that lets
    // it go, and collect()'s blocking waitid would stall every start and exit meanwhile
    // (as in pkit's reaper, reaper.cpp). Looked at again later, out of the epoll set (its
    // readable pidfd would wake the loop at once, again and again).
    if (!collectable(it->second.pidfd.get())) return park(id);
    parked_.erase(id);
    event e = collect(id, it->second);
    const bool report = !it->second.abandoned;
    children_.erase(it);
    if (report) queue_event(e);
  }

  void park(std::uint64_t id) {
    // Its group need not wait for the tracer: the leader, an unreaped zombie, keeps the
    // group id reserved (collect() sends this again; harmless).
    const server_child& c = children_.at(id);
    if (c.leader && c.kill_group_at_exit && parked_.count(id) == 0) ::kill(-c.pid, SIGKILL);
    parked_child& p = parked_[id];
    p.wait = p.wait.count() == 0 ? std::chrono::milliseconds{10} : std::min(p.wait * 2, std::chrono::milliseconds{1000});
    p.due = clock::now() + p.wait;
  }

  // How long epoll_wait may sleep: until the first parked child is due (-1: none).
  int parked_wait_ms() const {
    if (parked_.empty()) return -1;
    clock::time_point first = clock::time_point::max();
    for (const auto& [id, p] : parked_) first = std::min(first, p.due);
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(first - clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 1000));
  }

  void look_at_parked() {
    const clock::time_point now = clock::now();
    std::vector<std::uint64_t> due;
    for (const auto& [id, p] : parked_)
      if (p.due <= now) due.push_back(id);
    for (std::uint64_t id : due) reap(id);
  }

  // The parent closed the control socket (shutdown) or died: stop every child, report
  // their exits, and leave. Every child here is unreaped, so its group id is its own.
  // The children get one deadline together, under the parent's own (it kills this server
  // 5 s into its shutdown, and what was not sent by then is lost): a child that does not
  // die — in uninterruptible sleep, on a dead NFS mount — is reported lost, not waited
  // for, and every event goes out as soon as it is known.
  [[noreturn]] void shutdown() {
    bool spare = faults_.spare_first_at_shutdown;
    for (auto& [id, c] : children_) {
      if (std::exchange(spare, false)) continue;  // test hook: as if it did not die
      pidfd_send_signal(c.pidfd.get(), SIGKILL);
      if (c.leader) ::kill(-c.pid, SIGKILL);
    }
    ::fcntl(events_, F_SETFL, ::fcntl(events_, F_GETFL) & ~O_NONBLOCK);
    for (const event& e : queue_) ::send(events_, &e, sizeof e, MSG_NOSIGNAL);
    queue_.clear();
    const clock::time_point deadline = clock::now() + faults_.shutdown_wait;
    for (auto& [id, c] : children_) {
      // Dead or dying from the SIGKILL above; one still traced cannot be collected here
      // (it goes to init with this server's end): reported lost, not waited for.
      pollfd dead{c.pidfd.get(), POLLIN, 0};
      int r;
      do {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
        r = ::poll(&dead, 1, static_cast<int>(std::clamp<long long>(left, 0, 1 << 30)));
      } while (r < 0 && errno == EINTR);
      const event e = r > 0 && collectable(c.pidfd.get())
                          ? collect(id, c)
                          : event{id, static_cast<std::int32_t>(event_kind::lost), 0, 0, 0};
      if (!c.abandoned) ::send(events_, &e, sizeof e, MSG_NOSIGNAL);
    }
    exit_now(0);
  }

  // Replies go out without blocking: a parent that stopped reading (it gave up on a
  // request) must not wedge the server. Returns 0 or the errno.
  int send_reply(const reply& r, const int* fds = nullptr, std::size_t nfds = 0) {
    std::string data;
    append(data, &r, sizeof r);
    const clock::time_point now = clock::now();
    return send_record(control_, data, fds, nfds, &now);
  }

  void send_error(std::uint64_t id, reply_kind kind, int value, std::int32_t stage = 0,
                  pid_t pid = 0) {
    reply rep{};
    rep.id = id;
    rep.kind = static_cast<std::int32_t>(kind);
    rep.value = value;
    rep.stage = stage;
    rep.pid = pid;
    send_reply(rep);
  }

  // Returns false when the parent is gone.
  bool serve_request() {
    // One buffer for every request: hundreds of group signals in a row (a mass stop)
    // must not each allocate and clear max_message bytes.
    std::vector<char>& buf = request_buffer_;
    if (buf.size() != max_message) buf.resize(max_message);
    received in = receive_record(control_, buf, nullptr);
    if (in.size == 0 || (in.size < 0 && in.error != EMSGSIZE)) return false;
    request_header h{};
    if (in.truncated || in.size < static_cast<ssize_t>(sizeof h)) {
      send_error(0, reply_kind::errc_value, static_cast<int>(errc::fork_server_protocol));
      return true;
    }
    std::memcpy(&h, buf.data(), sizeof h);
    switch (static_cast<op>(h.op)) {
      case op::spawn: spawn(h, buf.data(), static_cast<std::size_t>(in.size), in.fds); break;
      case op::abandon: abandon(h.id); break;
      case op::signal_group: signal_group(h); break;
      default:
        send_error(h.id, reply_kind::errc_value, static_cast<int>(errc::fork_server_protocol));
    }
    return true;
  }

  void abandon(std::uint64_t id) {
    auto it = children_.find(id);
    if (it == children_.end()) return;  // never made, or already reaped and reported
    server_child& c = it->second;
    if (c.abandoned) return;
    if (c.leader) ::kill(-c.pid, SIGKILL);
    pidfd_send_signal(c.pidfd.get(), SIGKILL);
    // Collected unreported by reap(); waited for here only briefly, since every other
    // start and exit waits with this loop.
    c.abandoned = true;
    // Reaped now when it can be (the parent's next request finds it gone, as before); one
    // that dies late or is traced is collected by reap() from the loop.
    if (died_within(c.pidfd.get(), 200) && collectable(c.pidfd.get())) reap(id);
  }

  // One-way: the parent does not wait (it holds a process's lock), so nothing is replied.
  void signal_group(const request_header& h) {
    auto it = children_.find(h.child);
    // Reaped already (its exit is on its way): its group id may be anyone's now.
    if (it == children_.end() || h.signo < 0 || h.signo >= NSIG) return;
    server_child& c = it->second;
    if ((h.flags & flag_and_at_exit) != 0) c.kill_group_at_exit = true;
    if (c.leader) {
      (void)signal_group_led_by(c.pid, c.pidfd.get(), h.signo);
    } else {
      (void)pidfd_send_signal(c.pidfd.get(), h.signo);
    }
  }

  // The test hooks of fork_server_faults, applied to the first spawn reply only.
  int send_spawn_reply(reply rep, const int* fds, std::size_t nfds) {
    using fault = fork_server_faults::reply_fault;
    const fault f = std::exchange(faults_.reply, fault::none);
    switch (f) {
      case fault::none: break;
      case fault::wrong_id: rep.id += 1000; break;
      case fault::garbage: rep.kind = 77; break;
      case fault::oversized: {
        std::string data;
        append(data, &rep, sizeof rep);
        data.append(64, 'x');
        const clock::time_point now = clock::now();
        return send_record(control_, data, fds, nfds, &now);
      }
      case fault::no_fds: return send_reply(rep);
      case fault::fail_send: return EIO;
    }
    return send_reply(rep, fds, nfds);
  }

  // Forks the child that runs `call`. With `go_read` open, the child first waits for a
  // byte on it (EOF: we gave up on it, and it exits). Returns its pid, or -1 with `err`.
  pid_t fork_child(const child_setup& setup, int status_write, const char* name, target_call* call,
                   unique_fd& go_read, unique_fd& go_write, int& err) {
    bind_child_calls();
    sigset_t all, old;
    ::sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, &old);
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (go_read) {
        go_write.reset();
        char c = 0;
        ssize_t got;
        while ((got = ::read(go_read.get(), &c, 1)) < 0 && errno == EINTR) {
        }
        if (got != 1) exit_now(127);
        go_read.reset();
      }
      run_forked_child(setup, status_write, name, call_target, call);
    }
    err = errno;
    if (faults_.after_fork.count() > 0 && pid > 0) ::usleep(static_cast<useconds_t>(faults_.after_fork.count() * 1000));
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    go_read.reset();
    return pid;
  }

  void spawn(const request_header& h, const char* data, std::size_t size,
             const std::vector<unique_fd>& fds) {
    spawn_request req;
    if (!decode_spawn(h, data, size, fds, req)) {
      send_error(h.id, reply_kind::errc_value, static_cast<int>(errc::fork_server_protocol));
      return;
    }
    const fork_server::function* fn = targets_.find(req.name);
    if (fn == nullptr) {
      send_error(h.id, reply_kind::errc_value, static_cast<int>(errc::unknown_target));
      return;
    }
    child_setup setup;
    for (int i = 0; i < 3; ++i) setup.stdio[i] = req.stdio[i];
    setup.pass = req.pass.data();
    setup.pass_count = req.pass.size();
    setup.keep = req.keep.data();
    setup.keep_count = req.keep.size();
    setup.new_process_group = (h.flags & flag_group) != 0;
    setup.die_with_parent = (h.flags & flag_pdeathsig) != 0;
    setup.parent = ::getpid();

    unique_fd status_read, status_write;
    if ((h.flags & flag_ready) != 0) {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) {
        send_error(h.id, reply_kind::errno_value, errno, stage_fork);
        return;
      }
      status_read.reset(p[0]);
      status_write.reset(p[1]);
    }
    // A new group's leader waits for our go-ahead: we make its group before it runs
    // anything of the target's (a setpgid of ours after that could pull back a child that
    // had left its group), and before the reply, so a group signal never finds no group.
    // A socket, not a pipe: a child killed before the byte must not get us SIGPIPE.
    unique_fd go_read, go_write;
    if (setup.new_process_group) {
      int go[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go) != 0) {
        send_error(h.id, reply_kind::errno_value, errno, stage_fork);
        return;
      }
      go_read.reset(go[0]);
      go_write.reset(go[1]);
    }
    target_call call{fn, &req.args};
    int fork_errno = 0;
    const pid_t pid = fork_child(setup, status_write.get(), req.name.c_str(), &call, go_read, go_write, fork_errno);
    if (pid < 0) {
      send_error(h.id, reply_kind::errno_value, fork_errno, stage_fork);
      return;
    }
    if (setup.new_process_group) ::setpgid(pid, pid);
    server_child c{pid, unique_fd(pidfd_open(pid, 0)), setup.new_process_group,
                   (h.flags & flag_kill_group_at_exit) != 0};
    // A child that cannot be supervised, or never told to go, is killed and reaped here;
    // it has run nothing of the target's.
    const auto give_up = [&](int e) {
      if (c.leader) ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      send_error(h.id, reply_kind::errno_value, e, stage_fork);
    };
    if (!c.pidfd) return give_up(errno);
    if (go_write) {
      const char byte = 1;
      ssize_t sent;
      while ((sent = ::send(go_write.get(), &byte, 1, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
      }
      // EPIPE: the child is dead already, and its exit is reported as any other.
      if (sent < 0 && errno != EPIPE) return give_up(errno);
      go_write.reset();
    }
    reply rep{};
    rep.id = h.id;
    rep.kind = static_cast<std::int32_t>(reply_kind::ok);
    rep.pid = pid;
    rep.fd_count = status_read ? 2 : 1;
    int out[2] = {c.pidfd.get(), status_read.get()};
    if (int e = send_spawn_reply(rep, out, static_cast<std::size_t>(rep.fd_count)); e != 0) {
      // Nobody will supervise a child whose pidfd never reached the parent.
      discard(c);
      send_error(h.id, reply_kind::errno_value, e, stage_reply, pid);
      return;
    }
    add(c.pidfd.get(), h.id);
    children_.emplace(h.id, std::move(c));
  }

  const fork_server::registry& targets_;
  int control_;
  int events_;
  unique_fd epoll_;
  fork_server_faults faults_;
  std::map<std::uint64_t, server_child> children_;
  // Children that exited while traced by another process (reap()), by id: when to look again.
  struct parked_child {
    clock::time_point due;
    std::chrono::milliseconds wait{0};
  };
  std::map<std::uint64_t, parked_child> parked_;
  std::deque<event> queue_;
  bool watching_out_ = false;
  std::vector<char> request_buffer_;  // serve_request's, sized once
};

}  // namespace

void fork_server_main(const fork_server::registry& targets, int control, int events,
                      const fork_server_faults& faults) {
  server(targets, control, events, faults).run();
}

}  // namespace pkit::detail
