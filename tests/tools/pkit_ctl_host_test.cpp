// `pkit ctl --host` end to end (issue 11 §3): a real `pkit run` with [pkit] control_listen
// and control_tls (certificates made by tools/make-certs.sh), driven by the real
// `pkit ctl --host` binary: the commands and exit codes of the socket, the clients that
// must be refused (no certificate, another CA's, a node's) while pkit run serves on, and
// the event stream followed over the network. Synchronised on pkit run's lines, replies and
// /proc, with deadlines.

#define BOOST_TEST_MODULE pkit_ctl_host
#include "pkit_node_process.hpp"
#include "pkit_tree_run.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/all.hpp>
#include <caf/scoped_actor.hpp>

#include <cstdlib>
#include <cctype>
#include <set>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace pkit_test_tools;
namespace fs = std::filesystem;

namespace {

void make_certs(const fs::path& dir, const std::string& args) {
  const std::string cmd = "bash '" PKIT_MAKE_CERTS "' " + args + " '" + dir.string() + "' >/dev/null";
  BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, cmd);
}

/// A trusted pair of CAs — node-ca signs the control listener's certificate ("ctl"),
/// controller-ca the operators' ("ops") — a node "a" of the same pair, and a rogue pair
/// with an "ops" of its own.
struct certs {
  pkit_test_common::temp_dir dir;
  fs::path good = dir.path() / "good";
  fs::path rogue = dir.path() / "rogue";
  certs() {
    make_certs(good, "--node ctl --node a --controller ops --controller main");
    make_certs(rogue, "--controller ops");
  }
  static certs& get() {
    static certs instance;
    return instance;
  }
  std::string p(const fs::path& d, const std::string& f) const { return (d / f).string(); }
  /// The [pkit] lines of a TLS control listener on loopback, any free port.
  std::string listen_lines() const {
    return "control_listen = \"127.0.0.1:0\"\ncontrol_tls = { cert = \"" + p(good, "node-ctl.pem") + "\", key = \"" +
           p(good, "node-ctl.key") + "\", ca = \"" + p(good, "controller-ca.pem") + "\" }\n\n";
  }
  std::vector<std::string> ops() const {
    return {"--tls-cert", p(good, "controller-ops.pem"), "--tls-key", p(good, "controller-ops.key"), "--tls-ca",
            p(good, "node-ca.pem")};
  }
};

/// The port pkit run said it listens on ("pkit: control listening on 127.0.0.1:PORT").
/// (No std::regex: GCC 12 with ASan warns inside it, and -Werror makes that fatal.)
std::string control_port(tree_run& t) {
  static const std::string mark = "control listening on 127.0.0.1:";
  auto port_in = [](const std::string& line) -> std::string {
    const auto at = line.find(mark);
    if (at == std::string::npos) return {};
    const auto begin = at + mark.size();
    auto end = begin;
    while (end < line.size() && std::isdigit(static_cast<unsigned char>(line[end]))) ++end;
    return line.substr(begin, end - begin);
  };
  for (const auto& l : t.run->lines())
    if (auto p = port_in(l); !p.empty()) return p;
  auto line = t.run->wait_line("control listening on");
  const std::string port = line ? port_in(*line) : std::string();
  BOOST_REQUIRE_MESSAGE(!port.empty(), "no control listening line; stderr:\n" << t.run->stderr_text());
  return port;
}

/// Whether a plaintext BASP client handshake (a 32-byte header, op 1) sent to 127.0.0.1:PORT
/// is answered by the connection's end (EOF or reset) within 10 s.
bool plaintext_is_dropped(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool dropped = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    char header[32] = {1};
    if (::write(fd, header, sizeof header) == static_cast<ssize_t>(sizeof header)) {
      pollfd p{fd, POLLIN, 0};
      char buf[256];
      // TLS would answer a ClientHello; plaintext gets the connection closed.
      while (!dropped && ::poll(&p, 1, 10000) == 1) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) dropped = true;
      }
    }
  }
  ::close(fd);
  return dropped;
}

