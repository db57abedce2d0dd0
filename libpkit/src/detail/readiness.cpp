#include "detail/readiness.hpp"

#include "detail/reaper.hpp"
#include "detail/run_control.hpp"

#include <pkit/errc.hpp>

#include <algorithm>
#include <utility>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace pkit::detail {

namespace {

// Polls `fd` and the child's pidfd until `deadline`. Returns 1 when `fd` is readable,
// 0 at the deadline, -1 when the child has exited and `fd` has nothing more to read now.
int poll_with_child(int fd, int pidfd, clock::time_point deadline) {
  for (;;) {
    const auto now = clock::now();
    if (now >= deadline) return 0;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    pollfd p[2] = {{fd, POLLIN, 0}, {pidfd, POLLIN, 0}};
    const int r = ::poll(p, pidfd >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;  // re-check the deadline
    if (p[0].revents != 0) return 1;
    // The child is gone. What it wrote before it died is still in the pipe (a descendant
    // may hold the write end open forever): one last look, without blocking.
    pollfd last{fd, POLLIN, 0};
    return ::poll(&last, 1, 0) > 0 ? 1 : -1;
  }
}

}  // namespace

ready_result await_ready(int record, int notify, notify_socket* sock, int pidfd,
                         clock::time_point deadline, child_failure& failure) {
  if (record >= 0) {
    char buf[sizeof(child_failure)];
    std::size_t got = 0;
    while (got < sizeof buf) {
      const int r = poll_with_child(record, pidfd, deadline);
      if (r == 0) return ready_result::timeout;
      if (r < 0) return ready_result::died;
      const ssize_t n = ::read(record, buf + got, sizeof buf - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return ready_result::died;
      got += static_cast<std::size_t>(n);
    }
    std::memcpy(&failure, buf, sizeof failure);
    if (failure.stage != child_stage::none) return ready_result::failed;
  }
  if (sock != nullptr) {
    for (;;) {
      const int r = poll_with_child(sock->fd(), pidfd, deadline);
      if (r == 0) return ready_result::timeout;
      if (r < 0) return ready_result::died;
      if (sock->drain()) return ready_result::ready;
    }
  }
  if (notify < 0) return ready_result::ready;
  // s6's readiness notification: a line on the notify pipe.
  for (;;) {
    const int r = poll_with_child(notify, pidfd, deadline);
    if (r == 0) return ready_result::timeout;
    if (r < 0) return ready_result::died;
    char buf[64];
    const ssize_t n = ::read(notify, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ready_result::died;
    if (std::find(buf, buf + n, '\n') != buf + n) return ready_result::ready;
  }
}

// The asynchronous form of start(wait): the reaper thread reads the start-up record, then
// the notify line, and reports the outcome through on_ready.
struct readiness {
  std::shared_ptr<process_state> state;
  std::uint64_t run;
  unique_fd record;  // status pipe (fork / fork server), empty for programs
  unique_fd notify;  // notify_fd pipe, if any
  std::unique_ptr<notify_socket> sock;  // notify_socket, if any
  unique_fd pidfd;                      // with `sock`: our copy of the run's pidfd
  std::size_t got = 0;
  char buf[sizeof(child_failure)];
  bool reported = false;  // on_ready was called (reaper thread only)
  // With `sock`: the reaper watches of the socket and of the pidfd. Each one's handler
  // ends both (the first to fire wins); the ids are set under `watch_m` while both are
  // registered, so a handler that fires at once still finds them.
  std::mutex watch_m;
  std::uint64_t sock_watch = 0, pid_watch = 0;
  // The watch of `record`, then of `notify` (under `watch_m`): ended by the run's exit too,
  // not only by EOF — a descendant that inherited the notify fd may hold the pipe open
  // long after the run, and the watch with it this object and the process's state.
  std::uint64_t pipe_watch = 0;
  bool pipe_ended = false;  // no pipe watch any more (under `watch_m`)
};

namespace {

// Ends the socket's watches (on the reaper thread, from one of their handlers). The
// socket itself stays open while the exit report may still read it (it holds `r`).
void end_socket_watches(readiness& r) {
  std::uint64_t ids[2];
  {
    std::lock_guard<std::mutex> lock(r.watch_m);
    ids[0] = std::exchange(r.sock_watch, 0);
    ids[1] = std::exchange(r.pid_watch, 0);
  }
  for (std::uint64_t id : ids)
    if (id != 0) reaper::instance().unwatch(id);
}

// Watches `fd` of `r` with `handler` as its pipe watch (see readiness::pipe_watch) — unless
// the pipe watches have ended (the run's exit was delivered meanwhile, off the reaper).
void watch_pipe(const std::shared_ptr<readiness>& r, int fd, std::function<bool()> handler) {
  std::lock_guard<std::mutex> lock(r->watch_m);
  if (r->pipe_ended) return;
  r->pipe_watch = reaper::instance().watch_fd(fd, std::move(handler));
}

// Ends the pipe watch for good (not from its own handler). Off the reaper thread (a joiner
// that collected the run) this waits for a handler under way: it may be registering the
// notify pipe's watch, which `pipe_ended` then refuses — and nothing reads the pipes
// beside the caller afterwards.
void end_pipe_watch(readiness& r) {
  std::uint64_t id;
  {
    std::lock_guard<std::mutex> lock(r.watch_m);
    r.pipe_ended = true;
    id = std::exchange(r.pipe_watch, 0);
  }
  if (id != 0) reaper::instance().unwatch(id);
}

}  // namespace


static void report_ready(const std::shared_ptr<readiness>& r, std::error_code ec, child_stage stage) {
  process_state& s = *r->state;
  process* owner;
  {
    std::lock_guard<std::mutex> lock(s.m);
    if (r->reported || s.runs != r->run || s.ph != process_state::phase::running) return;
    r->reported = true;
    if (s.ready_watch == r) s.ready_watch.reset();
    owner = s.owner;
    if (ec) {
      s.failure = spawn_failure{s.name, stage_name(stage), ec};
      // A child whose set-up failed exits by itself (127); one that closed its notify fd
      // may live on, but will never be ready.
      if (stage == child_stage::ready) send_signal(s, SIGKILL, true);
    }
  }
  if (owner == nullptr) return;
  // A throwing callback must not end the watch's handler (or the posted batch) early.
  try {
    s.opts.on_ready(*owner, ec);
  } catch (const std::exception& e) {
    std::string msg = "pkit: on_ready of '" + s.name + "' threw: " + e.what() + "\n";
    write_all(2, msg.data(), msg.size());
  } catch (...) {
    static constexpr char msg[] = "pkit: on_ready threw an unknown exception\n";
    write_all(2, msg, sizeof msg - 1);
  }
}

static void watch_notify(const std::shared_ptr<readiness>& r);

std::shared_ptr<readiness> watch_readiness(const std::shared_ptr<process_state>& sp, std::uint64_t run,
                                          unique_fd record, unique_fd notify,
                                          std::unique_ptr<notify_socket> sock) {
  auto r = std::make_shared<readiness>();
  r->state = sp;
  r->run = run;
  r->record = std::move(record);
  r->notify = std::move(notify);
  r->sock = std::move(sock);
  if (r->sock) {
    r->pidfd.reset(::fcntl(sp->pidfd.get(), F_DUPFD_CLOEXEC, 3));
    if (!r->pidfd) {
      // Without its pidfd the socket's watch could outlive the run: give up on the child.
      const std::error_code ec{errno, std::system_category()};
      reaper::instance().post([r, ec] { report_ready(r, ec, child_stage::ready); });
      return r;
    }
  }
  if (!r->record) {
    if (r->notify || r->sock) {
      watch_notify(r);
    } else {
      reaper::instance().post([r] { report_ready(r, {}, child_stage::none); });
    }
    return r;
  }
  watch_pipe(r, r->record.get(), [r] {
    ssize_t n = ::read(r->record.get(), r->buf + r->got, sizeof r->buf - r->got);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      report_ready(r, errc::died_before_ready, child_stage::ready);
      return false;
    }
    r->got += static_cast<std::size_t>(n);
    if (r->got < sizeof r->buf) return true;
    child_failure f;
    std::memcpy(&f, r->buf, sizeof f);
    if (f.stage != child_stage::none) {
      report_ready(r, {f.error, std::system_category()}, f.stage);
    } else if (r->notify || r->sock) {
      watch_notify(r);
    } else {
      report_ready(r, {}, child_stage::none);
    }
    return false;
  });
  return r;
}

// systemd's protocol: READY=1 on the socket. A socket has no EOF to say the child died,
// so the child's pidfd is watched too: its exit ends both watches (the exit report then
// decides from what the socket holds, settle_readiness_at_exit).
static void watch_socket(const std::shared_ptr<readiness>& r) {
  std::lock_guard<std::mutex> lock(r->watch_m);
  if (r->pidfd) {
    r->pid_watch = reaper::instance().watch_fd(r->pidfd.get(), [r] {
      end_socket_watches(*r);
      return false;
    });
  }
  r->sock_watch = reaper::instance().watch_fd(r->sock->fd(), [r] {
    if (!r->sock->drain()) return true;
    end_socket_watches(*r);
    report_ready(r, {}, child_stage::none);
    return false;
  });
}

static void watch_notify(const std::shared_ptr<readiness>& r) {
  if (r->sock) {
    watch_socket(r);
    return;
  }
  watch_pipe(r, r->notify.get(), [r] {
    char buf[64];
    ssize_t n = ::read(r->notify.get(), buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      report_ready(r, errc::died_before_ready, child_stage::ready);
      return false;
    }
    if (std::find(buf, buf + n, '\n') == buf + n) return true;
    report_ready(r, {}, child_stage::none);
    return false;
  });
}


// The run ended before its readiness was reported. The pipes still hold whatever the
// child wrote before it exited, so the verdict comes from them, not from the race.
void settle_readiness_at_exit(const std::shared_ptr<readiness>& r, process* owner) {
  process_state& s = *r->state;
  // Whatever the verdict, the pipes are read here for the last time.
  end_pipe_watch(*r);
  {
    std::lock_guard<std::mutex> lock(s.m);
    if (r->reported) return;
    r->reported = true;
  }
  if (owner == nullptr) return;  // destroyed: nobody to tell
  std::error_code ec;
  child_stage stage = child_stage::none;
  if (r->record) {
    ::fcntl(r->record.get(), F_SETFL, O_NONBLOCK);
    while (r->got < sizeof r->buf) {
      ssize_t n = ::read(r->record.get(), r->buf + r->got, sizeof r->buf - r->got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      r->got += static_cast<std::size_t>(n);
    }
    child_failure f;
    if (r->got < sizeof r->buf) {
      ec = errc::died_before_ready;
      stage = child_stage::ready;
    } else if (std::memcpy(&f, r->buf, sizeof f); f.stage != child_stage::none) {
      ec.assign(f.error, std::system_category());
      stage = f.stage;
    }
  }
  if (!ec && r->sock && !r->sock->drain()) {
    ec = errc::died_before_ready;
    stage = child_stage::ready;
  }
  if (!ec && r->notify) {
    ::fcntl(r->notify.get(), F_SETFL, O_NONBLOCK);
    bool newline = false;
    char buf[256];
    for (;;) {
      ssize_t n = ::read(r->notify.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (std::find(buf, buf + n, '\n') != buf + n) {
        newline = true;
        break;
      }
    }
    if (!newline) {
      ec = errc::died_before_ready;
      stage = child_stage::ready;
    }
  }
  if (ec) {
    std::lock_guard<std::mutex> lock(s.m);
    s.failure = spawn_failure{s.name, stage_name(stage), ec};
  }
  s.opts.on_ready(*owner, ec);
}


}  // namespace pkit::detail
