// pkit::net::validate: every rule of the node agent's allow-list, with the hostile
// spellings a peer could try (.., //, symlinks out of an allowed directory, NUL bytes,
// sizes), each refused with its own code naming the field.

#define BOOST_TEST_MODULE net_allow_list
#include <boost/test/unit_test.hpp>

#include "allow_tree.hpp"

#include <pkit/net/allow_list.hpp>

#include <sys/resource.h>

#include <csignal>
#include <cstdint>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using pkit::actors::process_spec;
using pkit::net::allow_list;
using pkit::net::errc;
using pkit::net::validate;
using namespace std::string_literals;

using namespace pkit_allow_test;

BOOST_AUTO_TEST_CASE(allowed_programs_pass) {
  tree t;
  expect_ok(t.spec({t.tool.string(), "--flag", "x"}), t.allow);
  expect_ok(t.spec({true_path}), t.allow);
  auto s = t.spec({t.tool.string()});
  s.cwd = (t.work / "sub").string();
  s.user = "app";
  s.group = "apps";
  s.env = {"LANG=C", "APP_MODE"};
  s.clear_env = true;
  s.stdout_path = "capture";
  s.stderr_path = "null";
  expect_ok(s, t.allow);
}

BOOST_AUTO_TEST_CASE(no_program_or_a_fork_server_target_is_refused) {
  tree t;
  expect_refused(t.spec({}), t.allow, errc::spec_no_program, "argv");
  auto s = t.spec({});
  s.target = "worker";
  expect_refused(s, t.allow, errc::spec_target_refused, "target");
  s = t.spec({t.tool.string()});
  s.target = "worker";  // both: still refused, never "argv wins"
  expect_refused(s, t.allow, errc::spec_target_refused, "target");
  s = t.spec({t.tool.string()});
  s.args = {"x"};
  expect_refused(s, t.allow, errc::spec_target_refused, "args");
}

BOOST_AUTO_TEST_CASE(programs_not_listed_are_refused) {
  tree t;
  for (const auto& p :
       {fs::canonical("/bin/sh").string(), fs::canonical("/bin/false").string(), "/"s,
        t.other.string(), t.bin.string(), (t.bin / "absent").string(),
        t.apps.string() + "/bin2/tool"})
    expect_refused(t.spec({p}), t.allow, errc::spec_program_not_allowed, "argv[0]");
}

// The rule on programs that run whatever their arguments say holds at each spawn, not
// only when the list was checked: an interpreter that appears in an allowed directory
// later (a package upgrade, a program writing where its user may) is refused (review 20b
// #6: it ran the peer's arguments). With interpreters_allowed it runs.
BOOST_AUTO_TEST_CASE(an_interpreter_that_appears_in_an_allowed_directory_later_is_refused) {
  tree t;
  BOOST_TEST_REQUIRE(!t.allow.check().has_value());
  const auto python = t.bin / "python3";
  std::ofstream(python) << "#!/bin/sh\n";
  fs::permissions(python, fs::perms::owner_all);
  expect_refused(t.spec({python.string(), "-c", "import os"}), t.allow, errc::spec_program_not_allowed, "argv[0]");
  expect_ok(t.spec({t.tool.string()}), t.allow);
  t.allow.interpreters_allowed = true;
  expect_ok(t.spec({python.string(), "-c", "import os"}), t.allow);
}

BOOST_AUTO_TEST_CASE(paths_must_be_absolute_and_plain) {
  tree t;
  const std::string bin = t.bin.string();
  for (const auto& p : {"tool"s, "bin/tool"s, "./tool"s, ""s, bin + "/../bin/tool",
                        bin + "/./tool", bin + "//tool", "/" + bin + "/tool", bin + "/tool/",
                        bin + "/../../../../bin/sh", "/bin/../bin/true"s, "~/tool"s})
    expect_refused(t.spec({p}), t.allow, errc::spec_path_not_absolute, "argv[0]");
}

BOOST_AUTO_TEST_CASE(symlinks_out_of_an_allowed_directory_are_refused) {
  tree t;
  expect_refused(t.spec({(t.bin / "link-out").string()}), t.allow,
                 errc::spec_path_not_canonical, "argv[0]");
  auto s = t.spec({t.tool.string()});
  s.cwd = (t.work / "escape").string();
  expect_refused(s, t.allow, errc::spec_path_not_canonical, "cwd");
  s.cwd = (t.work / "escape" / "tmp").string();
  expect_refused(s, t.allow, errc::spec_path_not_canonical, "cwd");
}

