// process_options::notify_socket: systemd's readiness protocol (NOTIFY_SOCKET, READY=1),
// through start(wait) and on_ready. The helper child sends its datagrams with a plain
// sendto, as sd_notify does; every case synchronises on the child's output, the start's
// return or the on_ready promise — the only time-based cases are those whose expected
// outcome *is* a deadline (start_timeout).

#define BOOST_TEST_MODULE libpkit readiness through NOTIFY_SOCKET
#include "test_support.hpp"

#include "detail/notify_socket.hpp"

#include <future>
#include <thread>

#include <sys/socket.h>
#include <sys/un.h>

using namespace pkit_test;
using namespace std::chrono_literals;

namespace {

pkit::process_options notifying(std::chrono::milliseconds timeout = event_timeout) {
  pkit::process_options o;
  o.notify_socket = true;
  o.ready_timeout = timeout;
  return o;
}

// The abstract sockets of this process still bound (from /proc/net/unix).
std::size_t bound_notify_sockets() {
  std::ifstream in("/proc/net/unix");
  const std::string mine = "@pkit/notify/" + std::to_string(::getpid()) + "/";
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);)
    if (line.find(mine) != std::string::npos) ++n;
  return n;
}

// Sends `message` to the abstract address `at` ("@name"), from a forked child that first
// takes uid `uid` (when not -1). Returns once the datagram is queued (or refused).
bool send_from(const std::string& at, const std::string& message, uid_t uid) {
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    if (uid != static_cast<uid_t>(-1) && ::setresuid(uid, uid, uid) != 0) ::_exit(2);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, at.data(), at.size());
    addr.sun_path[0] = '\0';
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + at.size());
    const bool ok = ::sendto(fd, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&addr), len) ==
                    static_cast<ssize_t>(message.size());
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(start_wait)

BOOST_AUTO_TEST_CASE(start_wait_returns_only_after_READY_1) {
  auto o = notifying();
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command({"sd-notify", "300", "STATUS=warming up", "READY=1"}), o};
  const auto t0 = std::chrono::steady_clock::now();
  p.start(pkit::wait);
  const auto took = std::chrono::steady_clock::now() - t0;
  // The child prints "sending" before it sends: it must be there already.
  auto out = p.take_stdout_pipe();
  BOOST_TEST(read_available(out.get()) == "sending\n");
  BOOST_TEST((took >= 300ms));
  BOOST_TEST(p.is_alive());
  p.kill();
  BOOST_TEST(p.join_status().signal() == SIGKILL);
}

BOOST_AUTO_TEST_CASE(the_child_gets_an_abstract_NOTIFY_SOCKET_overriding_an_inherited_one) {
  auto cmd = child_command({"env", "NOTIFY_SOCKET"});
  cmd.env.push_back("NOTIFY_SOCKET=/run/systemd/notify");
  pkit::process p{cmd, [] {
                    auto o = notifying();
                    o.out = pkit::stdio::pipe();
                    return o;
                  }()};
  p.start();
  auto out = p.take_stdout_pipe();
  const std::string got = read_all(out.get());
  BOOST_TEST(got.rfind("@pkit/notify/" + std::to_string(::getpid()) + "/", 0) == 0, got);
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(a_child_that_never_sends_times_out) {
  pkit::process p{child_command({"pause"}), notifying(200ms)};
  std::error_code ec;
  BOOST_TEST(p.start(pkit::wait, ec) == -1);
  BOOST_TEST((ec == pkit::errc::start_timeout));
  BOOST_TEST(p.last_failure()->stage == "ready");
  BOOST_TEST(!p.is_alive());
}

BOOST_AUTO_TEST_CASE(datagrams_without_a_READY_1_line_do_not_make_it_ready) {
  auto o = notifying(300ms);
  o.out = pkit::stdio::pipe();
  // Near misses: READY=1 inside another value, READY=10, a leading blank.
  pkit::process p{child_command({"sd-notify", "0", "STATUS=READY=1", "READY=10", " READY=1", "MAINPID=1"}), o};
  std::error_code ec;
  p.start(pkit::wait, ec);
  BOOST_TEST((ec == pkit::errc::start_timeout));
  auto out = p.take_stdout_pipe();
  BOOST_TEST(read_available(out.get()) == "sending\n");  // it did send
}

BOOST_AUTO_TEST_CASE(a_child_that_dies_before_READY_1_died_before_ready) {
  pkit::process p{child_command({"exit", "3"}), notifying()};
  std::error_code ec;
  const auto t0 = std::chrono::steady_clock::now();
  p.start(pkit::wait, ec);
  BOOST_TEST((ec == pkit::errc::died_before_ready));
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 5s));  // the pidfd, not the deadline
  BOOST_TEST(p.last_failure()->stage == "ready");
}

