// The daemon as a control_handler, in process: what `pkit ctl` gets for each request.
// Synchronised on the replies (each answers once the supervisors did) and on the events
// stream; processes checked through /proc.

#define BOOST_TEST_MODULE daemon_control
#include <boost/test/unit_test.hpp>

#include <pkit/tool/control_protocol.hpp>
#include <pkit/tool/daemon.hpp>

#include <temp_dir.hpp>
#include <test_child_path.hpp>

#include <condition_variable>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <mutex>
#include <unistd.h>

using namespace pkit::tool;
using json = nlohmann::json;

namespace {

std::string program(const std::string& name, const std::string& mode) {
  return "[[program]]\nname = \"" + name + "\"\ncommand = [\"" + pkit_test_common::child_path() + "\", \"" + mode +
         "\"]\nstop_timeout = \"2s\"\n";
}

bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all;
  if (!in || !std::getline(in, all)) return false;
  auto close = all.rfind(')');
  return close != std::string::npos && close + 2 < all.size() && all[close + 2] != 'Z';
}

// A running daemon of a small tree: a, b at the root, c in group g. Event lines go to
// /dev/null.
struct fixture {
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  std::unique_ptr<pkit::tool::daemon> d;

  fixture() {
    auto text = "intensity = 10\n" + program("a", "pause") + program("b", "pause") +
                "[[group]]\nname = \"g\"\n[[group.program]]\nname = \"c\"\ncommand = [\"" +
                pkit_test_common::child_path() + "\", \"pause\"]\n";
    auto loaded = load_string(text, "test.toml", "/");
    BOOST_REQUIRE(loaded);
    daemon_options o;
    o.event_fd = null_fd;
    d = std::make_unique<pkit::tool::daemon>(std::move(*loaded.tree), o);
    auto err = d->start();
    BOOST_REQUIRE_MESSAGE(!err, err.value_or(""));
  }
  ~fixture() {
    d.reset();
    ::close(null_fd);
  }

  json row(const std::string& name) {
    auto r = d->handle("status", json::object());
    BOOST_REQUIRE(r.ok);
    for (const auto& p : r.result["programs"])
      if (p["name"] == name) return p;
    return nullptr;
  }
};

// Collects stream items; waits for one that matches.
struct collector {
  std::mutex m;
  std::condition_variable cv;
  std::vector<json> items;

  control_handler::sink sink() {
    return [this](const json& j) {
      std::lock_guard lock(m);
      items.push_back(j);
      cv.notify_all();
      return true;
    };
  }
  bool wait_for(const std::string& program, const std::string& event, std::size_t from = 0) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] {
      for (std::size_t i = from; i < items.size(); ++i)
        if (items[i]["program"] == program && items[i]["event"] == event) return true;
      return false;
    });
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(status_lists_every_program_with_its_group_state_and_pid, fixture) {
  auto r = d->handle("status", json::object());
  BOOST_REQUIRE(r.ok);
  const auto& programs = r.result["programs"];
  BOOST_REQUIRE_EQUAL(programs.size(), 3u);
  BOOST_TEST(programs[0]["name"] == "a");
  BOOST_TEST(programs[2]["name"] == "c");
  BOOST_TEST(programs[2]["group"] == "g");
  for (const auto& p : programs) {
    BOOST_TEST(p["state"] == "running");
    BOOST_TEST(alive(p["pid"].get<pid_t>()));
    BOOST_TEST(p["uptime_ms"].get<std::int64_t>() >= 0);
    BOOST_TEST(p["last_exit"].is_null());
    BOOST_TEST(p["end"].is_null());
  }
}

