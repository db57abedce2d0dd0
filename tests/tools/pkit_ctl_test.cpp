// `pkit ctl` end to end: a real `pkit run FILE` serving its control socket, driven by the
// real `pkit ctl` binary (every subcommand) and by raw socket clients. Synchronised on
// pkit run's JSON event lines, on replies and on /proc, with deadlines.

#define BOOST_TEST_MODULE pkit_ctl
#include "pkit_tree_run.hpp"

#include <filesystem>
#include <regex>

using namespace pkit_test_tools;
namespace fs = std::filesystem;

namespace {

// The group path of a status row or event ("a/b"): the daemon's string, or the array
// PROTOCOL.md shows, joined.
std::string group_of(const json& j) {
  if (!j.is_object()) return "?";
  const auto g = j.value("group", json(nullptr));
  if (g.is_string()) return g.get<std::string>();
  std::string out;
  if (g.is_array())
    for (const auto& p : g) out += (out.empty() ? "" : "/") + p.get<std::string>();
  return out;
}

const std::string group_back = "[[group]]\nname = \"back\"\n";

// True when `pid` has a handler for `sig` (SigCgt in /proc): it has set its trap up.
bool catches(pid_t pid, int sig) {
  return eventually([&] {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("SigCgt:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1) & 1) != 0;
    return false;
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(status_lists_every_program_with_real_pids_and_exits_3_for_a_stopped_one_4_for_an_unknown) {
  tree_run t("", pause_program("alpha") + pause_program("beta") +
                     program("once", "\"exit\", \"0\"", "restart = \"temporary\"") + group_back +
                     pause_program("gamma", "[[group.program]]"),
             {"alpha", "beta", "gamma"});
  BOOST_REQUIRE(t.event(is_event("once", "exited")));
  auto programs = t.status()["programs"];
  BOOST_TEST_MESSAGE(programs.dump());
  BOOST_REQUIRE(programs.size() == 4u);
  std::vector<std::string> order;
  for (const auto& p : programs) order.push_back(p.value("name", ""));
  BOOST_TEST((order == std::vector<std::string>{"alpha", "beta", "once", "gamma"}), "tree order");
  for (const auto& p : programs) {
    const auto name = p.value("name", "");
    if (name == "once") {
      BOOST_TEST(p.value("state", "") == "stopped");
      BOOST_TEST(p["pid"].is_null(), "a program without a process has pid null: " << p.dump());
      BOOST_TEST(p["last_exit"] == (json{{"code", 0}}));
      continue;
    }
    BOOST_TEST(p.value("state", "") == "running", name);
    BOOST_TEST(p.value("pid", 0) == t.pids[name], name);
    BOOST_TEST(alive(p.value("pid", 0)), name << " has no live process");
    BOOST_TEST(group_of(p) == (name == "gamma" ? "back" : ""), name);
  }
  auto table = t.ctl({"status"});
  BOOST_TEST(table.code == 0);
  BOOST_TEST_MESSAGE(table.out);
  for (const auto& n : {"alpha ", "beta ", "once ", "back/gamma "})
    BOOST_TEST(std::regex_search(table.out, std::regex(std::string("(^|\n)") + n)), "a line for " << n);
  BOOST_TEST(t.ctl({"status", "alpha"}).code == 0);
  auto by_path = t.ctl({"status", "back/gamma", "--json"});
  BOOST_TEST(by_path.code == 0);
  BOOST_TEST(by_path.json().value("programs", json::array()).size() == 1u, by_path.out);
  auto by_group = t.ctl({"status", "back", "--json"});
  BOOST_TEST(by_group.code == 0, "a group stands for the programs below it");
  BOOST_TEST(by_group.out.find("\"gamma\"") != std::string::npos, by_group.out);
  BOOST_TEST(t.ctl({"status", "once"}).code == 3, "LSB: not running");
  BOOST_TEST(t.ctl({"status", "alpha", "once"}).code == 3);
  auto unknown = t.ctl({"status", "nosuch"});
  BOOST_TEST(unknown.code == 4);
  BOOST_TEST(unknown.err.find("nosuch") != std::string::npos, unknown.err);
  t.finish();
}

BOOST_AUTO_TEST_CASE(stop_start_and_restart_change_exactly_the_named_programs_pid) {
  tree_run t("", pause_program("alpha") + pause_program("beta") + group_back + pause_program("gamma", "[[group.program]]"),
             {"alpha", "beta", "gamma"});
  const pid_t a0 = t.pids["alpha"], b0 = t.pids["beta"], g0 = t.pids["gamma"];
  BOOST_TEST(t.ctl({"stop", "alpha"}).code == 0);
  BOOST_TEST(all_gone({a0}, seconds(5)), "stop returned while the process lives");
  auto row = t.row("alpha");
  BOOST_TEST(row.value("state", "") == "stopped", row.dump());
  BOOST_TEST(t.ctl({"status", "alpha"}).code == 3);
  BOOST_TEST(t.ctl({"start", "alpha"}).code == 0);
  const pid_t a1 = t.pid_of("alpha");
  BOOST_TEST(a1 > 0);
  BOOST_TEST(a1 != a0);
  BOOST_TEST(alive(a1));
  BOOST_TEST(t.row("alpha").value("state", "") == "running");
  auto r = t.ctl({"restart", "alpha"});
  BOOST_TEST(r.code == 0, r.err);
  const pid_t a2 = t.pid_of("alpha");
  BOOST_TEST(a2 > 0);
  BOOST_TEST(a2 != a1);
  BOOST_TEST(all_gone({a1}, seconds(5)));
  BOOST_TEST(alive(a2));
  BOOST_TEST(t.pid_of("beta") == b0, "beta untouched");
  BOOST_TEST(t.pid_of("gamma") == g0, "gamma untouched");
  // A program in a group: by its name, and by its path as status shows it.
  BOOST_TEST(t.ctl({"stop", "gamma"}).code == 0);
  BOOST_TEST(all_gone({g0}, seconds(5)));
  BOOST_TEST(t.ctl({"start", "gamma"}).code == 0);
  const pid_t g1 = t.pid_of("gamma");
  BOOST_TEST(alive(g1));
  r = t.ctl({"restart", "back/gamma"});
  BOOST_TEST(r.code == 0, "restart back/gamma: " << r.err);
  const pid_t g2 = t.pid_of("gamma");
  BOOST_TEST(g2 != g1);
  BOOST_TEST(alive(g2));
  BOOST_TEST(t.pid_of("beta") == b0);
  BOOST_TEST(t.ctl({"stop", "nosuch"}).code == 4);
  BOOST_TEST(t.ctl({"stop"}).code == 2, "a name is required");
  t.finish({a0, a1, a2, g0, g1, g2});
}

BOOST_AUTO_TEST_CASE(signal_reaches_the_program_which_exits_and_is_restarted) {
  tree_run t("", program("trapper", "\"trap-term\", \"7\"") + pause_program("alpha"), {"trapper", "alpha"});
  BOOST_REQUIRE(catches(t.pids["trapper"], SIGTERM));
  auto r = t.ctl({"signal", "TERM", "trapper"});
  BOOST_TEST(r.code == 0, r.err);
  auto exited = t.event(is_event("trapper", "exited", 1));
  BOOST_REQUIRE(exited);
  BOOST_TEST(exited->value("status", json::object()).value("code", -1) == 7, "its own handler ran: " << exited->dump());
  auto again = t.event(is_event("trapper", "started", 2));
  BOOST_REQUIRE(again);
  BOOST_TEST(again->value("pid", 0) != t.pids["trapper"]);
  BOOST_TEST(alive(again->value("pid", 0)));
  // By number, with the SIG prefix: USR1's default action ends `pause`.
  BOOST_TEST(t.ctl({"signal", "SIGUSR1", "alpha"}).code == 0);
  auto usr1 = t.event(is_event("alpha", "exited", 1));
  BOOST_REQUIRE(usr1);
  BOOST_TEST(usr1->value("status", json::object()).value("signal", 0) == SIGUSR1, usr1->dump());
  BOOST_REQUIRE(t.event(is_event("alpha", "started", 2)));
  // A real-time signal, which has no name of its own, by number and by kill -l's name
  // (ctl once sent it on as "SIG35", which the daemon then refused).
  const int rt = SIGRTMIN + 1;
  auto by_number = t.ctl({"signal", std::to_string(rt), "alpha"});
  BOOST_TEST(by_number.code == 0, by_number.err);
  auto rt_exit = t.event(is_event("alpha", "exited", 2));
  BOOST_REQUIRE(rt_exit);
  BOOST_TEST(rt_exit->value("status", json::object()).value("signal", 0) == rt, rt_exit->dump());
  BOOST_REQUIRE(t.event(is_event("alpha", "started", 3)));
  BOOST_TEST(t.ctl({"signal", "rtmin+1", "alpha"}).code == 0);
  BOOST_REQUIRE(t.event(is_event("alpha", "exited", 3)));
  BOOST_TEST(t.ctl({"signal", "10", "nosuch"}).code == 4);
  BOOST_TEST(t.ctl({"signal", "NOTASIGNAL", "alpha"}).code == 2);
  t.finish();
}

BOOST_AUTO_TEST_CASE(events_streams_exited_restarting_started_ready_of_a_killed_program) {
  tree_run t("", pause_program("alpha") + pause_program("beacon"), {"alpha", "beacon"});
  ctl_stream events(t.sock, {"events", "--json"});
  ctl_stream only_beacon(t.sock, {"events", "beacon"});  // human lines, one program's
  auto name_of = [](const json& j) { return j.value("program", j.value("name", "")); };
  auto kind_of = [](const json& j) { return j.value("event", j.value("type", "")); };
  auto beacon_ready = [](const std::string& l) {
    return l.find("beacon") != std::string::npos && l.find("ready") != std::string::npos;
  };
  // The streams print nothing until an event: make one until both show it (the clients
  // subscribe on their own time).
  bool json_on = false, human_on = false;
  for (int attempt = 0; attempt < 20 && !(json_on && human_on); ++attempt) {
    BOOST_REQUIRE(t.ctl({"restart", "beacon"}).code == 0);
    while (!json_on) {
      auto line = events.next_line(seconds(1));
      if (!line) break;
      auto j = json::parse(*line, nullptr, false);
      BOOST_REQUIRE_MESSAGE(j.is_object(), "not a JSON object: " << *line);
      json_on = name_of(j) == "beacon" && kind_of(j) == "ready";
    }
    while (!human_on) {
      auto line = only_beacon.next_line(seconds(1));
      if (!line) break;
      human_on = beacon_ready(*line);
    }
  }
  BOOST_REQUIRE_MESSAGE(json_on, "events --json showed nothing");
  BOOST_REQUIRE_MESSAGE(human_on, "events beacon showed nothing");
  const pid_t a0 = t.pids["alpha"];
  ::kill(a0, SIGKILL);
  std::map<std::string, json> seen;
  for (auto until = steady_clock::now() + seconds(20); seen.size() < 4 && steady_clock::now() < until;) {
    auto line = events.next_line(duration_cast<milliseconds>(until - steady_clock::now()));
    if (!line) break;
    auto j = json::parse(*line, nullptr, false);
    BOOST_REQUIRE(j.is_object());
    if (name_of(j) == "alpha") seen.emplace(kind_of(j), j);
  }
  BOOST_REQUIRE_MESSAGE(seen.size() == 4, "events of alpha: " << json(seen).dump());
  BOOST_TEST(seen["exited"].value("pid", 0) == a0);
  BOOST_TEST(seen["exited"].value("status", json::object()).value("signal", 0) == SIGKILL);
  BOOST_TEST(seen.count("restarting") == 1u);
  const pid_t a1 = seen["started"].value("pid", 0);
  BOOST_TEST(a1 > 0);
  BOOST_TEST(a1 != a0);
  BOOST_TEST(seen["ready"].value("pid", 0) == a1);
  BOOST_TEST(alive(a1));
  BOOST_TEST(events.stop(SIGTERM) != -1, "the client ends on SIGTERM");
  // The filtered stream saw none of alpha's events: its next line is beacon's again.
  BOOST_REQUIRE(t.ctl({"restart", "beacon"}).code == 0);
  std::optional<std::string> line;
  while ((line = only_beacon.next_line()) && !beacon_ready(*line))
    BOOST_TEST(line->find("alpha") == std::string::npos, "filtered out: " << *line);
  BOOST_TEST(line.has_value(), "events beacon showed the restart");
  BOOST_TEST(only_beacon.stop(SIGTERM) != -1);
  t.finish();
}

BOOST_AUTO_TEST_CASE(tail_shows_the_last_lines_then_follows_a_new_run_after_the_partial_line) {
  tree_run t("", program("talker", "\"lines-then-partial\", \"20\", \"1\"", "stdout = \"log\""), {"talker"});
  const pid_t p0 = t.pids["talker"];
  const auto log = t.dir.file("logs/talker.out.log");
  BOOST_REQUIRE_MESSAGE(eventually([&] { return read_file(log).find(" " + std::to_string(p0) + " 20\n") != std::string::npos; }),
                        "the 20 lines did not reach " << log);
  ctl_stream tail(t.sock, {"tail", "talker", "-n", "5"});
  for (int i = 16; i <= 20; ++i) BOOST_TEST(tail.next_line().value_or("(none)") == std::to_string(p0) + " " + std::to_string(i));
  ::kill(p0, SIGKILL);
  BOOST_TEST(tail.next_line().value_or("(none)") == std::to_string(p0) + " partial", "the last partial line, alone");
  auto started = t.event(is_event("talker", "started", 2));
  BOOST_REQUIRE(started);
  const pid_t p1 = started->value("pid", 0);
  for (int i = 1; i <= 20; ++i) BOOST_TEST(tail.next_line().value_or("(none)") == std::to_string(p1) + " " + std::to_string(i));
  BOOST_TEST(tail.stop(SIGTERM) != -1);
  auto bad = t.ctl({"tail", "nosuch"});
  BOOST_TEST(bad.code == 4, bad.err);
  t.finish();
}

// A tail follows a program; once the program is removed there is nothing left to follow:
// the stream ends and `pkit ctl tail` exits 0 on its own, saying why (it waited forever).
BOOST_AUTO_TEST_CASE(a_tail_ends_when_its_program_is_removed) {
  tree_run t("", program("talker", "\"lines-then-partial\", \"3\", \"1\"", "stdout = \"log\"") + pause_program("alpha"),
             {"talker", "alpha"});
  const pid_t p0 = t.pids["talker"];
  const auto log = t.dir.file("logs/talker.out.log");
  BOOST_REQUIRE_MESSAGE(eventually([&] { return read_file(log).find(" " + std::to_string(p0) + " 3\n") != std::string::npos; }),
                        "the 3 lines did not reach " << log);
  ctl_stream tail(t.sock, {"tail", "talker", "-n", "1"});
  BOOST_TEST(tail.next_line().value_or("(none)") == std::to_string(p0) + " 3");
  auto r = t.ctl({"remove", "talker"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(tail.next_line().value_or("(none)") == std::to_string(p0) + " partial", "the killed run's last piece");
  BOOST_TEST(!tail.next_line(std::chrono::seconds(10)).has_value(), "the tail's output ended");
  BOOST_TEST(tail.stop(0) == 0, "pkit ctl tail exited 0 by itself");
  t.finish();
}

// A tail follows the processes of a program; a reload that makes it two instances (w.1,
// w.2) leaves nothing named w to follow: the tail ends (it hung, waiting for a process
// "w" that no longer existed, since the program itself was still there).
BOOST_AUTO_TEST_CASE(a_tail_ends_when_its_programs_instances_change) {
  const std::string args = "\"lines-then-partial\", \"2\", \"1\"";
  tree_run t("", program("w", args, "stdout = \"log\""), {"w"});
  const pid_t p0 = t.pids["w"];
  const auto log = t.dir.file("logs/w.out.log");
  BOOST_REQUIRE_MESSAGE(eventually([&] { return read_file(log).find(" " + std::to_string(p0) + " 2\n") != std::string::npos; }),
                        "the lines did not reach " << log);
  ctl_stream tail(t.sock, {"tail", "w", "-n", "1"});
  BOOST_TEST(tail.next_line().value_or("(none)") == std::to_string(p0) + " 2");
  write_file(t.file, t.text("", program("w", args, "stdout = \"log\"\ninstances = 2")));
  auto r = t.ctl({"reload"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(tail.next_line().value_or("(none)") == std::to_string(p0) + " partial", "the stopped run's last piece");
  BOOST_TEST(!tail.next_line(std::chrono::seconds(10)).has_value(), "the tail's output ended");
  BOOST_TEST(tail.stop(0) == 0, "pkit ctl tail exited 0 by itself");
  t.finish();
}

BOOST_AUTO_TEST_CASE(add_runs_the_programs_of_a_snippet_at_the_root_or_in_a_group_and_remove_ends_them) {
  tree_run t("", pause_program("alpha") + group_back + pause_program("gamma", "[[group.program]]"), {"alpha", "gamma"});
  write_file(t.dir.file("extra.toml"), pause_program("extra"));
  auto r = t.ctl({"add", t.dir.file("extra.toml")});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out.find("added extra") != std::string::npos, r.out);
  const pid_t e0 = t.pid_of("extra");
  BOOST_TEST(alive(e0));
  write_file(t.dir.file("inner.toml"), pause_program("inner"));
  r = t.ctl({"add", t.dir.file("inner.toml"), "--group", "back"});
  BOOST_TEST(r.code == 0, "add --group back: " << r.err);
  auto inner = t.row("inner");
  BOOST_TEST(group_of(inner) == "back", inner.dump());
  const pid_t i0 = t.pid_of("inner");
  BOOST_TEST(alive(i0));
  // Bad snippets: nothing added.
  write_file(t.dir.file("bad.toml"), "[[program]]\nname = \"broken\"\n");
  r = t.ctl({"add", t.dir.file("bad.toml")});
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err.find("bad.toml:") != std::string::npos, r.err);
  BOOST_TEST(t.row("broken").is_null());
  BOOST_TEST(t.ctl({"add", t.dir.file("extra.toml")}).code == 1, "a name already present");
  BOOST_TEST(t.ctl({"remove", "extra"}).code == 0);
  BOOST_TEST(all_gone({e0}, seconds(5)));
  BOOST_TEST(t.row("extra").is_null(), "removed from the tree");
  BOOST_TEST(t.ctl({"remove", "inner"}).code == 0);
  BOOST_TEST(all_gone({i0}, seconds(5)));
  BOOST_TEST(t.ctl({"status", "inner"}).code == 4);
  BOOST_TEST(alive(t.pids["alpha"]));
  BOOST_TEST(alive(t.pids["gamma"]));
  t.finish({e0, i0});
}

BOOST_AUTO_TEST_CASE(reload_restarts_exactly_the_changed_program_and_an_invalid_edit_changes_nothing) {
  tree_run t("", pause_program("keep") + pause_program("change") + pause_program("drop"), {"keep", "change", "drop"});
  write_file(t.file, t.text("", pause_program("keep") + program("change", "\"trap-term\", \"3\"") + pause_program("fresh")));
  auto r = t.ctl({"reload"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out.find("1 added, 1 removed, 1 changed, 1 unchanged") != std::string::npos, r.out);
  BOOST_TEST(t.pid_of("keep") == t.pids["keep"]);
  const pid_t c1 = t.pid_of("change");
  BOOST_TEST(c1 != t.pids["change"]);
  BOOST_TEST(alive(c1));
  BOOST_TEST(all_gone({t.pids["change"], t.pids["drop"]}, seconds(5)));
  BOOST_TEST(t.row("drop").is_null());
  const pid_t f1 = t.pid_of("fresh");
  BOOST_TEST(alive(f1));
  // An invalid edit (line 3 of the tables has no closing bracket): rejected with its place.
  write_file(t.file, t.text("", "[[program]]\nname = \"keep\"\ncommand = [\"" + child() + "\"\n"));
  r = t.ctl({"reload"});
  BOOST_TEST(r.code == 1);
  BOOST_TEST_MESSAGE(r.err);
  BOOST_TEST(std::regex_search(r.err, std::regex("tree\\.toml:[0-9]+:[0-9]+")), "FILE:LINE:COL in " << r.err);
  BOOST_TEST(t.pid_of("keep") == t.pids["keep"]);
  BOOST_TEST(t.pid_of("change") == c1);
  BOOST_TEST(t.pid_of("fresh") == f1);
  // The JSON result names the changed program.
  write_file(t.file, t.text("", program("keep", "\"trap-term\", \"4\"") + program("change", "\"trap-term\", \"3\"") +
                                    pause_program("fresh")));
  raw_client c(t.sock);
  BOOST_REQUIRE(c.send("{\"id\":\"r\",\"command\":\"reload\"}\n"));
  auto reply = c.read_reply(seconds(20));
  BOOST_REQUIRE(reply);
  BOOST_TEST_MESSAGE(reply->dump());
  BOOST_TEST(reply->value("ok", false));
  BOOST_TEST(reply->value("id", "") == "r");
  BOOST_TEST((*reply)["result"]["changed"] == json{"keep"});
  BOOST_TEST((*reply)["result"]["unchanged"] == 2);
  BOOST_TEST(t.pid_of("keep") != t.pids["keep"]);
  BOOST_TEST(t.pid_of("change") == c1);
  BOOST_TEST(t.pid_of("fresh") == f1);
  t.finish();
}

BOOST_AUTO_TEST_CASE(shutdown_wait_returns_once_pkit_run_has_ended_with_every_program_gone) {
  tree_run t("", pause_program("alpha") + pause_program("beta"), {"alpha", "beta"});
  auto r = t.ctl({"shutdown", "--wait"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(t.run->wait_exit(seconds(20)).value_or(-1) == 0);
  BOOST_TEST(gone(t.pids["alpha"]));
  BOOST_TEST(gone(t.pids["beta"]));
  t.no_process_left();
  BOOST_TEST(!fs::exists(t.sock), "the socket file is removed");
  BOOST_TEST(t.ctl({"status"}).code == 69, "nobody listens");
}