// Review #1: the path the peer spells is what the child execs (after its own chdir, with
// that argv[0]), so it must be the file itself: no link anywhere in it, nothing under
// /proc or /dev — even when the link leads to an allowed program.
BOOST_AUTO_TEST_CASE(a_spelling_through_a_link_is_refused_even_to_an_allowed_program) {
  tree t;
  // A link inside the directory to a program inside it: a multi-call program would see
  // another argv[0] (pkill -> pgrep), and the peer could swap a link it made.
  expect_refused(t.spec({(t.bin / "link-in").string()}), t.allow,
                 errc::spec_path_not_canonical, "argv[0]");
  // The allowed directory reached through a link.
  fs::create_symlink(t.bin, t.dir.path() / "bin-link");
  expect_refused(t.spec({(t.dir.path() / "bin-link" / "tool").string()}), t.allow,
                 errc::spec_program_not_allowed, "argv[0]");
  // /proc/self/cwd is the agent's cwd when checked, the child's own after its chdir.
  for (const auto& p : {"/proc/self/cwd" + t.tool.string(), "/proc/self/root" + true_path,
                        "/proc/1/root" + true_path, "/dev/fd/0"s, "/proc"s, "/dev"s})
    expect_refused(t.spec({p}), t.allow, errc::spec_path_not_canonical, "argv[0]");
  // An allow-list entry is matched as spelled: listing a link allows no spelling.
  auto a = t.allow;
  a.programs = {"/bin/true"};
  if (fs::is_symlink("/bin")) {
    expect_refused(t.spec({"/bin/true"}), a, errc::spec_path_not_canonical, "argv[0]");
    expect_refused(t.spec({true_path}), a, errc::spec_program_not_allowed, "argv[0]");
  }
  auto s = t.spec({t.tool.string()});
  s.cwd = "/proc/self/cwd";
  expect_refused(s, t.allow, errc::spec_path_not_canonical, "cwd");
  s.cwd = "/tmp/../" + t.work.string();
  expect_refused(s, t.allow, errc::spec_path_not_absolute, "cwd");
}

BOOST_AUTO_TEST_CASE(cwd_outside_the_allowed_directories_is_refused) {
  tree t;
  auto s = t.spec({t.tool.string()});
  for (const auto& cwd : {"/"s, "/tmp"s, t.apps.string(), t.work.string() + "2"})
    s.cwd = cwd, expect_refused(s, t.allow, errc::spec_cwd_not_allowed, "cwd");
  s.cwd = (t.work / "absent").string();
  expect_refused(s, t.allow, errc::spec_cwd_not_allowed, "cwd");
  for (const auto& cwd : {"sub"s, t.work.string() + "/../work", t.work.string() + "/"})
    s.cwd = cwd, expect_refused(s, t.allow, errc::spec_path_not_absolute, "cwd");
  s.cwd = t.work.string();
  expect_ok(s, t.allow);
  t.allow.cwd_dirs.clear();
  expect_refused(s, t.allow, errc::spec_cwd_not_allowed, "cwd");
}

BOOST_AUTO_TEST_CASE(output_files_are_refused) {
  tree t;
  for (const auto& path : {"/etc/passwd"s, "out.log"s, "capture "s, "NULL"s, "/dev/null"s}) {
    auto s = t.spec({t.tool.string()});
    s.stdout_path = path;
    expect_refused(s, t.allow, errc::spec_output_refused, "stdout_path");
    s = t.spec({t.tool.string()});
    s.stderr_path = path;
    expect_refused(s, t.allow, errc::spec_output_refused, "stderr_path");
    s = t.spec({t.tool.string()});
    s.stdin_path = path;  // a file of the node's, read by a remote peer through its child
    expect_refused(s, t.allow, errc::spec_output_refused, "stdin_path");
  }
  auto s = t.spec({t.tool.string()});
  s.stdin_path = "capture";  // no capture of input
  expect_refused(s, t.allow, errc::spec_output_refused, "stdin_path");
  for (const auto& ok : {""s, "null"s}) {
    s.stdin_path = ok;
    expect_ok(s, t.allow);
  }
}

BOOST_AUTO_TEST_CASE(credentials_not_listed_are_refused) {
  tree t;
  auto s = t.spec({t.tool.string()});
  for (const auto& user : {"root"s, "0"s, "app "s, "APP"s}) {
    s.user = user;
    expect_refused(s, t.allow, errc::spec_credentials_not_allowed, "user");
  }
  s.user.clear();
  for (const auto& group : {"root"s, "0"s, "app"s}) {
    s.group = group;
    expect_refused(s, t.allow, errc::spec_credentials_not_allowed, "group");
  }
}