BOOST_FIXTURE_TEST_CASE(stop_start_and_restart_address_programs_by_name_at_any_depth, fixture) {
  pid_t c0 = row("c")["pid"];
  auto r = d->handle("stop", {{"names", {"c"}}});
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  BOOST_TEST(row("c")["state"] == "stopped");
  BOOST_TEST(row("c")["end"]["kind"] == "stopped");
  BOOST_TEST(!alive(c0));
  r = d->handle("start", {{"names", {"c"}}});
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  pid_t c1 = row("c")["pid"];
  BOOST_TEST(row("c")["state"] == "running");
  BOOST_TEST(c1 != c0);
  BOOST_TEST(alive(c1));
  pid_t a0 = row("a")["pid"];
  r = d->handle("restart", {{"names", {"a"}}});
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  BOOST_TEST(row("a")["pid"] != a0);
  BOOST_TEST(row("a")["restarts"] == 1);
  BOOST_TEST(!alive(a0));
  // The final table (made from events once the tree is gone) counts it too: it showed 0.
  // `start c` restarted a stopped child: a manual restart as well, as status says.
  const json recorded = d->recorded_status();
  for (const auto& p : recorded["programs"]) {
    if (p["name"] == "a") BOOST_TEST(p["restarts"] == 1);
    if (p["name"] == "c") BOOST_TEST(p["restarts"] == row("c")["restarts"]);
  }
}

BOOST_FIXTURE_TEST_CASE(signal_sends_a_signal_and_the_events_stream_shows_its_effect, fixture) {
  collector seen;
  control_reply err;
  auto stream = d->open_stream("events", json::object(), seen.sink(), err);
  BOOST_REQUIRE(stream);
  pid_t b0 = row("b")["pid"];
  auto r = d->handle("signal", {{"names", {"b"}}, {"signal", "TERM"}});
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  BOOST_REQUIRE(seen.wait_for("b", "exited"));
  BOOST_REQUIRE(seen.wait_for("b", "ready"));
  {
    std::lock_guard lock(seen.m);
    for (const auto& j : seen.items)
      if (j["event"] == "exited") BOOST_TEST(j["status"]["signal"] == SIGTERM);
  }
  BOOST_TEST(row("b")["pid"] != b0);
  stream.reset();
  std::size_t before = seen.items.size();
  BOOST_REQUIRE(d->handle("restart", {{"names", {"a"}}}).ok);
  BOOST_TEST(seen.items.size() == before, "a destroyed stream gets nothing more");
}

BOOST_FIXTURE_TEST_CASE(add_starts_new_programs_and_remove_stops_and_forgets_them, fixture) {
  auto r = d->handle("add", {{"toml", program("n", "pause")}, {"group", "g"}});
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  auto n = row("n");
  BOOST_REQUIRE(!n.is_null());
  BOOST_TEST(n["group"] == "g");
  BOOST_TEST(alive(n["pid"].get<pid_t>()));
  r = d->handle("add", {{"toml", program("n", "pause")}});
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.code == "already_present");
  r = d->handle("remove", {{"names", {"n"}}});
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  BOOST_TEST(row("n").is_null());
  BOOST_TEST(!alive(n["pid"].get<pid_t>()));
}

// An add refused by the running tree or the actor layer (after the snippet loaded) says
// which lines of the snippet caused it, as a load error does: FILE:LINE:COLUMN.
BOOST_FIXTURE_TEST_CASE(add_errors_found_after_loading_point_at_the_snippets_lines, fixture) {
  const std::string dies = "[[program]]\nname = \"dies\"\ncommand = [\"" + pkit_test_common::child_path() +
                           "\", \"exit\", \"3\"]\nreadiness = { fd = 3 }\n";
  // program("ok1", …) takes lines 1-4: the second table starts on line 5.
  auto r = d->handle("add", {{"toml", program("ok1", "pause") + dies}, {"file", "snip.toml"}});
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.code == "start_failed");
  BOOST_TEST(r.message.starts_with("snip.toml:5:1: dies: "), r.message);
  BOOST_TEST(row("ok1").is_null(), "all or nothing");
  r = d->handle("add", {{"toml", program("ok2", "pause") + program("a", "pause")}, {"file", "snip.toml"}});
  BOOST_TEST(r.code == "already_present");
  BOOST_TEST(r.message.starts_with("snip.toml:5:1: 'a' exists already"), r.message);
}