BOOST_AUTO_TEST_CASE(READY_1_then_exit_at_once_is_ready) {
  pkit::process p{child_command({"sd-notify-exit", "0", "READY=1"}), notifying()};
  std::error_code ec;
  p.start(pkit::wait, ec);
  BOOST_TEST(!ec, ec.message());
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(a_descendant_of_the_child_may_send_READY_1) {
  auto o = notifying();
  pkit::process p{child_command({"sd-notify-grandchild", "0", "READY=1"}), o};
  std::error_code ec;
  p.start(pkit::wait, ec);
  BOOST_TEST(!ec, ec.message());
  p.kill();
  p.join();
}

BOOST_AUTO_TEST_CASE(systemds_own_systemd_notify_is_understood) {
  std::string tool;
  for (const char* candidate : {"/usr/bin/systemd-notify", "/bin/systemd-notify"})
    if (::access(candidate, X_OK) == 0) tool = candidate;
  if (tool.empty()) {
    BOOST_TEST_MESSAGE("skipped: no systemd-notify here");
    return;
  }
  // libsystemd's sd_pid_notify on the sending side: the abstract address as it spells it.
  pkit::process p{pkit::command{"/bin/sh", "-c", "\"$0\" --ready --status=up && exec \"$1\" pause", tool,
                                child_path()},
                  notifying()};
  std::error_code ec;
  p.start(pkit::wait, ec);
  BOOST_TEST(!ec, ec.message());
  p.kill();
  p.join();
}

BOOST_AUTO_TEST_CASE(the_socket_combines_with_neither_notify_fd_nor_a_callable) {
  auto o = notifying();
  o.notify_fd = 3;
  pkit::process a{child_command({"exit", "0"}), o};
  std::error_code ec;
  a.start(ec);
  BOOST_TEST((ec == pkit::errc::invalid_argument));
  BOOST_TEST(a.last_failure()->stage == "validate");

  pkit::process b{[] { return 0; }, notifying()};
  b.start(ec);
  BOOST_TEST((ec == std::errc::not_supported));
  BOOST_TEST(b.last_failure()->stage == "notify socket");
}

BOOST_AUTO_TEST_CASE(no_descriptor_or_socket_outlives_a_hundred_runs) {
  const auto before = open_fds();
  for (int i = 0; i < 100; ++i) {
    pkit::process p{child_command({"sd-notify-exit", "0", "READY=1"}), notifying()};
    p.start(pkit::wait);
    BOOST_TEST_REQUIRE(p.join() == 0);
  }
  for (int i = 0; i < 20; ++i) {  // failures too: timeout and death
    pkit::process p{child_command({i % 2 ? "pause" : "exit", "0"}), notifying(20ms)};
    std::error_code ec;
    p.start(pkit::wait, ec);
    BOOST_TEST_REQUIRE(static_cast<bool>(ec));
  }
  check_fds_unchanged(before);
  BOOST_TEST(bound_notify_sockets() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(on_ready)

namespace {
struct report_box {
  std::promise<std::error_code> promise;
  std::atomic<int> calls{0};
};

pkit::process_options reporting(report_box& box) {
  auto o = notifying();
  o.on_ready = [&box](pkit::process&, std::error_code ec) {
    if (box.calls.fetch_add(1) == 0) box.promise.set_value(ec);
  };
  return o;
}

std::error_code await(report_box& box) {
  auto f = box.promise.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(event_timeout) == std::future_status::ready));
  return f.get();
}
}  // namespace

BOOST_AUTO_TEST_CASE(on_ready_is_called_after_READY_1) {
  report_box box;
  auto o = reporting(box);
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command({"sd-notify", "100", "READY=1"}), o};
  p.start();
  auto out = p.take_stdout_pipe();
  const std::error_code ec = await(box);
  BOOST_TEST(!ec, ec.message());
  BOOST_TEST(read_available(out.get()) == "sending\n");
  p.kill();
  p.join();
  BOOST_TEST(box.calls == 1);
}