BOOST_AUTO_TEST_CASE(environment_names_not_listed_are_refused) {
  tree t;
  auto s = t.spec({t.tool.string()});
  s.env = {"LANG=C", "LD_PRELOAD=/tmp/evil.so"};
  expect_refused(s, t.allow, errc::spec_env_not_allowed, "env[1]");
  s.env = {"PATH"};  // removing is as much a change as setting
  expect_refused(s, t.allow, errc::spec_env_not_allowed, "env[0]");
  s.env = {"=x"};
  expect_refused(s, t.allow, errc::spec_malformed, "env[0]");
  s.env = {""};
  expect_refused(s, t.allow, errc::spec_malformed, "env[0]");
}

BOOST_AUTO_TEST_CASE(rlimits_only_where_allowed) {
  tree t;
  auto s = t.spec({t.tool.string()});
  s.rlimits = {pkit::actors::rlimit_spec{RLIMIT_NOFILE, 64, 64}};
  expect_refused(s, t.allow, errc::spec_rlimits_refused, "rlimits");
  t.allow.rlimits_allowed = true;
  expect_ok(s, t.allow);
  // Review #15: no cap on the vector and no range check on the resource ids.
  s.rlimits.assign(100000, pkit::actors::rlimit_spec{RLIMIT_NOFILE, 64, 64});
  expect_refused(s, t.allow, errc::spec_too_large, "rlimits");
  s.rlimits = {pkit::actors::rlimit_spec{RLIMIT_CORE, 0, 0},
               pkit::actors::rlimit_spec{RLIM_NLIMITS, 1, 1}};
  expect_refused(s, t.allow, errc::spec_out_of_range, "rlimits[1]");
  s.rlimits = {pkit::actors::rlimit_spec{-1, 1, 1}};
  expect_refused(s, t.allow, errc::spec_out_of_range, "rlimits[0]");
  s.rlimits = {pkit::actors::rlimit_spec{RLIMIT_NOFILE, 65, 64}};
  expect_refused(s, t.allow, errc::spec_out_of_range, "rlimits[0]");
  s.rlimits = {pkit::actors::rlimit_spec{RLIMIT_NOFILE, 64, 64},
               pkit::actors::rlimit_spec{RLIMIT_NOFILE, 32, 32}};
  expect_refused(s, t.allow, errc::spec_malformed, "rlimits[1]");
}

BOOST_AUTO_TEST_CASE(nul_bytes_are_refused_wherever_they_hide) {
  tree t;
  // "<bin>/tool\0/../../../bin/sh": a C API would see the allowed prefix only.
  auto s = t.spec({t.tool.string() + "\0/../../../bin/sh"s});
  expect_refused(s, t.allow, errc::spec_malformed, "argv[0]");
  s = t.spec({t.tool.string(), "a\0b"s});
  expect_refused(s, t.allow, errc::spec_malformed, "argv[1]");
  s = t.spec({t.tool.string()});
  s.env = {"LANG=C\0LD_PRELOAD=x"s};
  expect_refused(s, t.allow, errc::spec_malformed, "env[0]");
  s.env.clear();
  s.cwd = t.work.string() + "\0/.."s;
  expect_refused(s, t.allow, errc::spec_malformed, "cwd");
  s.cwd.clear();
  s.user = "app\0root"s;
  expect_refused(s, t.allow, errc::spec_malformed, "user");
  s.user.clear();
  s.name = "x\0y"s;
  expect_refused(s, t.allow, errc::spec_malformed, "name");
}

BOOST_AUTO_TEST_CASE(sizes_are_capped) {
  tree t;
  auto s = t.spec({t.tool.string()});
  s.argv.resize(100000, "x");
  expect_refused(s, t.allow, errc::spec_too_large, "argv");
  s = t.spec({t.tool.string(), std::string(t.allow.max_arg_bytes + 1, 'a')});
  expect_refused(s, t.allow, errc::spec_too_large, "argv[1]");
  s = t.spec({t.tool.string()});
  s.env = {"LANG=" + std::string(200 * 1024, 'a')};
  expect_refused(s, t.allow, errc::spec_too_large, "env[0]");
  // Each entry within its cap, together beyond the total.
  s = t.spec({t.tool.string()});
  s.argv.resize(t.allow.max_args, std::string(t.allow.max_arg_bytes / 2, 'a'));
  expect_refused(s, t.allow, errc::spec_too_large, "argv");
  s = t.spec({t.tool.string()});
  s.name = std::string(t.allow.max_name_bytes + 1, 'n');
  expect_refused(s, t.allow, errc::spec_too_large, "name");
  // At the caps exactly: allowed.
  s = t.spec({t.tool.string(), std::string(t.allow.max_arg_bytes, 'a')});
  s.name = std::string(t.allow.max_name_bytes, 'n');
  expect_ok(s, t.allow);
}

