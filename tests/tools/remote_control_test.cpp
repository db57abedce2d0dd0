// The remote control endpoint alone (remote_control_server + remote_control_client, plain
// BASP on 127.0.0.1, in this process) against a handler that blocks on demand: the bound
// on requests in flight ("busy"), the bound on a request's size, the protocol's checks
// before the handler, streams refused, a throwing handler, an address refused.

#define BOOST_TEST_MODULE remote_control
#include <boost/test/unit_test.hpp>

#include <pkit/tool/remote_control_client.hpp>
#include <pkit/tool/remote_control_server.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using pkit::tool::control_reply;

/// Answers every command with {"command": C}; while closed, blocks each call until opened.
class gated_handler : public pkit::tool::control_handler {
public:
  control_reply handle(const std::string& command, const json&) override {
    std::unique_lock lock(m_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    --waiting_;
    ++calls_;
    if (command == "reload") throw std::runtime_error("boom");
    return control_reply::success({{"command", command}});
  }
  std::unique_ptr<pkit::tool::control_stream> open_stream(const std::string&, const json&, sink,
                                                           control_reply& error) override {
    error = control_reply::failure("internal", "a stream reached the handler");
    return nullptr;
  }
  void close() {
    std::lock_guard lock(m_);
    open_ = false;
  }
  void open() {
    std::lock_guard lock(m_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_blocked(int n) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, 20s, [&] { return waiting_ >= n; });
  }
  int calls() {
    std::lock_guard lock(m_);
    return calls_;
  }

private:
  std::mutex m_;
  std::condition_variable cv_;
  bool open_ = true;
  int waiting_ = 0;
  int calls_ = 0;
};

struct endpoint {
  gated_handler handler;
  pkit::tool::remote_control_server server{handler, {"127.0.0.1", 0, std::nullopt}};

  control_reply ask(const std::string& command, const json& args = json::object()) {
    pkit::tool::remote_control_client c("127.0.0.1", server.port(), std::nullopt, 20s);
    return c.request(command, args, 20s);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_request_reaches_the_handler_and_its_reply_comes_back) {
  endpoint e;
  BOOST_TEST(e.server.port() != 0);
  auto r = e.ask("status");
  BOOST_TEST(r.ok);
  BOOST_TEST(r.result == (json{{"command", "status"}}));
  r = e.ask("hello");
  BOOST_TEST(r.ok);
  BOOST_TEST(r.result.value("protocol", 0) == 1);
}

BOOST_AUTO_TEST_CASE(the_socket_s_checks_come_first_and_streams_are_refused) {
  endpoint e;
  auto r = e.ask("stop", json::object());  // "names" is required
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.code == "bad_request");
  r = e.ask("frobnicate");
  BOOST_TEST(r.code == "unknown_command");
  for (const std::string stream : {"events", "tail"}) {
    r = e.ask(stream, stream == "tail" ? json{{"name", "x"}} : json::object());
    BOOST_TEST(r.code == "stream_not_remote", stream << ": " << r.code << " " << r.message);
  }
  BOOST_TEST(e.handler.calls() == 0, "nothing of that reached the handler");
  r = e.ask("reload");
  BOOST_TEST(r.code == "internal");
  BOOST_TEST(r.message.find("boom") != std::string::npos, r.message);
}

BOOST_AUTO_TEST_CASE(a_request_over_the_size_bound_is_refused_unread_by_the_handler) {
  endpoint e;
  auto r = e.ask("add", {{"toml", std::string((std::size_t{1} << 20) + 10, 'x')}});
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.code == "bad_request");
  BOOST_TEST(r.message.find("larger than") != std::string::npos, r.message);
  BOOST_TEST(e.handler.calls() == 0);
}

BOOST_AUTO_TEST_CASE(more_requests_than_the_bound_at_once_get_busy_and_the_rest_are_answered) {
  endpoint e;
  e.handler.close();
  std::vector<std::future<control_reply>> pending;
  for (int i = 0; i < 4; ++i) pending.push_back(std::async(std::launch::async, [&e] { return e.ask("status"); }));
  BOOST_REQUIRE(e.handler.wait_blocked(4));
  auto r = e.ask("status");
  BOOST_TEST(r.code == "busy", r.code << " " << r.message);
  e.handler.open();
  for (auto& p : pending) BOOST_TEST(p.get().ok);
  BOOST_TEST(e.ask("status").ok, "free again");
}

BOOST_AUTO_TEST_CASE(a_plain_listener_beyond_loopback_is_refused) {
  gated_handler h;
  BOOST_CHECK_THROW(pkit::tool::remote_control_server(h, {"0.0.0.0", 0, std::nullopt}), pkit::tool::remote_control_error);
  BOOST_CHECK_THROW(pkit::tool::remote_control_server(h, {"", 0, std::nullopt}), pkit::tool::remote_control_error);
}

BOOST_AUTO_TEST_CASE(nothing_listening_is_no_server) {
  std::uint16_t port = 0;
  {
    endpoint e;
    port = e.server.port();
  }
  try {
    pkit::tool::remote_control_client c("127.0.0.1", port, std::nullopt, 10s);
    BOOST_FAIL("connected to a stopped endpoint");
  } catch (const pkit::tool::control_client_error& err) {
    BOOST_TEST((err.what_kind() == pkit::tool::control_client_error::kind::no_server), err.what());
  }
}
