#include "detail/launch.hpp"

#include "detail/child_setup.hpp"
#include "detail/exec_spawn.hpp"
#include "detail/fork_server_core.hpp"
#include "detail/has_nul.hpp"
#include "detail/pidfd.hpp"
#include "detail/trampoline.hpp"

#include <pkit/errc.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pkit::detail {
namespace {

// rlimits, credentials and the notify socket: checked and made before anything is
// spawned, so that a bad name or limit fails start() without a child.
// What a start method cannot do, refused before anything is made. A fork-server child is
// set up by the server, which gets no credentials, limits or socket over its wire; a
// callable does not exec, so NOTIFY_SOCKET would only reach it through setenv after the
// fork — not async-signal-safe in the child of a multithreaded parent.
std::error_code refuse_unsupported(const process_state& s, const char*& stage) {
  const auto unsupported = std::make_error_code(std::errc::not_supported);
  const process_options& o = s.opts;
  auto refuse = [&](const char* at) {
    stage = at;
    return unsupported;
  };
  if (std::holds_alternative<server_target>(s.what)) {
    if (!o.user.empty()) return refuse("user");
    if (!o.group.empty()) return refuse("group");
    if (!o.rlimits.empty()) return refuse("setrlimit");
  }
  if (o.notify_socket && !std::holds_alternative<command>(s.what)) return refuse("notify socket");
  // A NUL would cut the name or path the system is given ("root\0x" is root): refused
  // here, before any stdio file is created or truncated. (resolve_credentials refuses
  // it too, for identity::lookup; exec_image::build the argv, env and cwd.)
  const auto* cmd = std::get_if<command>(&s.what);
  const char* at = has_nul(o.user)                       ? "user"
                   : has_nul(o.group)                    ? "group"
                   : cmd != nullptr && has_nul(cmd->cwd) ? "validate"
                                                         : nullptr;
  if (at == nullptr) return {};
  stage = at;
  return errc::invalid_argument;
}

std::error_code prepare_identity(const process_options& o, prepared_io& io, const char*& stage,
                                 const identity* given) {
  if (o.notify_socket && o.notify_fd) return errc::invalid_argument;  // stage "validate"
  stage = "setrlimit";
  for (const auto& l : o.rlimits)
    if (l.soft > l.hard || l.resource < 0) return errc::invalid_argument;
  if (given == nullptr) {
    if (auto ec = resolve_credentials(o.user, o.group, io.creds, stage)) return ec;
  } else {
    // Looked up elsewhere (identity::lookup): only the lookup of these very names will do.
    stage = "validate";
    if (given->user() != o.user || given->group() != o.group) return errc::invalid_argument;
    stage = given->stage();
    if (given->error()) return given->error();
    io.creds = credentials{given->changes(), given->uid(), given->gid(), given->groups()};
  }
  if (o.notify_socket) {
    stage = "notify socket";
    std::error_code ec;
    io.notify_sock = notify_socket::open(io.creds.change ? io.creds.uid : ::geteuid(), ec);
    if (ec) return ec;
  }
  stage = "validate";
  return {};
}

}  // namespace

