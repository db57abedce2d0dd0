// The event lines of `pkit run`: JSON fields and the human line.

#define BOOST_TEST_MODULE daemon_event_printer
#include <boost/test/unit_test.hpp>

#include <pkit/tool/daemon.hpp>
#include <pkit/tool/ctl_format.hpp>
#include <pkit/tool/event_printer.hpp>

using namespace pkit::tool;
using pkit::actors::event_kind;
using pkit::actors::supervisor_event;

namespace {
supervisor_event exited_by_kill() {
  supervisor_event e;
  e.supervisor = "backend";
  e.child = "db";
  e.kind = event_kind::exited;
  e.incarnation = 2;
  e.pid = 1234;
  e.has_status = true;
  e.status = pkit::exit_status::killed(9);
  return e;
}
}  // namespace

BOOST_AUTO_TEST_CASE(json_lines_carry_group_program_event_pid_run_and_status) {
  auto t = std::chrono::system_clock::from_time_t(0) + std::chrono::milliseconds(1234);
  auto j = event_to_json(exited_by_kill(), "backend", t);
  BOOST_TEST(j["time"] == "1970-01-01T00:00:01.234Z");
  BOOST_TEST(j["group"] == "backend");
  BOOST_TEST(j["program"] == "db");
  BOOST_TEST(j["event"] == "exited");
  BOOST_TEST(j["pid"] == 1234);
  BOOST_TEST(j["run"] == 2);
  BOOST_TEST(j["status"]["signal"] == 9);
  BOOST_TEST(!j.contains("delay_ms"));
}

