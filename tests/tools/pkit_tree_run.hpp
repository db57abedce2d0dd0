#pragma once

// The end-to-end fixture of the pkit ctl suites: a real `pkit run FILE` serving a control
// socket in a scratch directory, with helpers to drive it through the real `pkit ctl`.

#include <boost/test/unit_test.hpp>
#include <boost/test/results_collector.hpp>

#include "pkit_ctl_client.hpp"
#include "pkit_run_process.hpp"

#include <temp_dir.hpp>
#include <test_child_path.hpp>

#include <csignal>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

namespace pkit_test_tools {

using namespace std::chrono;
using json = nlohmann::json;

inline std::string child() { return pkit_test_common::child_path(); }

// A [[program]] (or [[group.program]] with `table`) table running the test child.
inline std::string program(const std::string& name, const std::string& args, const std::string& extra = "",
                           const std::string& table = "[[program]]") {
  return table + "\nname = \"" + name + "\"\ncommand = [\"" + child() + "\", " + args + "]\nstop_timeout = \"5s\"\n" +
         extra + "\n";
}
inline std::string pause_program(const std::string& name, const std::string& table = "[[program]]") {
  return program(name, "\"pause\"", "", table);
}

inline void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::trunc) << text; }

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0 && !gone(pid); }

// Polls `pred` (a look at /proc or a file: nothing to wait on) until true or the deadline.
template <class Pred>
bool eventually(Pred pred, milliseconds deadline = seconds(10)) {
  for (auto until = steady_clock::now() + deadline;;) {
    if (pred()) return true;
    if (steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// A real `pkit run FILE` serving <dir>/run/ctl.sock (pkit creates run/), events as JSON.
struct tree_run {
  pkit_test_common::temp_dir dir;
  std::string file = dir.file("tree.toml");
  std::string sock = dir.file("run/ctl.sock");
  std::unique_ptr<pkit_process> run;
  std::map<std::string, pid_t> pids;  // from the ready events waited for

  // `root`: root settings (before [pkit]); `body`: the tables; `ready`: names to wait for.
  tree_run(const std::string& root, const std::string& body, const std::vector<std::string>& ready) {
    write_file(file, text(root, body));
    run = std::make_unique<pkit_process>(std::vector<std::string>{"run", file, "--log-format", "json"});
    for (const auto& n : ready) {
      auto e = run->wait_event(is_event(n, "ready"));
      BOOST_REQUIRE_MESSAGE(e, "no ready event for " << n << "; stderr:\n" << run->stderr_text());
      pids[n] = e->value("pid", 0);
    }
    wait_serving();
  }
  ~tree_run() {
    if (std::uncaught_exceptions() > 0 ||
        !boost::unit_test::results_collector.results(boost::unit_test::framework::current_test_case().p_id).passed())
      BOOST_TEST_MESSAGE("pkit run's stderr:\n" << run->stderr_text());
    if (run && !run->wait_exit(milliseconds(0))) {
      ::kill(run->pid(), SIGTERM);
      run->wait_exit(seconds(20));
    }
  }

  std::string text(const std::string& root, const std::string& body) const {
    // Room for the restarts the cases cause (the default allows 1 in 5s).
    return "intensity = 20\n" + root + "\n[pkit]\ncontrol_socket = \"" + sock + "\"\n\n" + body;
  }

  // The socket answers "starting" until the tree is up: wait for an ok status reply.
  void wait_serving() {
    bool ok = eventually([&] {
      try {
        raw_client c(sock);
        c.send("{\"command\":\"status\"}\n");
        auto r = c.read_reply();
        return r && r->value("ok", false);
      } catch (const std::exception&) {
        return false;
      }
    });
    BOOST_REQUIRE_MESSAGE(ok, "the control socket does not answer; stderr:\n" << run->stderr_text());
  }

  ctl_result ctl(const std::vector<std::string>& args) {
    return run_ctl(sock, args);
  }

  // The first event `match` accepts among those read so far, else the next one to come.
  std::optional<json> event(const std::function<bool(const json&)>& match, milliseconds deadline = seconds(20)) {
    for (const auto& l : run->lines()) {
      auto j = json::parse(l, nullptr, false);
      if (!j.is_discarded() && j.is_object() && match(j)) return j;
    }
    return run->wait_event(match, deadline);
  }

  json status() {
    auto r = ctl({"status", "--json"});
    BOOST_REQUIRE_MESSAGE(r.code == 0, "status: " << r.code << " " << r.err);
    auto j = r.json();
    BOOST_REQUIRE_MESSAGE(j.is_object() && j.contains("programs"), r.out);
    return j;
  }

  // The status row of `name`, or null.
  json row(const std::string& name) {
    const json all = status();
    for (const auto& p : all["programs"])
      if (p.value("name", "") == name) return p;
    return nullptr;
  }

  pid_t pid_of(const std::string& name) {
    auto r = row(name);
    return r.is_object() && r["pid"].is_number_integer() ? r["pid"].get<pid_t>() : 0;
  }

  // Shuts the run down (SIGTERM) and checks that it exits 0 and every known pid is gone.
  void finish(const std::vector<pid_t>& more = {}) {
    ::kill(run->pid(), SIGTERM);
    BOOST_TEST(run->wait_exit().value_or(-1) == 0, run->stderr_text());
    no_process_left(more);
  }

  void no_process_left(const std::vector<pid_t>& more = {}) {
    std::vector<pid_t> all = more;
    for (const auto& l : run->lines()) {
      auto j = json::parse(l, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.value("pid", 0) > 0) all.push_back(j.value("pid", 0));
    }
    BOOST_TEST(all_gone(all, seconds(10)), "a process of the tree outlived pkit run");
  }
};


}  // namespace pkit_test_tools