std::error_code prepare_io(const process_state& st, bool want_ready, prepared_io& io, const char*& stage,
                           const identity* given) {
  // First: what cannot be done at all is refused before any open, pipe or lookup (a
  // name-service lookup may wait seconds, for nothing).
  if (auto ec = refuse_unsupported(st, stage)) return ec;
  const process_options& o = st.opts;
  const stdio* streams[3] = {&o.in, &o.out, &o.err};
  for (int i = 0; i < 3; ++i) {
    const stdio& s = *streams[i];
    switch (s.type()) {
      case stdio::kind::inherit: break;
      case stdio::kind::null:
      case stdio::kind::file: {
        stage = "open stdio";
        // O_NOCTTY: a terminal named here must not become the supervisor's own.
        int flags = O_CLOEXEC | O_NOCTTY;
        const char* path = "/dev/null";
        if (s.type() == stdio::kind::null) {
          flags |= O_RDWR;
        } else {
          // open() would stop at a NUL: another file than the one named.
          if (has_nul(s.path())) return errc::invalid_argument;
          path = s.path().c_str();
          // Never wait in open(): a FIFO without a writer (stdin) or reader (output)
          // would hold the starting thread (a CAF worker) for ever. With O_NONBLOCK a
          // reader's open returns at once (the child reads EOF until a writer comes) and
          // a writer's fails (ENXIO). Cleared below: the child gets a blocking stream.
          flags |= O_NONBLOCK | (i == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | (s.append() ? O_APPEND : O_TRUNC)));
        }
        io.owned[i].reset(::open(path, flags, 0644));
        if (!io.owned[i]) return {errno, std::system_category()};
        if ((flags & O_NONBLOCK) != 0) {
          // A directory opens read-only without complaint; the child would only see
          // EISDIR on its first read. Refused here, where the error names the stream.
          struct stat st{};
          if (::fstat(io.owned[i].get(), &st) != 0) return {errno, std::system_category()};
          if (S_ISDIR(st.st_mode)) return {EISDIR, std::system_category()};
          if (::fcntl(io.owned[i].get(), F_SETFL, ::fcntl(io.owned[i].get(), F_GETFL) & ~O_NONBLOCK) != 0)
            return {errno, std::system_category()};
        }
        io.source[i] = io.owned[i].get();
        break;
      }
      case stdio::kind::pipe: {
        stage = "pipe";
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) return {errno, std::system_category()};
        // stdin: the child reads; stdout/stderr: the child writes.
        io.owned[i].reset(fds[i == 0 ? 0 : 1]);
        io.parent_ends[i].reset(fds[i == 0 ? 1 : 0]);
        io.source[i] = io.owned[i].get();
        break;
      }
      case stdio::kind::fd:
        stage = "validate";
        if (s.borrowed_fd() < 0) return errc::invalid_argument;
        io.source[i] = s.borrowed_fd();
        break;
    }
  }
  stage = "validate";
  io.pass = o.pass_fds;
  if (o.notify_fd) {
    if (*o.notify_fd < 3) return errc::invalid_argument;
    if (want_ready) {
      stage = "pipe";
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0) return {errno, std::system_category()};
      io.notify_read.reset(fds[0]);
      io.notify_write.reset(fds[1]);
    } else {
      // Nobody will read the newline: a pipe whose read end is closed would kill the
      // child with SIGPIPE (its dispositions are the defaults) when it notifies.
      stage = "open stdio";
      io.notify_write.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
      if (!io.notify_write) return {errno, std::system_category()};
    }
    io.pass.emplace_back(*o.notify_fd, io.notify_write.get());
    stage = "validate";
  }
  if (io.pass.size() > 256) return errc::invalid_argument;
  for (const auto& [target, source] : io.pass) {
    if (target < 3 || source < 0) return errc::invalid_argument;
    io.keep.push_back(target);
  }
  std::sort(io.keep.begin(), io.keep.end());
  if (std::adjacent_find(io.keep.begin(), io.keep.end()) != io.keep.end())
    return errc::invalid_argument;
  return prepare_identity(o, io, stage, given);
}

namespace {

child_setup make_setup(const process_options& o, const prepared_io& io) {
  child_setup s;
  for (int i = 0; i < 3; ++i) s.stdio[i] = io.source[i];
  s.pass = io.pass.data();
  s.pass_count = io.pass.size();
  s.keep = io.keep.data();
  s.keep_count = io.keep.size();
  s.new_process_group = o.new_process_group;
  s.die_with_parent = o.die_with_parent;
  s.parent = ::getpid();
  if (io.creds.change) {
    s.set_credentials = true;
    s.uid = io.creds.uid;
    s.gid = io.creds.gid;
    s.groups = io.creds.groups.data();
    s.group_count = io.creds.groups.size();
  }
  s.limits = o.rlimits.data();
  s.limit_count = o.rlimits.size();
  return s;
}


}  // namespace

