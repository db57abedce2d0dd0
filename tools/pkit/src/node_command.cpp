// `pkit node`: the checks before start, the actor system, the publish, the wait for a
// signal and the orderly stop. See node_command.hpp.

#include <pkit/tool/node_command.hpp>

#include <pkit/actors/error.hpp>
#include <pkit/actors/scheduler.hpp>
#include <pkit/net/link_setup.hpp>
#include <pkit/net/link_timing.hpp>
#include <pkit/net/listen_policy.hpp>
#include <pkit/net/node_agent.hpp>
#include <pkit/net/tls_files.hpp>
#include <pkit/net/tls_snapshot.hpp>
#include <pkit/tool/guardian.hpp>
#include <pkit/unique_fd.hpp>
#include <pkit/tool/node_allow.hpp>
#include <pkit/tool/node_front.hpp>
#include <pkit/tool/watchdog_feeder.hpp>

#include "config_reader.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <variant>

#include <csignal>
#include <limits.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace pkit::tool {
namespace {

/// Says why the node does not start, on stderr, and gives the exit code.
int refuse(int code, const std::string& why) {
  std::fprintf(stderr, "pkit node: %s\n", why.c_str());
  return code;
}

/// `--listen`: "HOST:PORT" or "[V6]:PORT", the host explicit (never empty: CAF binds every
/// interface for an empty one).
struct listen_address {
  std::string host;
  std::uint16_t port = 0;

  std::string to_string(std::uint16_t actual) const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(actual);
  }
};

std::optional<listen_address> parse_listen(const std::string& text) {
  listen_address out;
  std::string port;
  if (text.starts_with("[")) {
    auto close = text.find("]:");
    if (close == std::string::npos) return std::nullopt;
    out.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return std::nullopt;
    out.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (out.host.empty() || port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535)
    return std::nullopt;
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

std::optional<caf::timespan> parse_timespan(const std::string& text) {
  auto parsed = detail::parse_duration(text, false);
  if (auto* ms = std::get_if<std::int64_t>(&parsed)) return std::chrono::milliseconds(*ms);
  return std::nullopt;
}

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "node";
  return buf;
}

/// Everything checked before the node starts anything.
struct node_plan {
  listen_address address;
  pkit::net::link_timing timing;
  std::optional<pkit::net::tls_files> tls;  ///< the files as given (the snapshot is taken later)
  pkit::net::node_config config;
};

/// The command line and the files, checked in the order a user fixes them: the address
/// and its TLS set, the allow-list; the TLS files' contents come with the snapshot.
int plan_node(const node_options& o, node_plan& plan) {
  auto address = parse_listen(o.listen);
  if (!address) return refuse(node_exit_usage, "--listen: expected HOST:PORT or [V6]:PORT, got '" + o.listen + "'");
  plan.address = *address;
  auto heartbeat = parse_timespan(o.heartbeat);
  auto timeout = parse_timespan(o.timeout);
  if (!heartbeat || !timeout)
    return refuse(node_exit_usage, std::string(heartbeat ? "--timeout" : "--heartbeat") +
                                        ": not a duration (500ms, 1s, 2m)");
  plan.timing = {*heartbeat, *timeout};
  if (auto bad = plan.timing.check()) return refuse(node_exit_usage, bad->message());
  if (!o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_ca.empty())
    plan.tls = pkit::net::tls_files{o.tls_cert, o.tls_key, o.tls_ca, {}, {}};
  if (auto bad = pkit::net::check_listen(plan.address.host, plan.tls ? &*plan.tls : nullptr))
    return refuse(node_exit_listen_refused, bad->message());
  if (o.allow.empty())
    return refuse(node_exit_usage,
                  "--allow FILE is required: it lists what controllers may run here (a node that "
                  "runs anything for anyone is remote code execution; format: FORMAT.md, \"The node allow-list\")");
  auto loaded = load_allow_file(o.allow);
  if (!loaded) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return refuse(node_exit_allow_refused, "the allow-list " + o.allow + " was refused");
  }
  plan.config.name = o.name.empty() ? host_name() : o.name;
  plan.config.allow = std::move(*loaded.allow);
  plan.config.max_children = o.max_children;
  if (auto bad = plan.config.check()) return refuse(node_exit_allow_refused, bad->message());
  return node_exit_clean;
}

