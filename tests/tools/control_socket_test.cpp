#define BOOST_TEST_MODULE control_socket
#include <boost/test/unit_test.hpp>

#include "control_test_support.hpp"
#include "temp_dir.hpp"

#include <pkit/tool/control_client.hpp>
#include <pkit/tool/control_server.hpp>

#include <cstring>
#include <exception>
#include <fstream>
#include <future>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

using namespace control_test;
using namespace std::chrono_literals;
using pkit::tool::control_client;
using pkit::tool::control_client_error;
using pkit::tool::control_server;
using pkit::tool::control_server_error;
using pkit::tool::control_server_options;

namespace {

mode_t mode_of(const std::string& path) {
  struct stat st {};
  BOOST_REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

/// The address of the socket file at `path` (shorter than sun_path; the tests' paths are).
sockaddr_un unix_address(const char* path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  return addr;
}

/// In a forked child, as uid/gid 65534: connects to `path`, sends a request, and exits
/// 0 when the server answered "permission_denied" and closed, 2 when the connect itself
/// was refused by the file system (EACCES), 1 otherwise. Only system calls between fork
/// and _exit: the parent has threads (the server's), so the child must not allocate.
int connect_as_nobody(const char* path) {
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setgroups(0, nullptr) != 0 || ::setresuid(65534, 65534, 65534) != 0)
      ::_exit(10);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    const sockaddr_un addr = unix_address(path);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) ::_exit(errno == EACCES ? 2 : 11);
    const char request[] = "{\"id\":1,\"command\":\"shutdown\"}\n";
    ::send(fd, request, sizeof request - 1, MSG_NOSIGNAL);
    static char buf[4096];
    std::size_t got = 0;
    for (;;) {
      const auto n = ::read(fd, buf + got, sizeof buf - 1 - got);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    buf[got] = '\0';
    ::_exit(std::strstr(buf, "\"permission_denied\"") != nullptr ? 0 : 1);
  }
  int status = 0;
  BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  BOOST_REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_socket_is_0600_in_a_0700_directory_it_created) {
  pkit_test_common::temp_dir dir;
  const auto sock_dir = dir.path() / "a" / "b";
  const auto path = (sock_dir / "t.sock").string();
  fake_handler handler;
  {
    control_server server(handler, control_server_options{path});
    BOOST_TEST(mode_of(path) == 0600u);
    BOOST_TEST(std::filesystem::is_socket(path));
    BOOST_TEST(mode_of(sock_dir.string()) == 0700u);
    BOOST_TEST(mode_of((dir.path() / "a").string()) == 0700u);
  }
  BOOST_TEST(!std::filesystem::exists(path));
}

BOOST_AUTO_TEST_CASE(a_different_uid_is_refused_and_the_handler_never_called) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: dropping to another uid needs root");
    return;
  }
  pkit_test_common::temp_dir dir;
  fake_handler handler;
  // Reachable on purpose (0755 directory, 0666 socket): the file system would refuse
  // uid 65534 first; here the peer check must.
  const auto open_dir = dir.path() / "open";
  std::filesystem::create_directory(open_dir);
  ::chmod(dir.path().c_str(), 0755);
  ::chmod(open_dir.c_str(), 0755);
  const auto path = (open_dir / "t.sock").string();
  control_server server(handler, control_server_options{path});
  ::chmod(path.c_str(), 0666);
  BOOST_TEST(connect_as_nobody(path.c_str()) == 0);
  BOOST_TEST(server.stats().refused_peers == 1u);
  BOOST_TEST(handler.call_count() == 0u);

  // With the modes the server gives, the file system refuses first.
  const auto private_path = (dir.path() / "private" / "t.sock").string();
  control_server private_server(handler, control_server_options{private_path});
  BOOST_TEST(connect_as_nobody(private_path.c_str()) == 2);
  BOOST_TEST(handler.call_count() == 0u);

  // Root and our own uid still get in.
  control_client c(path);
  BOOST_TEST(c.request("status").ok);
}

