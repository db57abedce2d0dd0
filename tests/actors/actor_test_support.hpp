#pragma once

#include "proc_stat.hpp"

// Shared helpers for the actor-layer tests: an actor system configured with
// pkit::actors::init, a scoped actor, requests that always end (value, error or a
// request timeout -- never a hang), specs running the helper child program, and /proc
// inspection with deadlines. Header-only.
//
// Rules the suites follow: they synchronise on events (replies, observer messages,
// actor termination); /proc is polled (with a deadline) only where no event exists,
// e.g. to see that a child of a dead actor is gone. Every wait is bounded.

#include <boost/test/unit_test.hpp>

#include <pkit/actors/error.hpp>
#include <pkit/actors/messages.hpp>
#include <pkit/actors/process_actor.hpp>
#include <pkit/exit_status.hpp>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <unistd.h>

#include "actor_printing.hpp"
#include "actor_stopper.hpp"
#include "temp_dir.hpp"
#include "test_child_path.hpp"

namespace pkit_actor_test {

using namespace std::chrono_literals;
namespace pa = pkit::actors;

/// Request timeout / deadline for events that should happen promptly; only reached when
/// something is broken (then the test fails instead of hanging).
inline constexpr std::chrono::milliseconds event_timeout = std::chrono::seconds(10);

// ---------------------------------------------------------------------------
// The helper child program
// ---------------------------------------------------------------------------

using pkit_test_common::actor_stopper;
using pkit_test_common::child_path;

/// A spec running `pkit_test_child MODE ARGS...`.
inline pa::process_spec child_spec(std::vector<std::string> args) {
  pa::process_spec spec;
  args.insert(args.begin(), child_path());
  spec.argv = std::move(args);
  return spec;
}

/// A spec running `pkit_test_child MODE ARGS...` with its stdout on fd 3, declared as the
/// notify fd: the helper's "ready\n" line (printed once its signal handling is in place,
/// by `ignore-term` and `trap-term`) is the readiness newline, so `start` replies only
/// once a signal sent to the child meets its handler.
inline pa::process_spec ready_line_child_spec(std::vector<std::string> args) {
  pa::process_spec spec;
  std::string script = "exec \"$0\"";
  for (std::size_t i = 0; i < args.size(); ++i) script += " \"$" + std::to_string(i + 1) + "\"";
  script += " >&3";
  spec.argv = {"/bin/sh", "-c", script, child_path()};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.notify_fd = 3;
  return spec;
}

// ---------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------

using pkit_test_proc::is_running;
using pkit_test_proc::proc_exists;
using pkit_test_proc::proc_stat;
using pkit_test_proc::read_proc_stat;

/// Polls `pred` until it holds or `timeout` passes; returns its last value. For
/// conditions no event announces (a process gone from /proc after its actor died).
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = event_timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(5ms);
  }
}

/// True once /proc/PID is gone: the process has ended and been reaped.
inline bool gone_within(pid_t pid, std::chrono::milliseconds timeout = event_timeout) {
  return eventually([pid] { return !proc_exists(pid); }, timeout);
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

using pkit_test_common::temp_dir;

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/// The outcome of one request: a value, or an error (a pkit error, or CAF's
/// request_timeout when the actor did not answer in time), rendered for messages.
template <class T>
struct reply {
  std::optional<T> value;
  caf::error error;
  std::string rendered;

  bool ok() const { return value.has_value(); }
  /// True when the request failed with pkit error `e`.
  bool is(pa::error e) const {
    return !value && error.category() == caf::atom("pkit") &&
           error.code() == static_cast<std::uint8_t>(e);
  }
  /// For BOOST_TEST messages: the rendered error, or that a value came.
  std::string describe() const { return value ? std::string("a value") : rendered; }
};

/// An actor system configured by pkit::actors::init.
struct configured {
  caf::actor_system_config cfg;
  configured() { pa::init(cfg); }
};

/// Per-test fixture: actor system + scoped actor + request helpers.
struct actor_fixture : configured {
  caf::actor_system system{cfg};
  caf::scoped_actor self{system};
  /// Actors spawned through `spawn`, killed at the end of the test (their children are
  /// stopped by them).
  std::vector<pa::process_actor> spawned;

  actor_fixture() = default;
  actor_fixture(const actor_fixture&) = delete;
  actor_fixture& operator=(const actor_fixture&) = delete;

  ~actor_fixture() {
    // Kill each actor's child (quick: SIGKILL), then the actor itself, and wait for it,
    // so no test leaves a process or an actor behind.
    for (auto& a : spawned) {
      self->request(a, event_timeout, pa::kill_atom_v)
          .receive([](pkit::exit_status) {}, [](caf::error&) {});
      self->send_exit(a, caf::exit_reason::kill);
      self->wait_for(a);
    }
  }

  pa::process_actor spawn(pa::process_spec spec, const pkit::fork_server* server = nullptr,
                          pa::process_observer observer = {}) {
    auto a = pa::spawn_process(system, std::move(spec), server, std::move(observer));
    spawned.push_back(a);
    return a;
  }

  std::string render(const caf::error& e) const { return system.render(e); }

  /// Waits for the reply of a request already sent (`self->request(...)`).
  template <class T, class Handle>
  reply<T> await(Handle&& h) {
    reply<T> r;
    std::forward<Handle>(h).receive([&](T& v) { r.value = std::move(v); },
                                    [&](caf::error& e) {
                                      r.rendered = system.render(e);
                                      r.error = std::move(e);
                                    });
    return r;
  }

  /// Sends a request from `from` and waits (at most `timeout`) for its reply.
  template <class T, class... Ts>
  reply<T> ask_from(caf::scoped_actor& from, const pa::process_actor& a,
                    std::chrono::milliseconds timeout, Ts&&... xs) {
    return await<T>(from->request(a, timeout, std::forward<Ts>(xs)...));
  }

  reply<std::int32_t> start(const pa::process_actor& a) {
    return ask_from<std::int32_t>(self, a, event_timeout, pa::start_atom_v);
  }
  reply<pkit::exit_status> stop(const pa::process_actor& a) {
    return ask_from<pkit::exit_status>(self, a, event_timeout, pa::stop_atom_v);
  }
  reply<pkit::exit_status> kill(const pa::process_actor& a) {
    return ask_from<pkit::exit_status>(self, a, event_timeout, pa::kill_atom_v);
  }
  reply<pkit::exit_status> join(const pa::process_actor& a,
                                std::chrono::milliseconds timeout = event_timeout) {
    return ask_from<pkit::exit_status>(self, a, timeout, pa::join_atom_v);
  }
  reply<caf::ok_atom> signal(const pa::process_actor& a, int signo) {
    return ask_from<caf::ok_atom>(self, a, event_timeout, pa::signal_atom_v,
                                  static_cast<std::int32_t>(signo));
  }
  /// Fails the test (throws) if the actor does not answer.
  pa::process_info status(const pa::process_actor& a) {
    auto r = ask_from<pa::process_info>(self, a, event_timeout, pa::status_atom_v);
    if (!r.ok()) throw std::runtime_error("status request failed: " + r.rendered);
    return *r.value;
  }
};

}  // namespace pkit_actor_test
