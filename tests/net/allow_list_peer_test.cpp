// pkit::net::validate and allow_list, the rules a review of the first version found
// missing: a remote child's process group, credentials and environment, its name, what a
// refusal tells the peer, and programs that run whatever their arguments say (part of
// net_allow_test).

#include <boost/test/unit_test.hpp>

#include "allow_tree.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace pkit_allow_test;
using namespace std::string_literals;

// Review #4: a child sharing the agent's process group, or stopped without its group,
// leaves descendants running after a stop or the controller's loss (and kill(0) from the
// child's group would reach the agent).
BOOST_AUTO_TEST_CASE(a_remote_child_leads_its_own_process_group_and_is_stopped_with_it) {
  tree t;
  auto s = t.spec({t.tool.string()});
  s.new_process_group = false;
  expect_refused(s, t.allow, errc::spec_process_group_required, "new_process_group");
  s = t.spec({t.tool.string()});
  s.kill_group = false;
  expect_refused(s, t.allow, errc::spec_process_group_required, "kill_group");
}

// Review #3: an empty user was "always allowed" — with a root agent, a remote child ran as
// root — and clear_env=false handed the agent's environment (secrets) to the child.
BOOST_AUTO_TEST_CASE(a_root_agent_needs_a_user_and_children_start_from_a_clean_environment) {
  tree t;
  t.allow.default_user.clear();
  auto s = t.spec({t.tool.string()});
  auto refused = validate(s, t.allow, 0u);
  BOOST_TEST_REQUIRE(refused.has_value());
  BOOST_TEST(refused->code == pkit::net::make_error_code(errc::spec_credentials_not_allowed));
  BOOST_TEST(refused->subject == "user");
  BOOST_TEST(!validate(s, t.allow, 1000u).has_value());  // an unprivileged agent: its own
  s.user = "app";
  BOOST_TEST(!validate(s, t.allow, 0u).has_value());
  s.user.clear();
  auto a = t.allow;
  a.default_user = "nobody";
  BOOST_TEST(!validate(s, a, 0u).has_value());
  a = t.allow;
  a.agent_credentials_allowed = true;
  BOOST_TEST(!validate(s, a, 0u).has_value());

  a = t.allow;
  a.default_user = "nobody";
  a.default_group = "nogroup";
  a.base_env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
  s.env = {"APP_MODE=x"};
  s.clear_env = false;
  auto child = pkit::net::remote_child_spec(s, a);
  BOOST_TEST(child.clear_env);
  BOOST_TEST(child.stdin_path == "null", "never the agent's own stdin");
  BOOST_TEST(child.user == "nobody");
  BOOST_TEST(child.group == "nogroup");
  BOOST_TEST((child.env == std::vector<std::string>{"PATH=/usr/bin:/bin", "LANG=C.UTF-8",
                                                     "APP_MODE=x"}));
  s.user = "app";
  s.group = "apps";
  s.stdin_path = "";  // asked to inherit: still /dev/null
  child = pkit::net::remote_child_spec(s, a);
  BOOST_TEST(child.stdin_path == "null");
  BOOST_TEST(child.user == "app");
  BOOST_TEST(child.group == "apps");
  a.base_env = {"PATH"};
  BOOST_TEST_REQUIRE(a.check().has_value());
  BOOST_TEST(a.check()->subject == "base_env[0]");
}

// Review #14: the name keys output_capture and reaches logs: a newline, control bytes or
// a '/' in it could fake log lines or land in another program's log.
BOOST_AUTO_TEST_CASE(names_are_plain_and_short) {
  tree t;
  auto s = t.spec({t.tool.string()});
  for (const auto& name : {""s, "a\nb"s, "a/b"s, "../web"s, ".hidden"s, "-x"s, "a b"s,
                           "web\x1b[2J"s, "caf\xc3\xa9"s})
    s.name = name, expect_refused(s, t.allow, errc::spec_malformed, "name");
  s.name = std::string(65, 'n');
  expect_refused(s, t.allow, errc::spec_too_large, "name");
  for (const auto& name : {"web"s, "web-1.worker_2"s, std::string(64, 'n')})
    s.name = name, expect_ok(s, t.allow);
}