BOOST_AUTO_TEST_CASE(a_stale_socket_is_replaced) {
  pkit_test_common::temp_dir dir;
  const auto path = dir.file("stale.sock");
  {
    // A socket file nobody listens at any more: what a killed pkit run leaves.
    pkit::unique_fd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    const sockaddr_un addr = unix_address(path.c_str());
    BOOST_REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  }
  BOOST_REQUIRE(std::filesystem::exists(path));
  fake_handler handler;
  control_server server(handler, control_server_options{path});
  control_client c(path);
  BOOST_TEST(c.request("hello").ok);
}

BOOST_AUTO_TEST_CASE(a_second_server_on_a_live_path_is_refused_and_the_first_keeps_serving) {
  pkit_test_common::temp_dir dir;
  const auto path = dir.file("live.sock");
  fake_handler handler;
  control_server first(handler, control_server_options{path});
  try {
    control_server second(handler, control_server_options{path});
    BOOST_FAIL("a second server started on a live socket");
  } catch (const control_server_error& e) {
    BOOST_TEST((e.what_kind() == control_server_error::kind::already_running));
    BOOST_TEST(std::string(e.what()).find("already") != std::string::npos);
  }
  control_client c(path);
  BOOST_TEST(c.request("hello").ok);
}

// Two `pkit run`s started at one moment on one path: the first has bound its socket and
// not yet listened (a connect is refused, as at a stale socket) when the second probes.
// The second took the socket for stale, removed it and served in its place; the first
// then served on a socket file that no longer existed. This test is the first, between
// its bind and listen, holding the claim every server takes (`<path>.lock`).
BOOST_AUTO_TEST_CASE(a_path_claimed_by_a_server_still_starting_is_refused_and_its_socket_left_alone) {
  pkit_test_common::temp_dir dir;
  const auto path = dir.file("starting.sock");
  pkit::unique_fd claim(::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  BOOST_REQUIRE(claim);
  BOOST_REQUIRE(::flock(claim.get(), LOCK_EX | LOCK_NB) == 0);
  pkit::unique_fd bound(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_un addr = unix_address(path.c_str());
  BOOST_REQUIRE(::bind(bound.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  struct stat before {};
  BOOST_REQUIRE(::lstat(path.c_str(), &before) == 0);

  fake_handler handler;
  try {
    control_server second(handler, control_server_options{path});
    BOOST_FAIL("a second server started on a path another one had claimed");
  } catch (const control_server_error& e) {
    BOOST_TEST((e.what_kind() == control_server_error::kind::already_running), e.what());
  }
  struct stat after {};
  BOOST_TEST_REQUIRE(::lstat(path.c_str(), &after) == 0, "the first server's socket was removed");
  BOOST_TEST(after.st_ino == before.st_ino, "the first server's socket was replaced");

  // Its claim released (it crashed, say), the path is served again by the next server.
  claim.reset();
  bound.reset();
  control_server next(handler, control_server_options{path});
  control_client c(path);
  BOOST_TEST(c.request("hello").ok);
}

// A program out of descriptors cannot open the path's lock file: that is the program's
// state, not the path's — the same path serves once descriptors are free again. It was
// reported bad_path. While the limit holds nothing but the server's start runs, and no
// Boost.Test check: UBSan's vptr check (the ASan build), on a miss in its type cache,
// needs a pipe of its own and reports the object invalid without one — so the type the
// start throws is checked once before, to be in that cache.
BOOST_AUTO_TEST_CASE(a_program_out_of_descriptors_fails_as_a_system_error_not_a_bad_path) {
  pkit_test_common::temp_dir dir;
  const auto path = dir.file("nofd.sock");
  fake_handler handler;
  rlimit saved{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  int lowest_free = 0;
  while (::fcntl(lowest_free, F_GETFD) >= 0) ++lowest_free;
  try {  // what the failing start does, once before: its types in UBSan's cache
    throw control_server_error(control_server_error::kind::system,
                               std::error_code(EMFILE, std::system_category()).message());
  } catch (const control_server_error& e) {
    BOOST_REQUIRE(e.what_kind() == control_server_error::kind::system);
  }
  std::exception_ptr failure;
  rlimit none = saved;
  none.rlim_cur = static_cast<rlim_t>(lowest_free);  // no new descriptor at all
  const bool lowered = ::setrlimit(RLIMIT_NOFILE, &none) == 0;
  if (lowered) {
    try {
      control_server s(handler, control_server_options{path});
    } catch (...) {
      failure = std::current_exception();
    }
  }
  const bool restored = ::setrlimit(RLIMIT_NOFILE, &saved) == 0;
  BOOST_TEST_REQUIRE(lowered);
  BOOST_TEST_REQUIRE(restored);
  BOOST_TEST_REQUIRE(static_cast<bool>(failure), "a server started with no descriptor to spare");
  try {
    std::rethrow_exception(failure);
  } catch (const control_server_error& e) {
    BOOST_TEST((e.what_kind() == control_server_error::kind::system), e.what());
    BOOST_TEST(std::string(e.what()).find("lock file") != std::string::npos, e.what());
    BOOST_TEST(std::string(e.what()).find("Too many open files") != std::string::npos, e.what());
  }
  // Nothing was left behind, and the path serves now.
  BOOST_TEST(::fcntl(lowest_free, F_GETFD) < 0, "descriptor " << lowest_free << " left open");
  control_server next(handler, control_server_options{path});
  control_client c(path);
  BOOST_TEST(c.request("hello").ok);
}

// A listener at the path that no server's claim covers (not pkit's, or an older one)
// with its backlog full: the probe's blocking connect waited for a slot, and the start
// hung for as long as the listener did not accept. It is refused at once now.
BOOST_AUTO_TEST_CASE(a_listener_with_a_full_backlog_is_refused_without_waiting) {
  pkit_test_common::temp_dir dir;
  const auto path = dir.file("busy.sock");
  pkit::unique_fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_un addr = unix_address(path.c_str());
  BOOST_REQUIRE(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  BOOST_REQUIRE(::listen(listener.get(), 0) == 0);
  std::vector<pkit::unique_fd> waiting;
  for (;;) {  // connections nobody accepts, until the backlog is full
    pkit::unique_fd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(c);
    if (::connect(c.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      BOOST_REQUIRE_MESSAGE(errno == EAGAIN, std::strerror(errno));
      break;
    }
    waiting.push_back(std::move(c));
    BOOST_REQUIRE(waiting.size() < 1000u);
  }
  fake_handler handler;
  std::promise<std::string> outcome;
  auto verdict = outcome.get_future();
  std::thread starter([&] {
    try {
      control_server s(handler, control_server_options{path});
      outcome.set_value("started");
    } catch (const control_server_error& e) {
      outcome.set_value(e.what_kind() == control_server_error::kind::already_running ? "already_running" : e.what());
    } catch (const std::exception& e) {
      outcome.set_value(e.what());
    }
  });
  const bool answered = verdict.wait_for(10s) == std::future_status::ready;
  if (!answered) {  // free a slot, so that the hung start ends and the thread joins
    pkit::unique_fd taken(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  }
  starter.join();
  BOOST_TEST(answered, "the start waited for the listener's backlog");
  BOOST_TEST(verdict.get() == "already_running");
  struct stat st {};
  BOOST_TEST(::lstat(path.c_str(), &st) == 0, "the listener's socket was removed");
}

BOOST_AUTO_TEST_CASE(unusable_paths_are_refused_with_their_reason) {
  pkit_test_common::temp_dir dir;
  fake_handler handler;
  const auto file = dir.file("plain");
  { std::ofstream(file) << "not a socket"; }
  try {
    control_server s(handler, control_server_options{file});
    BOOST_FAIL("started on a regular file");
  } catch (const control_server_error& e) {
    BOOST_TEST((e.what_kind() == control_server_error::kind::bad_path));
    BOOST_TEST(std::string(e.what()).find("not a socket") != std::string::npos);
  }
  BOOST_TEST(std::filesystem::exists(file));  // left alone
  try {
    control_server s(handler, control_server_options{dir.path() / std::string(120, 'x')});
    BOOST_FAIL("started on an over-long path");
  } catch (const control_server_error& e) {
    BOOST_TEST((e.what_kind() == control_server_error::kind::bad_path));
  }
  if (::geteuid() == 0) {
    // A directory of another user: they could replace our socket.
    const auto theirs = dir.path() / "theirs";
    std::filesystem::create_directory(theirs);
    BOOST_REQUIRE(::chown(theirs.c_str(), 65534, 65534) == 0);
    try {
      control_server s(handler, control_server_options{theirs / "t.sock"});
      BOOST_FAIL("started in another user's directory");
    } catch (const control_server_error& e) {
      BOOST_TEST(std::string(e.what()).find("belongs to uid 65534") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_client_without_a_server_says_so) {
  pkit_test_common::temp_dir dir;
  const auto path = dir.file("nobody.sock");
  try {
    control_client c(path);
    BOOST_FAIL("connected to nothing");
  } catch (const control_client_error& e) {
    BOOST_TEST((e.what_kind() == control_client_error::kind::no_server));
    BOOST_TEST(std::string(e.what()) == "no pkit run listening at " + path + " (is it running?)");
  }
}

BOOST_AUTO_TEST_CASE(stop_is_idempotent_and_leaves_no_descriptor_behind) {
  pkit_test_common::temp_dir dir;
  const auto count_fds = [] {
    return std::distance(std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator{});
  };
  const auto before = count_fds();
  {
    fake_handler handler;
    control_server server(handler, control_server_options{dir.file("s.sock")});
    {
      control_client a(dir.file("s.sock"));
      BOOST_TEST(a.request("status").ok);
      raw_client idle(dir.file("s.sock"));
      server.stop();
      BOOST_TEST(idle.closed_within(5s));
    }
    server.stop();
  }
  BOOST_TEST(count_fds() == before);
}

BOOST_AUTO_TEST_CASE(out_of_descriptors_the_server_backs_off_and_recovers) {
  // FAULTS F4: accept failing with EMFILE must not spin the loop, and control comes back
  // once descriptors are free again.
  pkit_test_common::temp_dir dir;
  const auto path = dir.file("f4.sock");
  fake_handler handler;
  control_server server(handler, control_server_options{path});
  std::vector<pkit::unique_fd> clients;
  for (int i = 0; i < 20; ++i) clients.emplace_back(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  rlimit saved{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  const auto open_fds = std::distance(std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator{});
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(open_fds);  // no descriptor left to accept with
  // No Boost.Test check while the limit is low: UBSan (the ASan build) checks Boost's
  // message objects with a pipe of its own, and with no descriptor left it reports them
  // as invalid. Everything is measured first, checked once the limit is back.
  const bool lowered = ::setrlimit(RLIMIT_NOFILE, &low) == 0;
  const sockaddr_un addr = unix_address(path.c_str());
  bool connected = true;
  for (auto& c : clients)
    connected = connected && ::connect(c.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (server.stats().accept_pauses == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  const auto first_pauses = server.stats().accept_pauses;

  const auto cpu_ms = [] {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
  };
  const double cpu0 = cpu_ms();
  std::this_thread::sleep_for(500ms);  // a window to measure CPU over, not a synchronisation
  const double used = cpu_ms() - cpu0;
  const auto later_pauses = server.stats().accept_pauses;
  const bool restored = ::setrlimit(RLIMIT_NOFILE, &saved) == 0;

  BOOST_REQUIRE(lowered);
  BOOST_REQUIRE(restored);
  BOOST_REQUIRE(connected);
  BOOST_TEST(first_pauses >= 1u);
  BOOST_TEST(used < 100.0, "the server used " << used << " ms of CPU in 500 ms while out of descriptors");
  BOOST_TEST(later_pauses < 20u);  // about one retry per 100 ms

  clients.clear();
  control_client c(path);
  BOOST_TEST(c.request("status", json::object(), 5s).ok);
}

namespace {

/// REVIEW D6: an impostor, in a forked child as uid 65533, listening at `path` (its own
/// 0755 directory, a 0666 socket: reachable to anyone). Writes one byte to `ready` once
/// listening, then exits 0 when whoever connected sent nothing before closing, 1 when it
/// sent something. System calls only between fork and _exit.
pid_t impostor_listening_at(const char* dir, const char* path, int ready) {
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid != 0) return pid;
  if (::setresgid(65533, 65533, 65533) != 0 || ::setgroups(0, nullptr) != 0 || ::setresuid(65533, 65533, 65533) != 0)
    ::_exit(10);
  if (::mkdir(dir, 0755) != 0) ::_exit(11);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  const sockaddr_un addr = unix_address(path);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || ::chmod(path, 0666) != 0 ||
      ::listen(fd, 4) != 0)
    ::_exit(12);
  if (::write(ready, "r", 1) != 1) ::_exit(13);
  const int conn = ::accept(fd, nullptr, nullptr);
  if (conn < 0) ::_exit(14);
  char buf[256];
  const auto n = ::read(conn, buf, sizeof buf);
  ::_exit(n == 0 ? 0 : 1);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_client_refuses_a_server_of_another_uid_before_sending_anything) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: an impostor of another uid needs root");
    return;
  }
  pkit_test_common::temp_dir dir;
  ::chmod(dir.path().c_str(), 01777);  // like /tmp, where the default socket lives without XDG_RUNTIME_DIR
  const auto impostor_dir = dir.path() / "pkit-65534";
  const auto path = (impostor_dir / "pkit.sock").string();
  int ready[2];
  BOOST_REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  const pid_t pid = impostor_listening_at(impostor_dir.c_str(), path.c_str(), ready[1]);
  ::close(ready[1]);
  char byte = 0;
  BOOST_REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);
  bool refused = false;
  try {
    control_client c(path);
    c.request("add", json{{"snippet", "secret = 1"}}, 2s);
  } catch (const control_client_error& e) {
    refused = true;
    BOOST_TEST((e.what_kind() == control_client_error::kind::untrusted_server));
    BOOST_TEST(std::string(e.what()).find("uid 65533") != std::string::npos, e.what());
  }
  BOOST_TEST(refused);
  int status = 0;
  BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0, "the impostor received the request (exit " << WEXITSTATUS(status) << ")");
}

BOOST_AUTO_TEST_CASE(a_server_refuses_a_symlinked_or_writable_socket_directory) {
  pkit_test_common::temp_dir dir;
  fake_handler handler;
  const auto real = dir.path() / "real";
  std::filesystem::create_directory(real);
  ::chmod(real.c_str(), 0700);
  const auto link = dir.path() / "link";
  std::filesystem::create_directory_symlink(real, link);
  const auto refused_with = [&](const std::filesystem::path& socket, const std::string& why) {
    try {
      control_server s(handler, control_server_options{socket});
      BOOST_FAIL("started at " << socket);
    } catch (const control_server_error& e) {
      BOOST_TEST((e.what_kind() == control_server_error::kind::bad_path));
      BOOST_TEST(std::string(e.what()).find(why) != std::string::npos, e.what());
    }
  };
  // Whoever can write the parent could point the link elsewhere between our checks.
  refused_with(link / "t.sock", "is a symbolic link");
  BOOST_TEST(!std::filesystem::exists(real / "t.sock"));
  // A directory others can write: they could replace our socket.
  const auto shared = dir.path() / "shared";
  std::filesystem::create_directory(shared);
  ::chmod(shared.c_str(), 0770);
  refused_with(shared / "t.sock", "writable by group or others");
  ::chmod(shared.c_str(), 01777);
  refused_with(shared / "t.sock", "writable by group or others");
}

BOOST_AUTO_TEST_CASE(a_server_not_run_by_root_refuses_a_root_owned_directory) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: dropping to another uid needs root");
    return;
  }
  pkit_test_common::temp_dir dir;
  ::chmod(dir.path().c_str(), 0755);
  const auto root_dir = dir.path() / "rootdir";
  std::filesystem::create_directory(root_dir);
  ::chmod(root_dir.c_str(), 0755);
  const auto path = root_dir / "t.sock";
  // The parent has no thread here (no server alive), so the child may allocate.
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setgroups(0, nullptr) != 0 || ::setresuid(65534, 65534, 65534) != 0)
      ::_exit(10);
    try {
      fake_handler h;
      control_server s(h, control_server_options{path});
      ::_exit(1);
    } catch (const control_server_error& e) {
      ::_exit(std::string(e.what()).find("belongs to uid 0") != std::string::npos ? 0 : 2);
    } catch (...) {
      ::_exit(3);
    }
  }
  int status = 0;
  BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
}