BOOST_FIXTURE_TEST_CASE(bad_requests_get_typed_errors_naming_what_was_wrong, fixture) {
  auto r = d->handle("stop", {{"names", {"nope"}}});
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.code == "unknown_program");
  BOOST_TEST(r.message.find("nope") != std::string::npos);
  r = d->handle("stop", json::object());
  BOOST_TEST(r.code == "bad_request");
  r = d->handle("signal", {{"names", {"a"}}, {"signal", "NOSUCH"}});
  BOOST_TEST(r.code == "bad_request");
  r = d->handle("frobnicate", json::object());
  BOOST_TEST(r.code == "unknown_command");
  r = d->handle("add", {{"toml", "[[program]]\nname = \"x\"\n"}});
  BOOST_TEST(r.code == "invalid_config");
  control_reply err;
  BOOST_TEST(!d->open_stream("nope", json::object(), [](const json&) { return true; }, err));
  BOOST_TEST(err.code == "unknown_stream");
}

BOOST_AUTO_TEST_CASE(reload_applies_a_change_inside_a_nested_group_to_that_program_only) {
  pkit_test_common::temp_dir dir;
  auto file = dir.file("tree.toml");
  auto group = [](const std::string& c_mode) {
    return "[[group]]\nname = \"g\"\nstrategy = \"one_for_all\"\n[[group.program]]\nname = \"c\"\ncommand = [\"" +
           pkit_test_common::child_path() + "\", \"" + c_mode + "\"]\n[[group.program]]\nname = \"d\"\ncommand = [\"" +
           pkit_test_common::child_path() + "\", \"pause\"]\n";
  };
  {
    std::ofstream(file) << program("a", "pause") << group("pause");
  }
  auto loaded = load_file(file);
  BOOST_REQUIRE(loaded);
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  daemon_options o;
  o.event_fd = null_fd;
  pkit::tool::daemon d(std::move(*loaded.tree), o);
  BOOST_REQUIRE(!d.start());
  auto pids = [&] {
    std::map<std::string, pid_t> out;
    auto status = d.status();  // (not d.status()["programs"]: a range-for would outlive the temporary)
    for (const auto& p : status["programs"]) out[p["name"].get<std::string>()] = p["pid"].get<pid_t>();
    return out;
  };
  auto before = pids();
  {
    std::ofstream(file, std::ios::trunc) << program("a", "pause") << group("ignore-term");
  }
  auto r = d.handle("reload", json::object());
  BOOST_REQUIRE_MESSAGE(r.ok, r.code << ": " << r.message);
  BOOST_TEST(r.result["changed"] == json::array({"g/c"}), r.result.dump());
  auto after = pids();
  BOOST_TEST(after["a"] == before["a"]);
  BOOST_TEST(after["d"] == before["d"]);
  BOOST_TEST(after["c"] != before["c"]);
  BOOST_TEST(alive(after["c"]));
  BOOST_TEST(!alive(before["c"]));

  {
    std::ofstream(file, std::ios::trunc) << "this is not toml = = =\n";
  }
  r = d.handle("reload", json::object());
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.code == "invalid_config");
  BOOST_TEST(pids() == after, "a rejected file changes nothing");
  ::close(null_fd);
}

namespace {

// Sends `line` as pkit ctl does: through the protocol's decoding, so that the argument
// shapes are exactly the wire's.
control_reply send(pkit::tool::daemon& d, const std::string& line) {
  auto decoded = decode_request(line);
  BOOST_REQUIRE_MESSAGE(decoded.request, line << ": " << decoded.error.message);
  return d.handle(decoded.request->command, decoded.request->args);
}

std::map<std::string, pid_t> pids_of(pkit::tool::daemon& d) {
  std::map<std::string, pid_t> out;
  auto status = d.status();
  for (const auto& p : status["programs"]) out[p["name"].get<std::string>()] = p["pid"].get<pid_t>();
  return out;
}

}  // namespace

