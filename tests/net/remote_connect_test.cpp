// A node whose BASP handshake reaches the controller later than the controller's next
// heartbeat tick. CAF 0.17.6 creates the connecting side's context with `last_seen` at
// the clock's epoch, so that tick drops the connection (connection_timeout) although the
// node answers; the directory tries such a connect again. Here a loopback proxy in front
// of a real node holds the node's bytes of the first connection that carries a client
// handshake for 1.2 s (the controller's heartbeat is 100 ms); later connections pass
// at once.

#include <boost/test/unit_test.hpp>

#include "remote_fixture.hpp"

#include <pkit/unique_fd.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace remote_test;

namespace {

/// Forwards loopback connections on `port` to `target`. The server's bytes of the first
/// connection whose client spoke are held until `hold` after the client's first byte
/// (those of the others until the client's first byte only).
/// Threads end when the proxy is destroyed (its sockets are shut down).
class holding_proxy {
public:
  holding_proxy(std::uint16_t target, std::chrono::milliseconds hold) : target_(target), hold_(hold) {
    listener_ = pkit::unique_fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    BOOST_TEST_REQUIRE(static_cast<bool>(listener_));
    sockaddr_in at = loopback(0);
    BOOST_TEST_REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
    BOOST_TEST_REQUIRE(::listen(listener_.get(), 16) == 0);
    socklen_t len = sizeof at;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&at), &len);
    port = ntohs(at.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  holding_proxy(const holding_proxy&) = delete;
  holding_proxy& operator=(const holding_proxy&) = delete;
  ~holding_proxy() {
    stop_ = true;
    ::shutdown(listener_.get(), SHUT_RDWR);
    acceptor_.join();
    for (auto& t : links_) t.join();
  }

  std::uint16_t port = 0;
  std::atomic<int> held{0};         ///< connections whose server bytes were held
  std::atomic<int> connections{0};  ///< connections accepted

private:
  static sockaddr_in loopback(std::uint16_t p) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(p);
    return a;
  }

  void accept_loop() {
    while (!stop_) {
      int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (stop_) return;  // shut down
        continue;           // EINTR, ECONNABORTED: the listener still serves
      }
      ++connections;
      int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in to = loopback(target_);
      if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ::close(c);
        if (s >= 0) ::close(s);
        continue;
      }
      links_.emplace_back([this, c, s] { forward(c, s); });
    }
  }

  // Copies both ways until either side closes. The server's bytes wait for the client's
  // first (CAF's node writes its handshake on accept, maybe before the controller's
  // arrives); on the first connection whose client spoke, for `hold_` more.
  void forward(int client, int server) {
    using clock = std::chrono::steady_clock;
    bool holding = true, client_spoke = false;
    clock::time_point release = clock::time_point::max();
    std::vector<char> pending;
    char buf[4096];
    while (!stop_) {
      if (holding && clock::now() >= release) {
        holding = false;
        if (!pending.empty() && ::send(client, pending.data(), pending.size(), MSG_NOSIGNAL) < 0) break;
        pending.clear();
      }
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(fds, 2, 20) < 0) break;
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = ::recv(client, buf, sizeof buf, 0);
        if (n <= 0) break;
        if (!client_spoke) {
          client_spoke = true;
          bool expected = false;
          if (claimed_.compare_exchange_strong(expected, true)) {
            release = clock::now() + hold_;
            ++held;
          } else {
            release = clock::now();
          }
        }
        if (::send(server, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) < 0) break;
      }
      if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = ::recv(server, buf, sizeof buf, 0);
        if (n <= 0) break;
        if (holding)
          pending.insert(pending.end(), buf, buf + n);
        else if (::send(client, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) < 0)
          break;
      }
      if (holding && clock::now() >= release) {  // not a poll round later: the window is short
        holding = false;
        if (!pending.empty() && ::send(client, pending.data(), pending.size(), MSG_NOSIGNAL) < 0) break;
        pending.clear();
      }
    }
    ::close(client);
    ::close(server);
  }

  std::uint16_t target_;
  std::chrono::milliseconds hold_;
  pkit::unique_fd listener_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> claimed_{false};
  std::thread acceptor_;
  std::vector<std::thread> links_;  // touched by the acceptor only, joined after it
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_node_whose_handshake_comes_after_the_next_heartbeat_tick_is_still_used) {
  node_side a{"node-a"};
  // 1.2 s: well past a 100 ms tick even when the controller's broker lags, well within
  // the controller's connect_timeout (2 s) for the try after.
  holding_proxy proxy{a.port, std::chrono::milliseconds(1200)};
  controller_side ctl;  // heartbeat 100 ms (fast_link): the held handshake misses a tick
  ctl.add("a", proxy.port);
  auto sup = ctl.start(tree({remote_child("there", {"a"})}));
  auto kids = ctl.children(sup);
  BOOST_TEST_REQUIRE(kids.size() == 1u);
  BOOST_TEST((kids["there"].state == child_state::running));
  BOOST_TEST(kids["there"].node == "a");
  BOOST_TEST(alive(kids["there"].pid));
  BOOST_TEST(proxy.held.load() == 1, "the proxy held no handshake: the case tested nothing");
  // The probe's connection, the dropped connect and the one that was used.
  BOOST_TEST(proxy.connections.load() >= 3);
  (*ctl.self)->request(sup, deadline, stop_atom_v).receive([](caf::ok_atom) {}, [&](caf::error& e) {
    BOOST_TEST_ERROR(ctl.sys.sys->render(e));
  });
  BOOST_TEST(wait_gone(kids["there"].pid));
}