/// Blocks the stop signals (before any thread: every thread inherits the mask) and
/// returns a signalfd for them.
int take_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  return ::signalfd(-1, &set, SFD_CLOEXEC);
}

/// Ends the front and the agent, with exit signals from an actor of this node: the front
/// ignores anonymous ones, which a peer can send (node_front.cpp).
void end_service(caf::actor_system& sys, const pkit::net::node_actor& front, const pkit::net::node_actor& agent) {
  caf::scoped_actor self{sys};
  self->monitor(front);
  self->monitor(agent);
  self->send_exit(front, caf::exit_reason::user_shutdown);
  self->send_exit(agent, caf::exit_reason::user_shutdown);
  // Alive until both have ended: the front obeys no sender that has ended already
  // (genuine_local_sender). Bounded: an end that does not come is no reason to hang.
  int ended = 0;
  bool late = false;
  self->receive_while([&] { return ended < 2 && !late; })([&](caf::down_msg&) { ++ended; },
                                                          caf::after(std::chrono::seconds(10)) >> [&] { late = true; });
}

/// Stops every live child per its spec and waits for each (bounded by the node's cap on
/// stop timeouts); then ends the front and the agent. False when a stop did not answer.
bool stop_all(caf::actor_system& sys, const pkit::net::node_actor& front, const pkit::net::node_actor& agent,
              node_children& children, const pkit::net::allow_list& allow) {
  caf::scoped_actor self{sys};
  const auto bound = std::chrono::milliseconds(allow.max_stop_timeout_ms) + std::chrono::seconds(10);
  auto live = children.drain();
  std::vector<decltype(self->request(live.front(), bound, pkit::actors::stop_atom_v))> pending;
  for (const auto& p : live) pending.push_back(self->request(p, bound, pkit::actors::stop_atom_v));
  bool ok = true;
  for (auto& r : pending)
    r.receive([](pkit::exit_status&) {},
              [&](caf::error& e) {
                // not_started: spawned but never started — nothing to stop. An exit reason:
                // the process actor had ended already (its controller was lost: the agent
                // ended it, and its end stopped its child) before the front forgot it.
                if (e == pkit::actors::error::not_started || e == caf::sec::request_receiver_down ||
                    e.category() == caf::atom("exit"))
                  return;
                std::fprintf(stderr, "pkit node: a child did not stop: %s\n", sys.render(e).c_str());
                ok = false;
              });
  end_service(sys, front, agent);
  return ok;
}

/// The watchdog's limit: within three quarters of (timeout − heartbeat). A controller
/// whose node_timeout is no shorter than this node's --timeout declares the node lost
/// no earlier than timeout − heartbeat after it froze (CAF checks its links once per
/// heartbeat, and the node's last heartbeat may have left up to one interval before the
/// freeze): the fence comes first, with a quarter to spare for late wake-ups (a stuck
/// thread of a running node too: watchdog_feeder.hpp feeds the time it was last seen
/// alive). Never below 100 ms, so that a short scheduling hiccup does not fence a healthy
/// node: with a span under 134 ms the fence may then come after the controller's
/// failover. Longer stalls are fenced (a loaded 2-core host ran the network thread's timer
/// 267 ms late during a burst of 600 starts): the README asks for a limit above them.
std::chrono::milliseconds watchdog_limit(const pkit::net::link_timing& timing) {
  using std::chrono::milliseconds;
  const auto span = std::chrono::duration_cast<milliseconds>(timing.connection_timeout - timing.heartbeat_interval);
  return std::max(milliseconds(100), span * 3 / 4);
}

/// Publishes the front (TLS or plain loopback) and returns the port, or an error text.
std::variant<std::uint16_t, std::string> publish(caf::actor_system& sys, const pkit::net::node_actor& front,
                                                 const listen_address& at, bool tls) {
  auto published = tls ? caf::openssl::publish(front, at.port, at.host.c_str())
                       : sys.middleman().publish(front, at.port, at.host.c_str());
  if (!published) return sys.render(published.error());
  return *published;
}

/// What ended the node's service: a stop signal, or its front or agent ending.
struct node_end {
  pkit::unique_fd wake{::eventfd(0, EFD_CLOEXEC)};  ///< written when an actor ended
  std::mutex m;
  std::string why;  ///< which one, and its reason (under m)
};

