#pragma once

#include "proc_stat.hpp"

// Helpers for the supervisor suite (pkit::actors::spawn_supervisor), header-only.
//
// * sup_fixture: an actor system configured by pkit::actors::init, and four scoped actors
//   with one job each, so that no blocking receive ever has to skip a foreign message:
//     self    - sends requests and waits for their replies (bounded: request timeout);
//     events  - subscribed to every supervisor the test starts; collects supervisor_events;
//     watcher - monitors every supervisor; collects their down messages (exit reasons);
//     boot    - the supervisors' observer: told child_ready once the initial start is done.
// * child specs running tests/helper/pkit_test_child. Every child gets a unique marker as
//   its last argument (the helper ignores extra arguments), so its processes can be found
//   in /proc (grandchildren of nested supervisors have no other handle) and the fixture
//   can check that no child of the test outlives it.
//
// Synchronisation is on events (replies, supervisor_events, down messages); /proc is
// polled (with a deadline) only where nothing announces what we wait for. Every wait is
// bounded, so a bug fails a test instead of hanging it.

#include <boost/test/unit_test.hpp>

#include <pkit/actors/error.hpp>
#include <pkit/actors/messages.hpp>
#include <pkit/actors/supervisor.hpp>
#include <pkit/exit_status.hpp>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/error.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/system_messages.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include "actor_printing.hpp"
#include "temp_dir.hpp"
#include "test_child_path.hpp"

namespace sup_test {

using namespace std::chrono_literals;
namespace pa = pkit::actors;
using clock_type = std::chrono::steady_clock;
using pa::event_kind;
using pa::child_state;
using pkit::exit_status;

/// Deadline for anything that should happen promptly; reached only when something is
/// broken (the test then fails instead of hanging).
inline constexpr std::chrono::milliseconds event_timeout = std::chrono::seconds(10);

inline std::chrono::milliseconds since(clock_type::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
}

// ---------------------------------------------------------------------------
// Child specs
// ---------------------------------------------------------------------------

using pkit_test_common::child_path;

/// "pkit-sup-<our pid>-": every child of this test program carries a marker with it.
inline std::string marker_prefix() { return "pkit-sup-" + std::to_string(::getpid()) + "-"; }

/// A marker unique in this test program.
inline std::string make_marker(const std::string& id) {
  static unsigned counter = 0;
  return marker_prefix() + id + "-" + std::to_string(++counter);
}

/// A worker running `program MODE ARGS... MARKER` (program: the helper by default).
inline pa::child_spec worker(const std::string& id, std::vector<std::string> args,
                             const std::string& program = child_path()) {
  pa::child_spec c;
  c.id = id;
  args.insert(args.begin(), program);
  args.push_back(make_marker(id));
  c.process.argv = std::move(args);
  c.shutdown_ms = 2000;
  return c;
}

/// A worker ready only once the helper has printed its "ready" line (modes ignore-term
/// and trap-term print it once their SIGTERM disposition is in place): its stdout is the
/// notify fd. A SIGTERM sent after the 'ready' event meets the helper's handler.
inline pa::child_spec ready_line_worker(const std::string& id, std::vector<std::string> args) {
  pa::child_spec c;
  c.id = id;
  c.process.argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" >&3", child_path()};
  c.process.argv.insert(c.process.argv.end(), args.begin(), args.end());
  c.process.argv.push_back(make_marker(id));
  c.process.notify_fd = 3;
  c.shutdown_ms = 2000;
  return c;
}

/// A worker that reports ready `delay_ms` after it started (helper mode notify).
inline pa::child_spec notify_worker(const std::string& id, int delay_ms) {
  auto c = worker(id, {"notify", "3", std::to_string(delay_ms)});
  c.process.notify_fd = 3;
  return c;
}

inline const std::string& marker_of(const pa::child_spec& c) { return c.process.argv.back(); }

/// A supervisor child.
inline pa::child_spec supervisor_child(const std::string& id, pa::supervisor_spec spec) {
  pa::child_spec c;
  c.id = id;
  c.supervisor.push_back(std::move(spec));
  c.shutdown_ms = 5000;
  return c;
}

