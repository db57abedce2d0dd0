// The `pkit` command: run a supervision tree from a TOML file (`pkit run`), check a file
// (`pkit check`), control a running tree (`pkit ctl`), serve as a node for trees
// elsewhere (`pkit node`).
//
// Built twice: `pkit-net` with the network module (PKIT_HAVE_NODE), and `pkit` without
// it, which runs `pkit-net` for the commands that need the network (network_exec.hpp).

#include <pkit/tool/config.hpp>
#include <pkit/tool/control_protocol.hpp>
#include <pkit/tool/control_server.hpp>
#include <pkit/tool/ctl_command.hpp>
#include <pkit/tool/ctl_format.hpp>
#include <pkit/tool/daemon.hpp>
#include <pkit/tool/guardian.hpp>
#ifdef PKIT_HAVE_NODE
#include <pkit/tool/node_command.hpp>
#include <pkit/tool/remote_control_server.hpp>
#endif
#include <pkit/tool/network_exec.hpp>
#include <pkit/tool/version.hpp>

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <csignal>
#include <malloc.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace {

using namespace pkit::tool;

// "500ms", "15s", "2m", "1h" (or a bare number of seconds).
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit = text.substr(used);
  double ms = unit == "ms" ? v : unit == "s" || unit.empty() ? v * 1e3 : unit == "m" ? v * 6e4 : unit == "h" ? v * 3.6e6 : -1;
  // nan, inf and 1e300 are no durations; beyond 1e12 ms (31 years) the deadline overflows.
  if (!std::isfinite(ms) || ms < 0 || ms > 1e12) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

load_result load(const std::string& file) {
  if (file.empty()) return load_string(default_tree_text(), "<built-in default>", std::filesystem::current_path());
  return load_file(file);
}

int print_errors(const load_result& r) {
  for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
  return exit_usage;
}

int check_command(const std::string& file) {
  auto r = load(file);
  if (!r) return print_errors(r);
  std::fputs(describe(*r.tree).c_str(), stdout);
  return exit_clean;
}

#ifdef PKIT_HAVE_NODE
/// `[pkit] control_listen`: serves `pkit ctl --host` through `d`. False (said on stderr)
/// when it cannot; true without control_listen (then `remote` stays null).
bool start_remote_control(pkit::tool::daemon& d, std::unique_ptr<remote_control_server>& remote) {
  const auto& settings = d.tree().settings;
  const auto& at = settings.control_listen;
  if (!at) return true;
  remote_control_options ro;
  ro.host = at->host;
  ro.port = at->port;
  if (const auto& t = settings.control_tls) ro.tls = pkit::net::tls_files{t->cert, t->key, t->ca, {}, {}};
  try {
    remote = std::make_unique<remote_control_server>(d, std::move(ro));
  } catch (const remote_control_error& e) {
    std::fprintf(stderr, "pkit: cannot serve remote control: %s\n", e.what());
    return false;
  }
  const bool v6 = at->host.find(':') != std::string::npos;
  // Tests and scripts wait for this line (port 0 takes any free port).
  d.say("pkit: control listening on " + (v6 ? "[" + at->host + "]" : at->host) + ":" + std::to_string(remote->port()) +
        (settings.control_tls ? " (TLS, mutual authentication)" : " (plain, loopback: every local user may control)"));
  return true;
}
#endif

int run_command(const std::string& file, const std::string& format, const std::string& run_for) {
  // Before any thread exists. glibc gives each thread that allocates an arena of its own
  // (up to 8 per core), each keeping freed memory; pkit run's threads (CAF's workers, the
  // control server's, the log capture's) allocate little, and rarely at once: two arenas
  // hold what eight did (~150 KB less resident with 100 programs).
  // Unless the operator chose otherwise (MALLOC_ARENA_MAX, or glibc.malloc.arena_max).
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr && (tunables == nullptr || std::strstr(tunables, "arena_max") == nullptr))
    ::mallopt(M_ARENA_MAX, 2);
  auto loaded = load(file);
  if (!loaded) return print_errors(loaded);
  daemon_options options;
  options.format = format == "json" ? log_format::json : log_format::human;
  options.colour = options.format == log_format::human && ::isatty(2) == 1 && std::getenv("NO_COLOR") == nullptr;
  if (!run_for.empty()) {
    options.run_for = parse_duration(run_for);
    if (!options.run_for) {
      std::fprintf(stderr, "pkit: --for: not a duration: '%s' (500ms, 15s, 2m)\n", run_for.c_str());
      return exit_usage;
    }
  }
  // Before any thread exists: the signals are taken by the signalfd (every thread
  // inherits the mask; children get theirs reset by libpkit), and the guardian is forked
  // — before the control socket's claim (its flock) too: a guardian forked later would
  // share that lock and hold it after a killed pkit run, refusing the next one.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  std::unique_ptr<guardian> keeper;
  try {
    keeper = guardian::spawn();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pkit: no guardian (%s): the tree's grandchildren may outlive a killed pkit run\n", e.what());
  }
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
  pkit::tool::daemon d(std::move(*loaded.tree), options, keeper.get());
  // The control socket, before the tree starts (so that a second `pkit run` of the same
  // tree is refused before it starts anything; requests that come before the tree is up
  // are answered "starting"). Declared after `d`: stopped and destroyed before it.
  const auto& settings = d.tree().settings;
  const auto socket_path =
      settings.control_socket.empty() ? default_control_socket(settings.name) : settings.control_socket;
  std::unique_ptr<control_server> server;
  try {
    server = std::make_unique<control_server>(d, control_server_options{socket_path});
  } catch (const control_server_error& e) {
    std::fprintf(stderr, "pkit: cannot serve the control socket %s: %s\n", socket_path.c_str(), e.what());
    return exit_failed;
  }