/// Watches the front and the agent: either one ending (a peer's `kill`, a crash) leaves a
/// node that listens and serves no one — or no child at all — which no supervisor of the
/// node would ever restart. `pkit node` then stops, failing (fail-stop).
caf::actor watch_service(caf::actor_system& sys, const pkit::net::node_actor& front, const pkit::net::node_actor& agent,
                         std::shared_ptr<node_end> end) {
  // Its inputs are spawn arguments, not captures: CAF 0.17.6 dereferences a null argument
  // tuple when an actor function is spawned without arguments (UBSan: init_fun_factory).
  const auto watcher = [](caf::event_based_actor* self, const pkit::net::node_actor& front,
                          const pkit::net::node_actor& agent, std::shared_ptr<node_end> end) -> caf::behavior {
    self->monitor(front);
    self->monitor(agent);
    self->set_down_handler([self, front, end](caf::down_msg& dm) {
      {
        std::lock_guard lock(end->m);
        end->why = std::string(dm.source == front.address() ? "its front" : "its agent") + " ended (" +
                   self->system().render(dm.reason) + ")";
      }
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto n = ::write(end->wake.get(), &one, sizeof one);
      self->quit();
    });
    return {[](caf::unit_t) {}};
  };
  return sys.spawn(watcher, front, agent, std::move(end));
}

/// Waits for a stop signal on `sfd`, or for `end`; false for the latter.
bool wait_for_signal(int sfd, node_end& end) {
  pollfd fds[2] = {{sfd, POLLIN, 0}, {end.wake.get(), POLLIN, 0}};
  while (::poll(fds, 2, -1) < 0 && errno == EINTR) {
  }
  if ((fds[1].revents & POLLIN) != 0) return false;
  signalfd_siginfo info{};
  while (::read(sfd, &info, sizeof info) < 0 && errno == EINTR) {
  }
  return true;
}