inline pa::supervisor_spec sup_spec(std::string name, pa::restart_strategy strategy,
                                    std::vector<pa::child_spec> children, std::int32_t intensity = 1,
                                    std::int64_t period_ms = 10000) {
  pa::supervisor_spec s;
  s.name = std::move(name);
  s.flags.strategy = strategy;
  s.flags.intensity = intensity;
  s.flags.period_ms = period_ms;
  s.children = std::move(children);
  return s;
}

// ---------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------

using pkit_test_proc::is_running;
using pkit_test_proc::proc_stat;
using pkit_test_proc::read_proc_stat;

/// Polls `pred` until it holds or `timeout` passes; returns its last value. Only for
/// conditions no event announces.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = event_timeout) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (clock_type::now() >= deadline) return pred();
    std::this_thread::sleep_for(5ms);
  }
}

/// True once /proc/PID is gone (ended and reaped), within `timeout`.
inline bool gone_within(pid_t pid, std::chrono::milliseconds timeout = event_timeout) {
  return eventually([pid] { return !read_proc_stat(pid).has_value(); }, timeout);
}

inline std::vector<std::string> cmdline_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> out;
  std::string arg;
  while (std::getline(f, arg, '\0')) out.push_back(arg);
  return out;
}

/// Live children of this test program whose argv has an argument equal to `marker`
/// (exactly, or starting with it when `prefix`).
inline std::vector<pid_t> pids_with_marker(const std::string& marker, bool prefix = false) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    const auto st = read_proc_stat(pid);
    if (!st || st->ppid != ::getpid() || !is_running(pid)) continue;
    for (const auto& a : cmdline_of(pid)) {
      if (prefix ? a.rfind(marker, 0) == 0 : a == marker) {
        out.push_back(pid);
        break;
      }
    }
  }
  return out;
}

/// The one live process with `marker` that is not `old` (0: any), polled until it exists.
inline pid_t await_marker_pid(const std::string& marker, pid_t old = 0,
                              std::chrono::milliseconds timeout = event_timeout) {
  pid_t found = 0;
  eventually(
      [&] {
        auto pids = pids_with_marker(marker);
        if (pids.size() == 1 && pids.front() != old) {
          found = pids.front();
          return true;
        }
        return false;
      },
      timeout);
  return found;
}

// ---------------------------------------------------------------------------
// Temp files
// ---------------------------------------------------------------------------

using pkit_test_common::temp_dir;

/// A private copy of the helper, which a test can delete to make later starts fail.
inline std::string copy_of_helper(const temp_dir& dir) {
  const std::string to = dir.file("pkit_test_child_copy");
  std::filesystem::copy_file(child_path(), to);
  std::filesystem::permissions(to, std::filesystem::perms::owner_all);
  return to;
}

// ---------------------------------------------------------------------------
// Replies, events
// ---------------------------------------------------------------------------

template <class T>
struct reply {
  std::optional<T> value;
  caf::error error;
  std::string rendered;

  bool ok() const { return value.has_value(); }
  bool is(pa::error e) const { return !value && error == e; }
  std::string describe() const { return value ? std::string("a value") : rendered; }
};

inline bool is_error(const caf::error& err, pa::error e) { return err == e; }

inline std::string describe(const pa::supervisor_event& e) {
  std::string s = e.supervisor + "/" + e.child + " " + to_string(e.kind) + " #" +
                  std::to_string(e.incarnation) + " pid " + std::to_string(e.pid);
  if (e.has_status) s += " " + e.status.to_string();
  if (e.delay_ms != 0) s += " delay " + std::to_string(e.delay_ms);
  if (!e.reason.empty()) s += " (" + e.reason + ")";
  return s;
}

using event_pred = std::function<bool(const pa::supervisor_event&)>;

/// Matches `kind` events about `child` (any child if empty), of incarnation `inc` (any if 0).
inline event_pred ev(event_kind kind, std::string child = {}, std::uint64_t inc = 0) {
  return [kind, child = std::move(child), inc](const pa::supervisor_event& e) {
    return e.kind == kind && (child.empty() || e.child == child) && (inc == 0 || e.incarnation == inc);
  };
}