BOOST_AUTO_TEST_CASE(on_ready_reports_a_death_before_READY_1) {
  report_box box;
  pkit::process p{child_command({"sd-notify-exit", "0", "STATUS=bye"}), reporting(box)};
  p.start();
  const std::error_code ec = await(box);
  BOOST_TEST((ec == pkit::errc::died_before_ready));
  p.join();
  BOOST_TEST(box.calls == 1);
}

BOOST_AUTO_TEST_CASE(on_ready_sees_a_READY_1_sent_just_before_the_exit) {
  for (int i = 0; i < 20; ++i) {
    report_box box;
    pkit::process p{child_command({"sd-notify-exit", "0", "READY=1"}), reporting(box)};
    p.start();
    const std::error_code ec = await(box);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    BOOST_TEST(p.join() == 0);
  }
}

BOOST_AUTO_TEST_CASE(no_descriptor_or_socket_outlives_async_runs) {
  const auto before = open_fds();
  for (int i = 0; i < 50; ++i) {
    report_box box;
    const char* mode = i % 3 == 0 ? "sd-notify-exit" : i % 3 == 1 ? "sd-notify" : "exit";
    pkit::process p{child_command({mode, "0", "READY=1"}), reporting(box)};
    p.start();
    (void)await(box);
    p.kill();
    p.join();
  }
  // A pending watch whose process object goes away with its child still running.
  for (int i = 0; i < 10; ++i) {
    report_box box;
    auto p = std::make_unique<pkit::process>(child_command({"pause"}), reporting(box));
    p->start();
    p.reset();  // stops the child
  }
  // The reaper closes what it watched once the exits are delivered: wait for that.
  const auto deadline = std::chrono::steady_clock::now() + event_timeout;
  while ((open_fds() != before || bound_notify_sockets() != 0) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  check_fds_unchanged(before);
  BOOST_TEST(bound_notify_sockets() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(senders)

// White-box: the credentials check itself. Needs root (to send as another user).
BOOST_AUTO_TEST_CASE(a_datagram_from_another_user_is_ignored_one_from_the_childs_user_counts) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: needs root to send as another user");
    return;
  }
  std::error_code ec;
  auto sock = pkit::detail::notify_socket::open(0, ec);
  BOOST_TEST_REQUIRE(!ec);
  sock->expect(1);  // a pid no sender here has
  const std::string at = sock->env_entry().substr(std::string("NOTIFY_SOCKET=").size());
  BOOST_TEST_REQUIRE(send_from(at, "READY=1", 65534));
  BOOST_TEST(!sock->drain());
  BOOST_TEST_REQUIRE(send_from(at, "STATUS=x\nREADY=1\n", static_cast<uid_t>(-1)));
  BOOST_TEST(sock->drain());
  BOOST_TEST(sock->ready());
}

BOOST_AUTO_TEST_CASE(descriptors_sent_along_are_closed) {
  std::error_code ec;
  auto sock = pkit::detail::notify_socket::open(::geteuid(), ec);
  BOOST_TEST_REQUIRE(!ec);
  const std::string at = sock->env_entry().substr(std::string("NOTIFY_SOCKET=").size());
  auto extra = make_pipe();
  const auto before = open_fds();
  {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, at.data(), at.size());
    addr.sun_path[0] = '\0';
    pkit::unique_fd s{::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    char text[] = "FDSTORE=1";
    iovec iov{text, sizeof text - 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + at.size());
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    const int fd = extra.write.get();
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    BOOST_TEST_REQUIRE(::sendmsg(s.get(), &msg, 0) == static_cast<ssize_t>(sizeof text - 1));
  }
  BOOST_TEST(!sock->drain());
  check_fds_unchanged(before);
  extra.write.reset();
  BOOST_TEST(eof_within(extra.read.get()));  // the passed copy is gone too
}

BOOST_AUTO_TEST_SUITE_END()