// Review #11: refusals told the peer about the node's file system — "No such file or
// directory" versus "not allowed", and where a link resolves to.
BOOST_AUTO_TEST_CASE(a_peer_learns_nothing_about_the_file_system) {
  tree t;
  auto peer_text = [&](const std::string& program) {
    auto refused = validate(t.spec({program}), t.allow);
    BOOST_TEST_REQUIRE(refused.has_value());
    BOOST_TEST(refused->code == pkit::net::make_error_code(errc::spec_program_not_allowed));
    // Everything but the peer's own value.
    std::string text = refused->peer_message();
    return text.replace(text.find(program), program.size(), "X");
  };
  const std::string absent = "/nonexistent/tool";
  const std::string present = fs::canonical("/bin/sh").string();
  BOOST_TEST(peer_text(absent) == peer_text(present));
  BOOST_TEST(peer_text((t.bin / "absent").string()) == peer_text(present));
  // Inside an allowed directory the local log still learns why.
  auto refused = validate(t.spec({(t.bin / "absent").string()}), t.allow);
  BOOST_TEST_REQUIRE(refused.has_value());
  BOOST_TEST(refused->message().find("No such file") != std::string::npos, refused->message());
  refused = validate(t.spec({(t.bin / "link-out").string()}), t.allow);
  BOOST_TEST_REQUIRE(refused.has_value());
  const std::string target = fs::canonical("/bin/sh").string();
  BOOST_TEST(refused->peer_message().find(target) == std::string::npos, refused->peer_message());
  BOOST_TEST(refused->message().find(target) != std::string::npos, refused->message());
}

// Review #5: with a shell, an interpreter or a directory such as /usr/bin allowed, the
// peer's arguments are remote code execution; nothing said so or stopped it.
BOOST_AUTO_TEST_CASE(programs_that_run_anything_need_pinned_arguments_or_an_opt_in) {
  tree t;
  const std::string sh = fs::canonical("/bin/sh").string();
  auto expect_bad = [](const allow_list& a, const std::string& field) {
    auto refused = a.check();
    BOOST_TEST_REQUIRE(refused.has_value(), "expected a refusal naming " << field);
    BOOST_TEST(refused->code == pkit::net::make_error_code(errc::allow_list_invalid));
    BOOST_TEST(refused->subject == field, refused->message());
  };
  auto a = t.allow;
  a.programs.push_back(sh);
  expect_bad(a, "programs[1]");
  a = t.allow;
  a.program_dirs.push_back(fs::path{sh}.parent_path());  // /usr/bin
  expect_bad(a, "program_dirs[1]");
  // A script interpreter by another version's name.
  std::ofstream(t.bin / "python3.11") << "#!/bin/sh\n";
  expect_bad(t.allow, "program_dirs[0]");
  fs::remove(t.bin / "python3.11");
  // Pinned: the shell runs one fixed command line, nothing else.
  a = t.allow;
  a.programs.push_back(sh);
  a.pinned = {{sh, {"-c", "exec /usr/bin/true"}}};
  BOOST_TEST(!a.check().has_value());
  expect_ok(t.spec({sh, "-c", "exec /usr/bin/true"}), a);
  expect_refused(t.spec({sh, "-c", "rm -rf /"}), a, errc::spec_args_not_allowed, "argv");
  expect_refused(t.spec({sh}), a, errc::spec_args_not_allowed, "argv");
  expect_refused(t.spec({sh, "-c", "exec /usr/bin/true", "x"}), a, errc::spec_args_not_allowed,
                 "argv");
  // A pin for a program that is not allowed is a mistake in the list.
  a.pinned.push_back({"/usr/bin/env", {}});
  expect_bad(a, "pinned[1]");
  // The explicit opt-in.
  a = t.allow;
  a.programs.push_back(sh);
  a.interpreters_allowed = true;
  BOOST_TEST(!a.check().has_value());
  expect_ok(t.spec({sh, "-c", "anything"}), a);
}