/// "kind:child" for each event of `events` about `kinds`: compact sequences to compare.
inline std::vector<std::string> trace(const std::vector<pa::supervisor_event>& events,
                                      std::vector<event_kind> kinds) {
  std::vector<std::string> out;
  for (const auto& e : events)
    if (std::find(kinds.begin(), kinds.end(), e.kind) != kinds.end())
      out.push_back(to_string(e.kind) + ":" + e.child);
  return out;
}

inline const pa::child_info* find_child(const std::vector<pa::child_info>& cs, const std::string& id) {
  auto i = std::find_if(cs.begin(), cs.end(), [&](const pa::child_info& c) { return c.id == id; });
  return i == cs.end() ? nullptr : &*i;
}

inline std::vector<std::string> ids_of(const std::vector<pa::child_info>& cs) {
  std::vector<std::string> out;
  for (const auto& c : cs) out.push_back(c.id);
  return out;
}

struct configured {
  caf::actor_system_config cfg;
  configured() { pa::init(cfg); }
};

struct sup_fixture : configured {
  caf::actor_system system{cfg};
  caf::scoped_actor self{system};
  caf::scoped_actor events_actor{system};
  caf::scoped_actor watcher{system};
  caf::scoped_actor boot{system};

  /// Every event received so far, in arrival order; `used` marks those `expect` took.
  std::vector<pa::supervisor_event> history;
  std::vector<bool> used;
  std::map<caf::actor_addr, caf::error> downs;
  std::vector<pa::supervisor_actor> supervisors;

  sup_fixture() = default;
  sup_fixture(const sup_fixture&) = delete;
  sup_fixture& operator=(const sup_fixture&) = delete;

  ~sup_fixture() {
    // Kill what is left (its process actors and their children go with it), wait for the
    // exits, and check that no child of this test program survives.
    for (auto& s : supervisors) {
      if (downs.count(s.address()) != 0) continue;
      watcher->send_exit(s, caf::exit_reason::kill);
      if (!await_down(s, 5s)) BOOST_TEST_MESSAGE("a supervisor did not terminate after kill");
    }
    const bool clean = eventually([] { return pids_with_marker(marker_prefix(), true).empty(); }, 5s);
    BOOST_CHECK_MESSAGE(clean, "children of the test outlived their supervisors");
    if (!clean)
      for (pid_t p : pids_with_marker(marker_prefix(), true)) ::kill(p, SIGKILL);
  }

  std::string render(const caf::error& e) const { return system.render(e); }

  // -- supervisors -------------------------------------------------------------------

  /// Spawns a supervisor with `events_actor` (and `more`) subscribed from its start, and
  /// monitors it. Does not wait.
  pa::supervisor_actor spawn_sup(pa::supervisor_spec spec, std::vector<pa::event_subscriber> more = {}) {
    more.push_back({caf::actor_cast<caf::actor>(events_actor)});
    auto s = pa::spawn_supervisor(system, std::move(spec), nullptr,
                                  pa::process_observer{caf::actor_cast<caf::actor>(boot), "sut"},
                                  std::move(more));
    supervisors.push_back(s);
    watcher->monitor(s);
    return s;
  }

  /// spawn_sup, then waits until the initial start is complete (the observer's child_ready).
  pa::supervisor_actor start_sup(pa::supervisor_spec spec) {
    auto s = spawn_sup(std::move(spec));
    BOOST_TEST_REQUIRE(await_boot(), "the supervisor did not complete its initial start");
    return s;
  }

  bool await_boot(std::chrono::milliseconds timeout = event_timeout) {
    bool done = false;
    boot->receive([&](pa::child_ready_atom, std::string&, std::uint64_t, std::int32_t) { done = true; },
                  caf::after(timeout) >> [] {});
    return done;
  }

