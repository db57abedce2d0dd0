// The allow-list file of `pkit node` (pkit::tool::load_allow_string): every key mapped
// onto pkit::net::allow_list, and every error placed at file:line:col with its key path.

#define BOOST_TEST_MODULE node_allow
#include <boost/test/unit_test.hpp>

#include <pkit/tool/node_allow.hpp>

namespace {

std::string errors_of(const pkit::tool::allow_file_result& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_key_reaches_the_allow_list) {
  auto r = pkit::tool::load_allow_string(R"toml(
programs = ["/usr/bin/sleep", "/usr/bin/env"]
program_dirs = ["/usr/lib/pkit-no-such-dir-is-checked-later"]
cwd_dirs = ["/tmp"]
users = ["app"]
groups = ["app"]
default_user = "nobody"
default_group = "nogroup"
agent_credentials_allowed = true
env_names = ["PORT"]
base_env = ["PATH=/usr/bin", "LANG=C"]
rlimits_allowed = true
[[pinned]]
program = "/usr/bin/env"
args = ["true"]
[limits]
max_args = 8
max_arg_bytes = "1KiB"
max_total_bytes = 4096
max_name_bytes = 32
max_stop_timeout = "2s"
max_ready_timeout = "1m"
)toml",
                                         "allow.toml");
  // program_dirs does not exist: the list's own check refuses it, at its entry.
  BOOST_TEST_REQUIRE(!r);
  BOOST_TEST(errors_of(r).find("allow.toml:3:17: program_dirs[0]: ") == 0, errors_of(r));
  auto ok = pkit::tool::load_allow_string(R"toml(
programs = ["/usr/bin/sleep", "/usr/bin/env"]
default_user = "nobody"
base_env = ["PATH=/usr/bin", "LANG=C"]
[[pinned]]
program = "/usr/bin/env"
args = ["true"]
[limits]
max_arg_bytes = "1KiB"
max_stop_timeout = "2s"
)toml",
                                          "allow.toml");
  BOOST_TEST_REQUIRE(static_cast<bool>(ok), errors_of(ok));
  const auto& a = *ok.allow;
  BOOST_TEST(a.programs.size() == 2u);
  BOOST_TEST(a.default_user == "nobody");
  BOOST_TEST(a.base_env.size() == 2u);
  BOOST_TEST_REQUIRE(a.pinned.size() == 1u);
  BOOST_TEST(a.pinned[0].program == "/usr/bin/env");
  BOOST_TEST(a.pinned[0].args == (std::vector<std::string>{"true"}));
  BOOST_TEST(a.max_arg_bytes == 1024u);
  BOOST_TEST(a.max_stop_timeout_ms == 2000);
  BOOST_TEST(a.max_args == 256u);  // a default the file did not change
}

BOOST_AUTO_TEST_CASE(every_error_names_its_position_and_key) {
  auto r = pkit::tool::load_allow_string(R"toml(programs = ["/usr/bin/sleep", 7]
interpreters_allowed = "yes"
progams = []
[[pinned]]
program = "/usr/bin/sleep"
[limits]
max_stop_timeout = 5
)toml",
                                         "f.toml");
  BOOST_TEST_REQUIRE(!r);
  const auto text = errors_of(r);
  BOOST_TEST(text.find("f.toml:1:31: programs[1]: expected a string, got an integer") != std::string::npos, text);
  BOOST_TEST(text.find("f.toml:2:24: interpreters_allowed: expected a boolean") != std::string::npos, text);
  BOOST_TEST(text.find("f.toml:3:1: progams: unknown key 'progams'; did you mean 'programs'?") != std::string::npos,
             text);
  BOOST_TEST(text.find("pinned[0].args: a pinned entry needs its fixed arguments") != std::string::npos, text);
  BOOST_TEST(text.find("f.toml:7:20: limits.max_stop_timeout: a duration is a string with a unit") !=
                 std::string::npos,
             text);
}

BOOST_AUTO_TEST_CASE(a_syntax_error_is_placed) {
  auto r = pkit::tool::load_allow_string("programs = [\"/usr/bin/sleep\"\n", "s.toml");
  BOOST_TEST_REQUIRE(!r);
  BOOST_TEST(r.errors.size() == 1u);
  BOOST_TEST(r.errors[0].where.line >= 1u);
  BOOST_TEST(r.errors[0].file == "s.toml");
}

BOOST_AUTO_TEST_CASE(an_interpreter_is_refused_unless_pinned) {
  auto r = pkit::tool::load_allow_string("programs = [\"/usr/bin/sleep\",\n  \"/usr/bin/env\"]\n", "i.toml");
  BOOST_TEST_REQUIRE(!r);
  BOOST_TEST(errors_of(r).find("i.toml:2:3: programs[1]: '/usr/bin/env' runs whatever its arguments say") == 0,
             errors_of(r));
}