int serve(node_plan& plan, pkit::net::tls_snapshot& snap, guardian* keeper, int sfd) {
  caf::actor_system_config cfg;
  // The same start-up as pkit run's links to its nodes (one sequence in pkit::net).
  if (auto bad = pkit::net::prepare_links(cfg, plan.tls ? &*plan.tls : nullptr, plan.timing, snap))
    return refuse(bad->code == pkit::net::errc::link_timing_invalid ? node_exit_usage : node_exit_tls_refused,
                  bad->message());
  // pkit's scheduler, as pkit run's: a spawn crosses the BASP broker, the agent, the
  // guard and the process actor, and CAF's default scheduler wakes a sleeping worker for
  // every one of those messages.
  pkit::actors::use_pkit_scheduler(cfg);
  std::unique_ptr<caf::actor_system> sys;
  try {
    sys = std::make_unique<caf::actor_system>(cfg);
  } catch (const std::exception& e) {
    return refuse(node_exit_failed, std::string("the actor system did not start: ") + e.what());
  }
  if (plan.tls)
    if (auto off = pkit::net::require_authenticated(*sys, snap.files()))
      return refuse(node_exit_tls_refused, off->message());
  const auto allow = plan.config.allow;
  auto children = std::make_shared<node_children>();
  // Set on the stop signal, before the children are stopped: from then on no spawn and no
  // start through a process actor handed out (a controller restarting what we stop).
  auto stopping = std::make_shared<std::atomic<bool>>(false);
  plan.config.stopping = stopping;
  // Each child's group goes to the guardian the moment the child exists, on the thread
  // that spawned it: a node frozen right after a spawn must not leave it out of the fence
  // (the guardian also looks for unregistered children of a frozen node: guardian.hpp).
  // Remote children lead their own process group (validate() requires it).
  if (keeper != nullptr)
    plan.config.on_child_started = [keeper](pid_t pid) {
      if (pid > 1) keeper->watch(pid);
    };
  // The agent sees the front's taps as relays: the guard of each child serves the node
  // of the controller the tap stands for (node_children::own).
  plan.config.controller_of = [children](const caf::actor& relay) { return children->controller_of(relay); };
  // The taps take only sealed reports: a peer can pose as a child's process actor.
  plan.config.sealed_local_reports = true;
  auto agent = pkit::net::spawn_node_agent(*sys, plan.config);
  // Each tap checks its relay once per link timeout: an orphan left by a reconnect race
  // is stopped within that (+ the child's stop timeout).
  const auto relay_check = std::chrono::duration_cast<std::chrono::milliseconds>(plan.timing.connection_timeout);
  auto front = spawn_node_front(*sys, agent, children, keeper, plan.config.name, relay_check);
  auto port = publish(*sys, front, plan.address, plan.tls.has_value());
  if (auto* why = std::get_if<std::string>(&port)) {
    end_service(*sys, front, agent);
    return refuse(node_exit_cannot_listen, "cannot listen on " + plan.address.to_string(plan.address.port) + ": " + *why);
  }
  // The watchdog: a node that stops running is fenced before its controller fails over.
  std::unique_ptr<watchdog_feeder> feeder;
  if (keeper != nullptr) {
    try {
      feeder = std::make_unique<watchdog_feeder>(*keeper, *sys, watchdog_limit(plan.timing));
    } catch (const std::exception& e) {
      end_service(*sys, front, agent);
      return refuse(node_exit_failed, std::string("the watchdog did not start: ") + e.what());
    }
  }
  auto end = std::make_shared<node_end>();
  if (!end->wake) {
    end_service(*sys, front, agent);
    return refuse(node_exit_failed, std::string("no eventfd: ") + std::strerror(errno));
  }
  const caf::actor watcher = watch_service(*sys, front, agent, end);
  // The one line on stdout: scripts and tests wait for it.
  std::printf("listening on %s\n", plan.address.to_string(std::get<std::uint16_t>(port)).c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "pkit node %s: serving %s (%s)\n", plan.config.name.c_str(),
               plan.address.to_string(std::get<std::uint16_t>(port)).c_str(),
               plan.tls ? "TLS, mutual authentication" : "plain BASP on loopback");
  const bool signalled = wait_for_signal(sfd, *end);
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
  // Before the line: whoever reads it knows spawns and starts are refused from then on.
  stopping->store(true);
  if (signalled) {
    std::fprintf(stderr, "pkit node %s: stopping\n", plan.config.name.c_str());
  } else {
    std::lock_guard lock(end->m);
    std::fprintf(stderr, "pkit node %s: %s: stopping every child and exiting\n", plan.config.name.c_str(),
                 end->why.c_str());
  }
  const bool ok = stop_all(*sys, front, agent, *children, allow);
  feeder.reset();  // disarms the watchdog; before the system it looks at
  sys.reset();  // before the snapshot it reads: declared in run()
  return ok && signalled ? node_exit_clean : node_exit_failed;
}

}  // namespace

node_command::node_command(CLI::App& sub) {
  auto& o = options_;
  sub.add_option("--listen", o.listen, "ADDR:PORT to listen on ([V6]:PORT; port 0: any free one)")
      ->capture_default_str();
  sub.add_option("--name", o.name, "the node's name, told to controllers (default: the host name)");
  sub.add_option("--tls-cert", o.tls_cert, "PEM certificate chain of this node (with --tls-key, --tls-ca)");
  sub.add_option("--tls-key", o.tls_key, "PEM private key of that certificate (mode 0600)");
  sub.add_option("--tls-ca", o.tls_ca, "PEM file of the controllers' private CA");
  sub.add_option("--allow", o.allow, "TOML allow-list: what controllers may run here (required)");
  sub.add_option("--heartbeat", o.heartbeat, "BASP heartbeat interval")->capture_default_str();
  sub.add_option("--timeout", o.timeout, "drop a controller silent for this long, stopping its children")
      ->capture_default_str();
  sub.add_option("--max-children", o.max_children, "children alive at once, at most")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
}

int node_command::run() {
  node_plan plan;
  if (int code = plan_node(options_, plan); code != node_exit_clean) return code;
  // The snapshot (taken by serve()) outlives the actor system that reads it (serve()
  // destroys the system).
  pkit::net::tls_snapshot snap;
  const int sfd = take_signals();
  std::unique_ptr<guardian> keeper;
  try {
    keeper = guardian::spawn("pkit node " + plan.config.name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pkit node: no guardian (%s): children's children may outlive a killed node\n", e.what());
  }
  const int code = serve(plan, snap, keeper.get(), sfd);
  ::close(sfd);
  return code;
}

}  // namespace pkit::tool