BOOST_AUTO_TEST_CASE(human_lines_name_the_path_the_event_and_how_it_ended) {
  auto line = event_to_human(exited_by_kill(), "backend", std::chrono::system_clock::now(), false);
  BOOST_TEST(line.find("backend/db") != std::string::npos, line);
  BOOST_TEST(line.find("exited") != std::string::npos, line);
  BOOST_TEST(line.find("killed by SIGKILL (run 2, pid 1234)") != std::string::npos, line);
  BOOST_TEST(line.find('\033') == std::string::npos, "no colour unless asked");
  BOOST_TEST(event_to_human(exited_by_kill(), "", std::chrono::system_clock::now(), true).find('\033') !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_status_table_has_a_row_per_program) {
  nlohmann::json s{{"programs",
                    {{{"name", "db"}, {"group", "backend"}, {"state", "running"}, {"pid", 42}, {"uptime_ms", 1500},
                      {"restarts", 1}, {"last_exit", {{"code", 3}}}, {"reason", ""}}}}};
  auto table = pkit::tool::format_status_table(s);
  BOOST_TEST(table.find("backend/db") != std::string::npos, table);
  BOOST_TEST(table.find("running") != std::string::npos);
  BOOST_TEST(table.find("exit 3") != std::string::npos);
  BOOST_TEST(table.find(" 1s ") != std::string::npos, table);
}

// A node sends error texts and reasons (review 11 #16): a hostile one must not reach the
// terminal as escape sequences through pkit run's event lines, ctl status or ctl's errors.
BOOST_AUTO_TEST_CASE(strings_from_elsewhere_print_without_their_control_characters) {
  using pkit::tool::printable;
  BOOST_TEST(printable("plain ünïcode ✓") == "plain ünïcode ✓");
  BOOST_TEST(printable("a\033]0;owned\007b") == "a\\x1b]0;owned\\x07b");
  BOOST_TEST(printable("cr\rlf\ndel\x7f") == "cr\\x0dlf\\x0adel\\x7f");
  BOOST_TEST(printable("one\ntwo", true) == "one\ntwo");
  BOOST_TEST(printable("c1 \xc2\x9b" "2J") == "c1 \\x9b2J", "U+009B, the 8-bit CSI, as UTF-8");
  BOOST_TEST(printable("bare \x9b" "2J") == "bare \\x9b2J", "the 8-bit CSI as a bare byte");
  BOOST_TEST(printable("\xe2\x80\x9c") == "\xe2\x80\x9c", "a continuation byte of U+201C stays");
  BOOST_TEST(printable("\xc0\x9b") == "\\xc0\\x9b", "an overlong ESC");
  BOOST_TEST(printable("\xe0\x82\x9b") == "\\xe0\\x82\\x9b", "an overlong C1 CSI");
  BOOST_TEST(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80", "a surrogate");
  BOOST_TEST(printable("a\xe2\x80\xae" "b") == "a\\xe2\\x80\\xaeb", "RIGHT-TO-LEFT OVERRIDE");
  BOOST_TEST(printable("\xe2\x81\xa6x") == "\\xe2\\x81\\xa6x", "LEFT-TO-RIGHT ISOLATE");
  BOOST_TEST(printable("\xf0\x9f\x98\x80") == "\xf0\x9f\x98\x80", "an emoji stays");

  auto e = exited_by_kill();
  e.reason = "node 'a': spawn: \033[2J\033[Hall is fine";
  e.node = "a\033[31m";
  const auto line = event_to_human(e, "backend\r", std::chrono::system_clock::now(), false);
  BOOST_TEST(line.find('\033') == std::string::npos, line);
  BOOST_TEST(line.find('\r') == std::string::npos, line);
  BOOST_TEST(line.find("\\x1b[2J") != std::string::npos, line);
  nlohmann::json s{{"programs",
                    {{{"name", "db\033[8m"}, {"group", "g"}, {"node", "n\007"}, {"state", "running"}, {"pid", 42},
                      {"uptime_ms", 1500}, {"restarts", 1}, {"last_exit", nullptr}}}}};
  const auto table = pkit::tool::format_status_table(s);
  BOOST_TEST(table.find('\033') == std::string::npos, table);
  BOOST_TEST(table.find('\007') == std::string::npos, table);
  BOOST_TEST(table.find("db\\x1b[8m") != std::string::npos, table);
}

// Issue 9 item 16: the structured end reason rides along as `end` (PROTOCOL.md).
BOOST_AUTO_TEST_CASE(an_event_carries_its_structured_end_reason) {
  auto e = exited_by_kill();
  const auto t = std::chrono::system_clock::from_time_t(0);
  BOOST_TEST(!event_to_json(e, "backend", t).contains("end"));
  e.end = pkit::actors::end_reason{pkit::actors::end_kind::signaled};
  BOOST_TEST(event_to_json(e, "backend", t)["end"] == nlohmann::json({{"kind", "signaled"}}));
  e.end.kind = pkit::actors::end_kind::start_failed;
  e.end.has_start = true;
  e.end.start.stage = "exec";
  e.end.start.errno_value = 2;
  e.end.start.program = "/x";
  const auto end = event_to_json(e, "backend", t)["end"];
  BOOST_TEST(end == nlohmann::json({{"kind", "start_failed"}, {"stage", "exec"}, {"errno", 2}, {"program", "/x"}}));
  BOOST_TEST(end_to_json(pkit::actors::end_reason{}).is_null());
}

// Review 15 #7: a path that is not UTF-8 (a node's start_failure, a reason) must not throw
// in the daemon's event actor: `program` keeps its bytes as \xNN, the line is written.
BOOST_AUTO_TEST_CASE(an_end_whose_program_is_not_utf8_still_makes_a_json_line) {
  auto e = exited_by_kill();
  e.reason = "spawn /srv/\xff\xfe: no such file";
  e.end.kind = pkit::actors::end_kind::start_failed;
  e.end.has_start = true;
  e.end.start.stage = "exec";
  e.end.start.errno_value = 2;
  e.end.start.program = "/srv/\xff\xfe";
  const auto j = event_to_json(e, "backend", std::chrono::system_clock::from_time_t(0));
  BOOST_TEST(j["end"]["program"] == "/srv/\\xff\\xfe");
  std::string line;
  BOOST_CHECK_NO_THROW(line = json_line(j));
  const auto back = nlohmann::json::parse(line);
  BOOST_TEST(back["end"]["program"] == "/srv/\\xff\\xfe");
  BOOST_TEST(back["reason"] == "spawn /srv/\ufffd\ufffd: no such file");
  BOOST_TEST(end_to_json(e.end).dump() == R"({"errno":2,"kind":"start_failed","program":"/srv/\\xff\\xfe","stage":"exec"})");
}