#ifdef PKIT_HAVE_NODE
  // Remote control, beside the socket and on the same handler; started before the tree
  // for the same reason. Stopped before `d` (declared after it).
  std::unique_ptr<remote_control_server> remote;
  if (!start_remote_control(d, remote)) {
    server->stop();
    return exit_failed;
  }
#endif
  bool forced = false;
  if (auto why = d.start(sfd, forced)) {
    // A start cancelled by a signal ends here too: exit 1, as any start that failed.
    // Said through the event queue: stderr may be a pipe nobody reads.
    d.say("pkit: the tree could not start: " + printable(*why, true));
    d.flush_events(std::chrono::milliseconds(500));
    if (forced) {
      std::fflush(nullptr);
      ::_exit(exit_failed);  // as below: nothing is waited for
    }
    return exit_failed;
  }
  int code = d.run(sfd, forced);
  if (forced) {
    // The tree is being killed (SIGKILL to every group); the guardian finishes the job
    // for anything left. Nothing to wait for: the table is what was known then. Not
    // even the control server: stop() would join workers that may be inside a request
    // bounded by minutes; _exit ends them and the socket.
    d.flush_events(std::chrono::milliseconds(500));
    std::fputs(format_status_table(d.recorded_status()).c_str(), stdout);
    std::fflush(nullptr);
    ::_exit(code);
  }
  // No request is answered once the tree is gone (the server is told before `d` ends).
#ifdef PKIT_HAVE_NODE
  if (remote) remote->stop();
#endif
  server->stop();
  std::fputs(format_status_table(d.recorded_status()).c_str(), stdout);
  std::fflush(stdout);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // A reader of stderr or stdout that goes away (`pkit run | head`) must not kill pkit
  // run in the middle of its tree: writes fail with EPIPE instead (the event writer then
  // stops writing). Before any thread exists; programs get SIG_DFL back from libpkit.
  ::signal(SIGPIPE, SIG_IGN);
#ifdef PKIT_HAVE_NODE
  if (int refused = pkit_net_caller_check(); refused != 0) return refused;
#endif
  CLI::App app{"pkit: runs a supervision tree of programs described in a TOML file"};
  app.set_version_flag("--version", std::string(version()));
  app.require_subcommand(1);

  std::string file, format = "human", run_for;
  auto* run = app.add_subcommand("run", "run the tree in FILE (or the built-in default tree) in the foreground");
  run->add_option("FILE", file, "the tree file (TOML)");
  run->add_option("--log-format", format, "how events are written to stderr")
      ->check(CLI::IsMember({"human", "json"}));
  run->add_option("--for", run_for, "stop in order after DURATION (500ms, 15s, 2m)");

  std::string check_file;
  auto* check = app.add_subcommand("check", "validate FILE (or the built-in default tree) and print the tree it describes");
  check->add_option("FILE", check_file, "the tree file (TOML)");

  auto* ctl = app.add_subcommand("ctl", "control a running tree (status, start, stop, ...)");
  pkit::tool::ctl_command ctl_cmd(*ctl, std::cout, std::cerr);

  auto* node = app.add_subcommand("node", "let controllers elsewhere run allowed programs on this machine");
#ifdef PKIT_HAVE_NODE
  pkit::tool::node_command node_cmd(*node);
#else
  // Everything after `node` (--help included) is pkit-net's to parse.
  node->prefix_command();
  node->set_help_flag();
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : exit_usage;
  }
#if !defined(PKIT_HAVE_NODE) && !defined(PKIT_NET_BUILT)
  // Built without the network module: no pkit-net belongs to this pkit (one found
  // elsewhere would be another installation's).
  auto exec_pkit_net = [](char**, const std::string& feature) {
    std::fprintf(stderr, "pkit: %s needs pkit's network module, and this pkit was built without it\n", feature.c_str());
    return 1;
  };
#endif
#ifndef PKIT_HAVE_NODE
  if (*node) return exec_pkit_net(argv, "pkit node");
  if (*ctl && !ctl_cmd.options().host.empty()) return exec_pkit_net(argv, "pkit ctl --host");
  for (const auto& [cmd, f] : {std::pair{run, &file}, {check, &check_file}})
    if (*cmd && !f->empty())
      if (auto key = network_key_of(*f); !key.empty())
        return exec_pkit_net(argv, "the tree file's " + key + " (" + *f + ")");
#endif
  if (*run) return run_command(file, format, run_for);
  if (*check) return check_command(check_file);
  if (*ctl) return ctl_cmd.run();
#ifdef PKIT_HAVE_NODE
  if (*node) return node_cmd.run();
#endif
  return exit_usage;
}