// D4: a dot in a name does not make a program an instance of another one.
BOOST_AUTO_TEST_CASE(a_dotted_name_is_a_program_of_its_own_not_an_instance) {
  pkit_test_common::temp_dir dir;
  auto file = dir.file("tree.toml");
  auto workers = "[[program]]\nname = \"w\"\ninstances = 2\ncommand = [\"" + pkit_test_common::child_path() +
                 "\", \"pause\"]\n";
  {
    std::ofstream(file) << program("web", "pause") << program("web.2", "pause") << workers;
  }
  auto loaded = load_file(file);
  BOOST_REQUIRE(loaded);
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  daemon_options o;
  o.event_fd = null_fd;
  pkit::tool::daemon d(std::move(*loaded.tree), o);
  BOOST_REQUIRE(!d.start());
  auto before = pids_of(d);
  BOOST_REQUIRE_EQUAL(before.size(), 4u);

  auto r = send(d, R"({"command":"stop","args":{"names":["web"]}})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  BOOST_TEST(!alive(before["web"]));
  BOOST_TEST(alive(before["web.2"]), "stop web must not stop web.2");
  r = send(d, R"({"command":"start","args":{"names":["web"]}})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  r = send(d, R"({"command":"stop","args":{"names":["w"]}})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  BOOST_TEST(!alive(before["w.1"]));
  BOOST_TEST(!alive(before["w.2"]));
  BOOST_REQUIRE(send(d, R"({"command":"start","args":{"names":["w"]}})").ok);

  auto mid = pids_of(d);
  {
    std::ofstream(file, std::ios::trunc) << program("web", "ignore-term") << program("web.2", "pause") << workers;
  }
  r = send(d, R"({"command":"reload"})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.code << ": " << r.message);
  auto after = pids_of(d);
  BOOST_TEST(after["web"] != mid["web"]);
  BOOST_TEST(after["web.2"] == mid["web.2"], "a change of web must leave web.2 alone");
  {
    std::ofstream(file, std::ios::trunc) << program("web.2", "pause") << workers;
  }
  r = send(d, R"({"command":"reload"})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.code << ": " << r.message);
  auto last = pids_of(d);
  BOOST_TEST(last.count("web") == 0u);
  BOOST_TEST(last["web.2"] == mid["web.2"], "removing web must leave web.2 in the tree");
  BOOST_TEST(alive(mid["web.2"]));
  ::close(null_fd);
}

// D14: status NAME… shows those programs only; an unknown name is unknown_program.
BOOST_FIXTURE_TEST_CASE(status_of_names_shows_those_only_and_refuses_unknown_ones, fixture) {
  auto r = send(*d, R"({"command":"status","args":{"names":["b"]}})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  BOOST_REQUIRE_EQUAL(r.result["programs"].size(), 1u);
  BOOST_TEST(r.result["programs"][0]["name"] == "b");
  r = send(*d, R"({"command":"status","args":{"names":["g"]}})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  BOOST_REQUIRE_EQUAL(r.result["programs"].size(), 1u);
  BOOST_TEST(r.result["programs"][0]["name"] == "c");
  r = send(*d, R"({"command":"status","args":{"names":["a","nope"]}})");
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.code == "unknown_program");
  BOOST_TEST(r.message.find("nope") != std::string::npos);
}

// D7: ctl sends the group of `add --group` as an array of strings.
BOOST_FIXTURE_TEST_CASE(add_into_a_group_given_as_a_path_array, fixture) {
  auto r = send(*d, R"({"command":"add","args":{"toml":)" + json(program("n", "pause")).dump() +
                        R"(,"group":["g"]}})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.code << ": " << r.message);
  BOOST_TEST(r.result["added"] == json::array({"n"}));
  auto n = row("n");
  BOOST_REQUIRE(!n.is_null());
  BOOST_TEST(n["group"] == "g");
  BOOST_TEST(alive(n["pid"].get<pid_t>()));
}

// D9: start on a running program leaves it running as it is.
BOOST_FIXTURE_TEST_CASE(start_of_a_running_program_does_not_restart_it, fixture) {
  pid_t a0 = row("a")["pid"];
  auto r = send(*d, R"({"command":"start","args":{"names":["a"]}})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.message);
  BOOST_TEST(row("a")["pid"] == a0);
  BOOST_TEST(row("a")["restarts"] == 0);
  BOOST_TEST(alive(a0));
}

// D17: the paths status shows (g/c) address programs; signal names in any case; remove
// answers {"removed": …}.
BOOST_FIXTURE_TEST_CASE(group_paths_lowercase_signals_and_the_remove_result, fixture) {
  pid_t c0 = row("c")["pid"];
  auto r = send(*d, R"({"command":"stop","args":{"names":["g/c"]}})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.code << ": " << r.message);
  BOOST_TEST(!alive(c0));
  BOOST_REQUIRE(send(*d, R"({"command":"start","args":{"names":["g/c"]}})").ok);
  BOOST_TEST(send(*d, R"({"command":"stop","args":{"names":["g/a"]}})").code == "unknown_program");

  collector seen;
  control_reply err;
  auto stream = d->open_stream("events", json::object(), seen.sink(), err);
  BOOST_REQUIRE(stream);
  r = send(*d, R"({"command":"signal","args":{"names":["b"],"signal":"term"}})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.code << ": " << r.message);
  BOOST_REQUIRE(seen.wait_for("b", "exited"));

  r = send(*d, R"({"command":"remove","args":{"names":["g/c"]}})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.code << ": " << r.message);
  BOOST_TEST(r.result["removed"] == json::array({"g/c"}), r.result.dump());
  BOOST_TEST(row("c").is_null());
}

namespace {

// A program that never becomes ready: its start fails after 1 s.
std::string never_ready(const std::string& name) {
  return program(name, "pause") + "readiness = { fd = 3 }\nready_timeout = \"1s\"\n";
}

}  // namespace

// D8: an add whose second program fails to start leaves nothing behind: the first one
// is stopped again and its name is free.
BOOST_FIXTURE_TEST_CASE(a_failed_add_stops_what_it_started, fixture) {
  collector seen;
  control_reply err;
  auto stream = d->open_stream("events", json::object(), seen.sink(), err);
  BOOST_REQUIRE(stream);
  auto r = send(*d, R"({"command":"add","args":{"toml":)" + json(program("p1", "pause") + never_ready("p2")).dump() +
                        "}}");
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.message.find("p2") != std::string::npos, r.message);
  BOOST_REQUIRE(seen.wait_for("p1", "started"));
  pid_t p1 = 0;
  {
    std::lock_guard lock(seen.m);
    for (const auto& j : seen.items)
      if (j["program"] == "p1" && j["event"] == "started") p1 = j["pid"].get<pid_t>();
  }
  BOOST_TEST(p1 > 0);
  BOOST_TEST(!alive(p1), "p1 must be stopped again");
  BOOST_TEST(row("p1").is_null());
  BOOST_TEST(row("p2").is_null());
  r = send(*d, R"({"command":"add","args":{"toml":)" + json(program("p1", "pause")).dump() + "}}");
  BOOST_TEST(r.ok, r.code << ": " << r.message);
}

// D8: a reload that could not start a new program does not record it as running: the
// next reload adds it (it was "unchanged" and never ran before).
BOOST_AUTO_TEST_CASE(a_reload_records_only_what_it_could_start) {
  pkit_test_common::temp_dir dir;
  auto file = dir.file("tree.toml");
  {
    std::ofstream(file) << program("a", "pause");
  }
  auto loaded = load_file(file);
  BOOST_REQUIRE(loaded);
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  daemon_options o;
  o.event_fd = null_fd;
  pkit::tool::daemon d(std::move(*loaded.tree), o);
  BOOST_REQUIRE(!d.start());
  {
    std::ofstream(file, std::ios::trunc) << program("a", "pause") << program("b", "pause") << never_ready("c");
  }
  auto r = send(d, R"({"command":"reload"})");
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.code == "reload_incomplete");
  // c's table starts on line 9 (two programs of four lines before it), in the tree file.
  BOOST_TEST(r.message.starts_with(file + ":9:1: c: "), r.message);
  BOOST_TEST(pids_of(d).count("b") == 1u);
  BOOST_TEST(pids_of(d).count("c") == 0u);
  BOOST_TEST(send(d, R"({"command":"stop","args":{"names":["c"]}})").code == "unknown_program");
  {
    std::ofstream(file, std::ios::trunc) << program("a", "pause") << program("b", "pause") << program("c", "pause");
  }
  r = send(d, R"({"command":"reload"})");
  BOOST_REQUIRE_MESSAGE(r.ok, r.code << ": " << r.message);
  BOOST_TEST(r.result["added"] == json::array({"c"}), r.result.dump());
  BOOST_TEST(alive(pids_of(d)["c"]));
  ::close(null_fd);
}

// D16: an added snippet holds [[program]]/[[group]] tables only, and its programs log
// into the running tree's log_dir (not <the tree file's dir>/logs).
BOOST_AUTO_TEST_CASE(add_refuses_root_settings_and_logs_into_the_trees_log_dir) {
  pkit_test_common::temp_dir dir;
  auto file = dir.file("tree.toml");
  auto logs = dir.file("mylogs");
  {
    std::ofstream(file) << "[pkit]\nlog_dir = \"mylogs\"\n" << program("a", "pause");
  }
  auto loaded = load_file(file);
  BOOST_REQUIRE(loaded);
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  daemon_options o;
  o.event_fd = null_fd;
  pkit::tool::daemon d(std::move(*loaded.tree), o);
  BOOST_REQUIRE(!d.start());
  auto add = [&](const std::string& toml) {
    return send(d, R"({"command":"add","args":{"toml":)" + json(toml).dump() + R"(,"file":"snippet.toml"}})");
  };
  auto r = add("intensity = 3\n" + program("x", "pause"));
  BOOST_TEST(r.code == "invalid_config");
  BOOST_TEST(r.message.find("snippet.toml:1:1: intensity") != std::string::npos, r.message);
  r = add(program("x", "pause") + "[pkit]\nname = \"other\"\n");
  BOOST_TEST(r.code == "invalid_config");
  BOOST_TEST(r.message.find(": pkit") != std::string::npos, r.message);
  BOOST_TEST(pids_of(d).count("x") == 0u);

  r = add(program("x", "pause") + "stdout = \"log\"\n");
  BOOST_REQUIRE_MESSAGE(r.ok, r.code << ": " << r.message);
  BOOST_TEST(!std::filesystem::exists(dir.file("logs")), "nothing under <tree dir>/logs");
  BOOST_TEST(std::filesystem::exists(logs + "/x.out.log"));
  ::close(null_fd);
}

// D17: tail takes the path status shows ("g/c") as well as the bare name.
BOOST_AUTO_TEST_CASE(tail_takes_a_group_path) {
  auto text = "[[group]]\nname = \"g\"\n[[group.program]]\nname = \"c\"\nstdout = \"log\"\ncommand = [\"" +
              pkit_test_common::child_path() + "\", \"pause\"]\n";
  pkit_test_common::temp_dir dir;
  auto loaded = load_string(text, "test.toml", dir.file(""));
  BOOST_REQUIRE(loaded);
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  daemon_options o;
  o.event_fd = null_fd;
  pkit::tool::daemon d(std::move(*loaded.tree), o);
  BOOST_REQUIRE(!d.start());
  auto open = [&](const std::string& name, control_reply& err) {
    return d.open_stream("tail", {{"name", name}}, [](const json&) { return true; }, err);
  };
  control_reply err;
  BOOST_TEST(open("c", err).get() != nullptr, err.message);
  BOOST_TEST(open("g/c", err).get() != nullptr, err.code << ": " << err.message);
  BOOST_TEST(open("x/c", err).get() == nullptr);
  BOOST_TEST(err.code == "unknown_program");
  BOOST_TEST(open("g/c/c", err).get() == nullptr);
  BOOST_TEST(err.code == "unknown_program");
  ::close(null_fd);
}