  /// The exit reason of `s`, once its down message came (within `timeout`).
  std::optional<caf::error> await_down(const pa::supervisor_actor& s,
                                       std::chrono::milliseconds timeout = event_timeout) {
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
      if (auto i = downs.find(s.address()); i != downs.end()) return i->second;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      if (left <= 0ms) return std::nullopt;
      watcher->receive([&](caf::down_msg& dm) { downs[dm.source] = dm.reason; }, caf::after(left) >> [] {});
    }
  }

  /// True if `s` is still alive, as far as its monitor told (non-blocking).
  bool alive(const pa::supervisor_actor& s) {
    bool more = true;
    while (more)
      watcher->receive([&](caf::down_msg& dm) { downs[dm.source] = dm.reason; },
                       caf::after(0ms) >> [&] { more = false; });
    return downs.count(s.address()) == 0;
  }

  // -- requests ----------------------------------------------------------------------

  /// How long `ask` waits for a reply.
  std::chrono::milliseconds request_timeout = event_timeout;

  template <class T, class... Ts>
  reply<T> ask(const pa::supervisor_actor& s, Ts&&... xs) {
    reply<T> r;
    self->request(s, request_timeout, std::forward<Ts>(xs)...)
        .receive([&](T& v) { r.value = std::move(v); },
                 [&](caf::error& e) {
                   r.rendered = system.render(e);
                   r.error = std::move(e);
                 });
    return r;
  }

  std::vector<pa::child_info> which(const pa::supervisor_actor& s) {
    auto r = ask<std::vector<pa::child_info>>(s, pa::which_children_atom_v);
    if (!r.ok()) throw std::runtime_error("which_children failed: " + r.rendered);
    return *r.value;
  }

  /// which_children's entry for `id`; fails the test if there is none.
  pa::child_info child(const pa::supervisor_actor& s, const std::string& id) {
    auto cs = which(s);
    const auto* c = find_child(cs, id);
    if (c == nullptr) throw std::runtime_error("which_children has no child " + id);
    return *c;
  }

  pa::child_counts count(const pa::supervisor_actor& s) {
    auto r = ask<pa::child_counts>(s, pa::count_children_atom_v);
    if (!r.ok()) throw std::runtime_error("count_children failed: " + r.rendered);
    return *r.value;
  }

  // -- events ------------------------------------------------------------------------

  /// The first event not taken yet that matches `pred`, receiving more (within `timeout`)
  /// if none has come so far. Events passed over stay available to later calls.
  std::optional<pa::supervisor_event> expect(const event_pred& pred,
                                             std::chrono::milliseconds timeout = event_timeout) {
    for (std::size_t i = 0; i < history.size(); ++i) {
      if (!used[i] && pred(history[i])) {
        used[i] = true;
        return history[i];
      }
    }
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      if (left <= 0ms) return std::nullopt;
      bool got = false;
      events_actor->receive(
          [&](pa::supervisor_event& e) {
            got = true;
            history.push_back(std::move(e));
            used.push_back(false);
          },
          caf::after(left) >> [] {});
      if (!got) return std::nullopt;
      if (pred(history.back())) {
        used.back() = true;
        return history.back();
      }
    }
  }

  /// expect, failing the test (with what came instead) when no such event arrives.
  pa::supervisor_event require(const event_pred& pred, const std::string& what,
                               std::chrono::milliseconds timeout = event_timeout) {
    auto e = expect(pred, timeout);
    if (!e) {
      std::string seen;
      for (const auto& h : history) seen += "\n  " + describe(h);
      BOOST_FAIL("no event: " << what << "; events so far:" << seen);
    }
    return *e;
  }

  /// Moves every event already delivered into `history` (non-blocking).
  void drain() {
    bool more = true;
    while (more)
      events_actor->receive(
          [&](pa::supervisor_event& e) {
            history.push_back(std::move(e));
            used.push_back(false);
          },
          caf::after(0ms) >> [&] { more = false; });
  }

  /// Events in history from index `from` on that match `pred`.
  std::vector<pa::supervisor_event> events_since(std::size_t from, const event_pred& pred = {}) {
    std::vector<pa::supervisor_event> out;
    for (std::size_t i = from; i < history.size(); ++i)
      if (!pred || pred(history[i])) out.push_back(history[i]);
    return out;
  }

  std::string history_text(std::size_t from = 0) const {
    std::string s;
    for (std::size_t i = from; i < history.size(); ++i) s += "\n  " + describe(history[i]);
    return s;
  }
};

}  // namespace sup_test