BOOST_AUTO_TEST_CASE(hostile_values_are_escaped_in_messages) {
  tree t;
  auto s = t.spec({t.tool.string()});
  s.stdout_path = "\x1b[2J\nFAKE LOG LINE" + std::string(1000, 'z');
  auto refused = validate(s, t.allow);
  BOOST_TEST_REQUIRE(refused.has_value());
  auto text = refused->message();
  BOOST_TEST(text.find('\n') == std::string::npos, text);
  BOOST_TEST(text.find('\x1b') == std::string::npos, text);
  BOOST_TEST(text.find("\\x1b[2J\\x0aFAKE") != std::string::npos, text);
  BOOST_TEST(text.size() < 400u, text.size());
}

BOOST_AUTO_TEST_CASE(an_empty_allow_list_allows_nothing) {
  allow_list none;
  none.agent_credentials_allowed = true;  // what is refused here is the program
  process_spec s;
  s.name = "job";
  s.argv = {true_path};
  expect_refused(s, none, errc::spec_program_not_allowed, "argv[0]");
}

BOOST_AUTO_TEST_CASE(numbers_out_of_range_are_refused) {
  tree t;
  struct row {
    void (*set)(process_spec&);
    const char* field;
  };
  const row rows[] = {
    {[](process_spec& s) { s.stop_signal = 0; }, "stop_signal"},
    {[](process_spec& s) { s.stop_signal = -9; }, "stop_signal"},
    {[](process_spec& s) { s.stop_signal = 4096; }, "stop_signal"},
    {[](process_spec& s) { s.stop_timeout_ms = -1; }, "stop_timeout_ms"},  // never SIGKILL
    {[](process_spec& s) { s.stop_timeout_ms = 60'001; }, "stop_timeout_ms"},
    {[](process_spec& s) { s.ready_timeout_ms = -1; }, "ready_timeout_ms"},
    {[](process_spec& s) { s.ready_timeout_ms = INT64_MAX; }, "ready_timeout_ms"},
    {[](process_spec& s) { s.notify_fd = 0; }, "notify_fd"},
    {[](process_spec& s) { s.notify_fd = 2; }, "notify_fd"},
    {[](process_spec& s) { s.notify_fd = -2; }, "notify_fd"},
  };
  for (const auto& r : rows) {
    auto s = t.spec({t.tool.string()});
    r.set(s);
    expect_refused(s, t.allow, errc::spec_out_of_range, r.field);
  }
  auto s = t.spec({t.tool.string()});
  s.notify_fd = 3;
  s.notify_socket = true;
  expect_refused(s, t.allow, errc::spec_malformed, "notify_fd");
  // The bounds themselves are allowed.
  s = t.spec({t.tool.string()});
  s.notify_fd = 3;
  s.stop_timeout_ms = 0;
  s.ready_timeout_ms = t.allow.max_ready_timeout_ms;
  s.stop_signal = SIGKILL;
  expect_ok(s, t.allow);
}

BOOST_AUTO_TEST_CASE(the_allow_list_checks_itself) {
  tree t;
  BOOST_TEST(!t.allow.check().has_value());
  auto expect_bad = [](const allow_list& a, const std::string& field) {
    auto refused = a.check();
    BOOST_TEST_REQUIRE(refused.has_value(), "expected a refusal naming " << field);
    BOOST_TEST(refused->code == pkit::net::make_error_code(errc::allow_list_invalid));
    BOOST_TEST(refused->subject == field, refused->message());
  };
  auto a = t.allow;
  a.programs.push_back("bin/tool");
  expect_bad(a, "programs[1]");
  a = t.allow;
  a.program_dirs.push_back(t.dir.path() / "absent");
  expect_bad(a, "program_dirs[1]");
  a = t.allow;
  a.cwd_dirs = {t.work.string() + "/../apps"};
  expect_bad(a, "cwd_dirs[0]");
  a = t.allow;
  a.program_dirs.push_back(t.dir.path() / "bin-link");  // a link: could never match
  fs::create_symlink(t.bin, t.dir.path() / "bin-link");
  expect_bad(a, "program_dirs[1]");
  a = t.allow;
  a.programs.push_back("/proc/self/exe");
  expect_bad(a, "programs[1]");
  a = t.allow;
  a.max_args = 0;
  expect_bad(a, "max_args");
  a = t.allow;
  a.max_stop_timeout_ms = -1;
  expect_bad(a, "max_stop_timeout_ms");
}