// Creates the child. Runs without the state's lock (it reads only the immutable
// configuration), so the lock is never held across fork, clone or a fork-server request.
std::error_code launch(const process_state& s, bool wait, fork_body body, launched& out,
                       prepared_io& io, const char*& stage, std::string& program) {
  child_setup setup = make_setup(s.opts, io);
  if (s.opts.containment == containment::cgroup) {
    stage = "cgroup";
    // The fork server makes its children itself; it has no way to place them yet.
    if (std::holds_alternative<server_target>(s.what)) return std::make_error_code(std::errc::not_supported);
    std::error_code ec;
    out.cg = cgroup::create(ec);
    if (ec) return ec;
  }

  if (auto* cmd = std::get_if<command>(&s.what)) {
    program = cmd->argv.empty() ? std::string() : cmd->argv[0];
    stage = "validate";
    std::error_code ec;
    exec_image image = exec_image::build(*cmd, ec, io.notify_sock ? &io.notify_sock->env_entry() : nullptr);
    if (ec) return ec;
    setup.cwd = cmd->cwd.empty() ? nullptr : cmd->cwd.c_str();
    // The command's own limits, then the options' (a copy only when both have some).
    std::vector<resource_limit> limits;
    if (s.opts.rlimits.empty()) {
      setup.limits = cmd->limits.data();
      setup.limit_count = cmd->limits.size();
    } else if (!cmd->limits.empty()) {
      limits = cmd->limits;
      limits.insert(limits.end(), s.opts.rlimits.begin(), s.opts.rlimits.end());
      setup.limits = limits.data();
      setup.limit_count = limits.size();
    }
    if (out.cg) setup.cgroup_procs = out.cg->procs_fd();
    exec_result r = exec_spawn(image, setup);
    if (r.clone_error != 0) {
      stage = "clone";
      return {r.clone_error, std::system_category()};
    }
    if (r.failure.stage != child_stage::none) {
      stage = stage_name(r.failure.stage);
      return {r.failure.error, std::system_category()};
    }
    out.pid = r.pid;
    out.pidfd = std::move(r.pidfd);
    out.leader = s.opts.new_process_group;
    if (out.cg) out.cg->placed();
    if (io.notify_sock) io.notify_sock->expect(r.pid);
    return {};
  }

  if (auto* t = std::get_if<server_target>(&s.what)) {
    program = t->name;
    stage = "fork server";
    if (!t->server || !t->server->running()) return errc::fork_server_unavailable;
    server_spawn_request req;
    req.name = &t->name;
    req.args = &t->args;
    for (int i = 0; i < 3; ++i) req.stdio[i] = io.source[i];
    req.pass = &io.pass;
    req.want_ready = wait;
    req.new_process_group = s.opts.new_process_group;
    req.die_with_parent = s.opts.die_with_parent;
    server_spawn_result r = t->server->spawn(req);
    if (r.error) {
      stage = r.stage;
      return r.error;
    }
    out.pid = r.pid;
    out.pidfd = std::move(r.pidfd);
    out.leader = s.opts.new_process_group;
    out.server = t->server;
    out.status_read = std::move(r.ready);
    out.server_id = r.id;
    return {};
  }

  // The fork start method: this process forks itself and the child runs `run()`.
  program = s.name;
  stage = "pipe";
  unique_fd status_write;
  if (wait) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return {errno, std::system_category()};
    out.status_read.reset(fds[0]);
    status_write.reset(fds[1]);
  }
  // The child waits for a byte on this pipe until we hold its pidfd: a host that calls
  // waitpid(-1) could otherwise collect a child that exits at once before pidfd_open,
  // and we would open a pidfd on a recycled pid (or none at all). A byte, not EOF: a
  // sibling forked at the same moment by another thread holds our write end too. A socket,
  // not a pipe: a child killed before the byte (the OOM killer) must not get the parent
  // SIGPIPE — whose default action ends the whole program — so the byte is sent with
  // MSG_NOSIGNAL.
  int go[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go) != 0) return {errno, std::system_category()};
  unique_fd go_read{go[0]}, go_write{go[1]};
  const char* child_name = s.name.c_str();

  bind_child_calls();
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::fork();
  if (pid == 0) {
    // The child: every signal is blocked until the dispositions are back to default,
    // so a signal sent the moment start() returns is held, then honoured.
    raw_syscall(SYS_close, go_write.get());
    char c;
    long got;
    while ((got = raw_syscall(SYS_read, go_read.get(), reinterpret_cast<long>(&c), 1)) == -EINTR) {
    }
    if (got != 1) exit_now(127);  // the parent gave up on us (it kills us, too)
    raw_syscall(SYS_close, go_read.get());
    run_forked_child(setup, status_write.get(), child_name, body.body, body.ctx);
  }
  int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  go_read.reset();
  if (pid < 0) {
    stage = "fork";
    return {fork_errno, std::system_category()};
  }
  int pidfd = pidfd_open(pid, 0);
  if (pidfd < 0) {
    int err = errno;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    stage = "pidfd_open";
    return {err, std::system_category()};
  }
  if (out.cg) {
    // The child waits for the go-ahead: it is placed before it has done anything.
    if (auto ec = out.cg->add(pid)) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      ::close(pidfd);
      stage = "cgroup";
      return ec;
    }
    out.cg->placed();
  }
  if (s.opts.new_process_group) ::setpgid(pid, pid);  // both sides, so no window
  out.pid = pid;
  out.pidfd.reset(pidfd);
  out.leader = s.opts.new_process_group;
  if (auto hook = launch_test_hooks::before_go.load(std::memory_order_relaxed)) hook(pid);
  // A child already dead (EPIPE) needs no byte: its exit is reported as any other.
  const char byte = 1;
  while (::send(go_write.get(), &byte, 1, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
  return {};
}

}  // namespace pkit::detail
