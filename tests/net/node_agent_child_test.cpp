// The child a node agent runs for a remote spec (net_node_agent_test): never the spec as
// received — the node's base environment and default user, a name no local program can
// have — and refusals whose file-system facts stay on the node.

#include "node_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace node_test;

namespace {

/// The entries of /proc/PID/environ.
std::vector<std::string> environ_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
  std::vector<std::string> out;
  for (std::string entry; std::getline(in, entry, '\0');)
    out.push_back(entry);
  return out;
}

/// Waits until PID runs `image` (its exec is done): a spawn that changes user returns
/// before the exec, and until then /proc shows the agent's own environment and uid. No
/// event says "exec'd" for a program that reports no readiness: polled, bounded. Any
/// remote child has an environment (the node's base PATH at least).
bool runs_image(pid_t pid, const std::string& image) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  const std::string link = "/proc/" + std::to_string(pid) + "/exe";
  for (;;) {
    char buf[4096];
    const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    // The kernel switches /proc/PID/exe before it lays out the new image's environment
    // (exec's window): an empty environ is a not yet finished exec, not the child's.
    if (n > 0 && std::string(buf, static_cast<std::size_t>(n)) == image && !environ_of(pid).empty()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

/// The real uid of PID (the first field of /proc/PID/status's "Uid:" line), -1 if unknown.
long uid_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Uid:", 0) == 0)
      return std::stol(line.substr(4));
  return -1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_remote_child_runs_as_the_node_says) {
  // The agent's environment may hold secrets: a remote child starts from the node's base
  // environment, as the node's default user, under a name no local program can have.
  BOOST_TEST_REQUIRE(::setenv("PKIT_NODE_TEST_SECRET", "hunter2", 1) == 0);
  two_nodes t{4, {1s, 5s}, pkit::net::link_timing{1s, 5s},
              [](pkit::net::node_config& c) { c.allow.env_names = {"GREETING"}; }};
  caf::scoped_actor self{*t.controller.sys};
  auto relay = t.make_relay(self);
  auto spec = sleep_spec("web");
  spec.env = {"GREETING=hi"};
  auto proc = t.spawn(self, "web-1", spec, relay);
  BOOST_TEST_REQUIRE(static_cast<bool>(proc), why(*t.controller.sys, proc));
  auto pid = t.first_pid(*proc);
  BOOST_TEST_REQUIRE(pid > 0);
  BOOST_TEST_REQUIRE(runs_image(pid, "/usr/bin/sleep"));
  BOOST_TEST(environ_of(pid) ==
             (std::vector<std::string>{"PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hi"}),
             boost::test_tools::per_element());
  if (::geteuid() == 0)
    BOOST_TEST(uid_of(pid) == 65534);  // nobody
  self->request(*proc, deadline, pkit::actors::status_atom_v)
      .receive([&](pkit::actors::process_info& info) { BOOST_TEST(info.name == "remote:web"); },
               [&](caf::error& e) { BOOST_TEST_ERROR(t.controller.sys->render(e)); });
  auto children = t.list(self);
  BOOST_TEST_REQUIRE(children.size() == 1u);
  BOOST_TEST(children[0].id == "web-1");
  ::unsetenv("PKIT_NODE_TEST_SECRET");
  self->request(*proc, deadline, pkit::actors::stop_atom_v)
      .receive([](pkit::exit_status&) {}, [&](caf::error& e) { BOOST_TEST_ERROR(t.controller.sys->render(e)); });
  caf::anon_send_exit(relay, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(a_refusal_keeps_the_file_system_facts_on_the_node) {
  // Whether a path exists is the node's business: the peer hears "not allowed", the
  // node's operator (on_refusal) hears why.
  struct heard_t {
    std::mutex m;
    std::string id;
    std::optional<pkit::net::error> refusal;
  };
  auto heard = std::make_shared<heard_t>();
  two_nodes t{4, {1s, 5s}, pkit::net::link_timing{1s, 5s}, [heard](pkit::net::node_config& c) {
                c.allow.cwd_dirs = {"/tmp"};
                c.on_refusal = [heard](const std::string& id, const pkit::net::error& e) {
                  std::lock_guard<std::mutex> lock(heard->m);
                  heard->id = id;
                  heard->refusal = e;
                };
              }};
  caf::scoped_actor self{*t.controller.sys};
  auto relay = t.make_relay(self);
  auto spec = sleep_spec();
  spec.cwd = "/tmp/pkit-node-test-absent-" + std::to_string(::getpid());
  auto proc = t.spawn(self, "lost", spec, relay);
  BOOST_TEST_REQUIRE(!proc);
  auto ne = pkit::net::net_error_of(proc.error());
  BOOST_TEST_REQUIRE(ne.has_value(), why(*t.controller.sys, proc));
  BOOST_TEST((ne->code == errc::spec_cwd_not_allowed));
  BOOST_TEST(ne->subject == "cwd");
  BOOST_TEST(ne->detail.empty());
  const std::string enoent = std::strerror(ENOENT);
  BOOST_TEST(why(*t.controller.sys, proc).find(enoent) == std::string::npos, why(*t.controller.sys, proc));
  std::lock_guard<std::mutex> lock(heard->m);
  BOOST_TEST_REQUIRE(heard->refusal.has_value());
  BOOST_TEST(heard->id == "lost");
  BOOST_TEST(heard->refusal->detail == enoent);
  BOOST_TEST(heard->refusal->peer_message() == ne->peer_message());
  caf::anon_send_exit(relay, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(a_spec_needs_a_name_and_a_root_node_a_user) {
  two_nodes t{4, {1s, 5s}, pkit::net::link_timing{1s, 5s},
              [](pkit::net::node_config& c) { c.allow.default_user.clear(); }};
  caf::scoped_actor self{*t.controller.sys};
  auto relay = t.make_relay(self);
  auto refused_field = [&](const process_spec& spec) {
    auto proc = t.spawn(self, "x", spec, relay);
    BOOST_TEST_REQUIRE(!proc);
    auto ne = pkit::net::net_error_of(proc.error());
    BOOST_TEST_REQUIRE(ne.has_value(), why(*t.controller.sys, proc));
    return ne->subject;
  };
  auto unnamed = sleep_spec("");
  unnamed.user = "nobody";
  BOOST_TEST(refused_field(unnamed) == "name");
  if (::geteuid() == 0)
    BOOST_TEST(refused_field(sleep_spec()) == "user");
  BOOST_TEST(t.list(self).empty());
  caf::anon_send_exit(relay, caf::exit_reason::user_shutdown);
}