/// `pkit ctl --host 127.0.0.1:PORT FLAGS... ARGS...` run to its end.
ctl_result ctl_host(const std::string& port, const std::vector<std::string>& flags,
                    const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ctl", "--host", "127.0.0.1:" + port, "--timeout", "15000"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), args.begin(), args.end());
  pkit_process p(argv);
  ctl_result r;
  r.code = p.wait_exit(std::chrono::seconds(30)).value_or(-1);
  r.out = p.stdout_text();
  r.err = p.stderr_text();
  return r;
}

/// A tree with one pausing program "sl" and a TLS control listener.
struct host_run {
  certs& c = certs::get();
  tree_run t{"", c.listen_lines() + pause_program("sl"), {"sl"}};
  std::string port = control_port(t);

  ctl_result ctl(const std::vector<std::string>& args) { return ctl_host(port, c.ops(), args); }

  /// pkit run still answers over --host with the right certificate.
  void serves_on() {
    BOOST_TEST(alive(t.run->pid()));
    auto r = ctl({"status", "--json"});
    BOOST_TEST(r.code == 0, "status after a refused client: " << r.code << " " << r.err);
  }
};

pid_t pid_in(const json& status, const std::string& name) {
  for (const auto& p : status["programs"])
    if (p.value("name", "") == name && p["pid"].is_number_integer()) return p["pid"].get<pid_t>();
  return 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(status_stop_start_over_tls_with_the_socket_s_output_and_exit_codes) {
  host_run h;
  const pid_t first = h.t.pids["sl"];
  auto r = h.ctl({"status", "--json"});
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  BOOST_TEST(pid_in(r.json(), "sl") == first);
  // The table is the socket's, byte for byte (one formatter).
  auto table = h.ctl({"status"});
  auto local = h.t.ctl({"status"});
  BOOST_TEST(table.code == 0);
  BOOST_TEST(table.out.substr(0, table.out.find('\n')) == local.out.substr(0, local.out.find('\n')));
  BOOST_TEST(table.out.find("running") != std::string::npos, table.out);

  r = h.ctl({"stop", "sl"});
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  BOOST_TEST(eventually([&] { return gone(first); }), "the process the stop was for is gone");
  BOOST_TEST(h.ctl({"status", "sl"}).code == 3, "LSB: not running");

  r = h.ctl({"start", "sl"});
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  auto e = h.t.event(is_event("sl", "ready", 2));
  BOOST_REQUIRE(e);
  const pid_t second = e->value("pid", 0);
  BOOST_TEST(alive(second));
  BOOST_TEST(second != first);
  BOOST_TEST(h.ctl({"status", "sl"}).code == 0);

  r = h.ctl({"stop", "nope"});
  BOOST_TEST(r.code == 4, "an unknown program: " << r.code);
  BOOST_TEST(r.err.find("nope") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(clients_without_a_certificate_or_with_another_ca_s_are_refused_and_pkit_run_serves_on) {
  host_run h;
  auto& c = h.c;
  // No certificate at all: pkit ctl refuses before connecting (exit 2), and a plaintext
  // BASP peer of its own is dropped by the TLS listener (the connection closed at once).
  auto r = ctl_host(h.port, {}, {"status"});
  BOOST_TEST(r.code == 2, "plain client: " << r.code << " " << r.err);
  BOOST_TEST(plaintext_is_dropped(static_cast<std::uint16_t>(std::stoi(h.port))));
  h.serves_on();
  // An "ops" certificate of another controller CA.
  r = ctl_host(h.port, {"--tls-cert", c.p(c.rogue, "controller-ops.pem"), "--tls-key", c.p(c.rogue, "controller-ops.key"),
                        "--tls-ca", c.p(c.good, "node-ca.pem")},
               {"stop", "sl"});
  BOOST_TEST(r.code == 1, "rogue client: " << r.code << " " << r.err);
  BOOST_TEST(r.err.find("handshake") != std::string::npos, r.err);
  h.serves_on();
  BOOST_TEST(alive(h.t.pids["sl"]), "the rogue's stop did nothing");
}

// A node's certificate (node-ca) must not control: pkit run's control listener trusts
// controller-ca only. pkit ctl itself refuses a set whose CA signs its own certificate
// (the two-CA rule), so this client is CAF's OpenSSL module configured by hand.
BOOST_AUTO_TEST_CASE(a_node_s_certificate_cannot_control) {
  host_run h;
  auto& c = h.c;
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.load<caf::openssl::manager>();
  cfg.openssl_certificate = c.p(c.good, "node-a.pem");
  cfg.openssl_key = c.p(c.good, "node-a.key");
  cfg.openssl_cafile = c.p(c.good, "node-ca.pem");  // so that this side trusts pkit run's
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  bool connected = false;
  std::string why;
  self->request(sys.openssl_manager().actor_handle(), std::chrono::seconds(15), caf::connect_atom_v,
                std::string("127.0.0.1"), static_cast<std::uint16_t>(std::stoi(h.port)))
      .receive([&](caf::node_id&, caf::strong_actor_ptr& p, std::set<std::string>&) { connected = p != nullptr; },
               [&](caf::error& err) { why = sys.render(err); });
  BOOST_TEST(!connected, "a node certificate was let in");
  BOOST_TEST_MESSAGE("refused: " << why);
  h.serves_on();
}

// Streams over --host are pulled by the client (remote_control.hpp): events as the socket
// shows them, tail refused by the daemon itself when the program does not log.
BOOST_AUTO_TEST_CASE(events_follow_over_host_and_tail_reaches_the_daemon) {
  host_run h;
  std::vector<std::string> args{"--host", "127.0.0.1:" + h.port, "--timeout", "15000"};
  const auto ops = h.c.ops();
  args.insert(args.end(), ops.begin(), ops.end());
  auto events_args = args;
  events_args.insert(events_args.end(), {"events", "--json"});
  ctl_stream events(events_args);
  // The stream opens at some point after the client starts: restart until it shows one
  // (each restart is an event; none is missed once it is open).
  std::optional<json> seen;
  for (int round = 0; round < 20 && !seen; ++round) {
    BOOST_REQUIRE(h.t.ctl({"restart", "sl"}).code == 0);
    while (auto line = events.next_line(std::chrono::milliseconds(round < 19 ? 1000 : 10000))) {
      auto j = json::parse(*line, nullptr, false);
      if (j.is_object() && j.value("program", "") == "sl" && j.value("event", "") == "ready") {
        seen = j;
        break;
      }
    }
  }
  BOOST_REQUIRE_MESSAGE(seen, "events over --host showed no ready of sl");
  BOOST_TEST(seen->value("pid", 0) > 0);
  BOOST_TEST(events.stop(SIGTERM) != -1, "the client ends on SIGTERM");
  auto tail = h.ctl({"tail", "sl"});
  BOOST_TEST(tail.code == 1, tail.code);
  BOOST_TEST(tail.err.find("does not log") != std::string::npos, tail.err);
  h.serves_on();
}

BOOST_AUTO_TEST_CASE(host_options_misused_are_usage_errors_before_any_connection) {
  auto& c = certs::get();
  // No TLS flags (beyond loopback, and on it); some TLS flags but not all; --host with --socket.
  pkit_process beyond({"ctl", "--host", "10.1.2.3:7200", "status"});
  BOOST_TEST(beyond.wait_exit().value_or(-1) == 2);
  BOOST_TEST(beyond.stderr_text().find("mutual TLS") != std::string::npos, beyond.stderr_text());
  pkit_process plain({"ctl", "--host", "127.0.0.1:7200", "status"});
  BOOST_TEST(plain.wait_exit().value_or(-1) == 2);
  pkit_process partial({"ctl", "--host", "127.0.0.1:7200", "--tls-cert", c.p(c.good, "controller-ops.pem"), "status"});
  BOOST_TEST(partial.wait_exit().value_or(-1) == 2);
  pkit_process both({"ctl", "--host", "127.0.0.1:7200", "--socket", "/tmp/x.sock", "status"});
  BOOST_TEST(both.wait_exit().value_or(-1) == 2);
}

BOOST_AUTO_TEST_CASE(control_over_tls_and_shutdown_wait) {
  // (Plain control is refused at load, on loopback too: tests/tools/bad/control_listen_plain_loopback.toml.)
  host_run h;
  auto r = h.ctl({"status", "sl"});
  BOOST_TEST(r.code == 0, r.err);
  r = h.ctl({"shutdown", "--wait"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(h.t.run->wait_exit(std::chrono::seconds(20)).has_value(), "pkit run ended after shutdown --wait");
  BOOST_TEST(gone(h.t.pids["sl"]));
}

// The whole set-up in one pkit run: a program on a TLS node (the links trust node-ca,
// [pkit] tls) and the control listener (trusting controller-ca, control_tls): two TLS
// actor systems in one process, each with its own CA. Over --host the remote program is
// stopped and started again on its node; the node's own certificate cannot control.
BOOST_AUTO_TEST_CASE(control_over_tls_beside_tls_links_to_a_node) {
  auto& c = certs::get();
  pkit_test_common::temp_dir dir;
  const std::string allow = dir.file("allow.toml");
  write_file(allow, "programs = [\"/usr/bin/sleep\"]\n" + std::string(::geteuid() == 0 ? "default_user = \"nobody\"\n" : ""));
  pkit_node_process node({"--allow", allow, "--name", "a", "--tls-cert", c.p(c.good, "node-a.pem"), "--tls-key",
                          c.p(c.good, "node-a.key"), "--tls-ca", c.p(c.good, "controller-ca.pem")});
  auto node_port = node.wait_listening();
  BOOST_REQUIRE_MESSAGE(node_port, "the node did not listen: " << node.stderr_text());
  const std::string body = "tls = { cert = \"" + c.p(c.good, "controller-main.pem") + "\", key = \"" +
                           c.p(c.good, "controller-main.key") + "\", ca = \"" + c.p(c.good, "node-ca.pem") + "\" }\n" +
                           c.listen_lines() + "[nodes.a]\naddress = \"127.0.0.1:" + std::to_string(*node_port) +
                           "\"\n[[program]]\nname = \"far\"\nnode = \"a\"\ncommand = [\"/usr/bin/sleep\", \"1000\"]\n"
                           "stop_timeout = \"2s\"\n";
  tree_run t{"", body, {"far"}};
  const std::string port = control_port(t);
  const pid_t first = t.pids["far"];
  BOOST_TEST(alive(first), "the remote run's pid is a real process (on this machine: loopback)");
  auto r = ctl_host(port, c.ops(), {"status", "--json"});
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  BOOST_TEST(r.json()["programs"][0].value("node", "") == "a", r.out);
  // The node's port, with a certificate the node accepts: the handshake passes, but what
  // is published there is no pkit run's control (the client's interface check).
  auto wrong = ctl_host(std::to_string(*node_port), c.ops(), {"status"});
  BOOST_TEST(wrong.code == 1);
  BOOST_TEST(wrong.err.find("not the remote control of pkit run") != std::string::npos, wrong.err);
  BOOST_TEST(ctl_host(port, c.ops(), {"stop", "far"}).code == 0);
  BOOST_TEST(eventually([&] { return gone(first); }));
  BOOST_TEST(ctl_host(port, c.ops(), {"start", "far"}).code == 0);
  BOOST_TEST(t.event(is_event("far", "ready", 2)).has_value());
  // pkit run's own controller certificate may control (the controllers' CA signed it):
  // the documented reason for a separate CA pair when that matters (FORMAT.md).
  r = ctl_host(port, {"--tls-cert", c.p(c.good, "controller-main.pem"), "--tls-key", c.p(c.good, "controller-main.key"),
                      "--tls-ca", c.p(c.good, "node-ca.pem")},
               {"status", "far"});
  BOOST_TEST(r.code == 0, r.err);
}
