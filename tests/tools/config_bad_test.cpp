// The corpus of bad tree files (tests/tools/bad/*.toml): each is refused with exactly the
// errors its first lines expect — `# expect: LINE:COL: key.path: message start`, one line
// per error, in the order reported (by position). `# unless-root` skips a file whose
// problem a root user does not have (root may run programs as anyone).

#include <pkit/tool/config.hpp>

#include <boost/test/unit_test.hpp>

#include "temp_dir.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using pkit::tool::load_file;

namespace {

struct expectation {
  std::vector<std::string> errors;
  bool unless_root = false;
};

expectation expectation_of(const fs::path& file) {
  expectation e;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line) && line.starts_with("#")) {
    if (line.starts_with("# expect: ")) e.errors.push_back(line.substr(10));
    else if (line == "# unless-root") e.unless_root = true;
  }
  return e;
}

std::vector<fs::path> bad_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(fs::path(PKIT_CONFIG_TEST_DIR) / "bad"))
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config_bad_files)

BOOST_AUTO_TEST_CASE(every_bad_file_is_refused_with_exactly_its_expected_errors) {
  const auto files = bad_files();
  BOOST_TEST(files.size() >= 25u);
  for (const fs::path& file : files) {
    BOOST_TEST_CONTEXT(file.filename().string()) {
      const expectation expected = expectation_of(file);
      BOOST_TEST(!expected.errors.empty(), "no '# expect:' line");
      if (expected.unless_root && ::geteuid() == 0) continue;
      const auto result = load_file(file);
      BOOST_TEST(!result);
      BOOST_TEST(!result.tree.has_value());
      std::vector<std::string> got;
      for (const auto& err : result.errors) {
        const std::string text = err.to_string();
        const std::string prefix = file.string() + ":";
        BOOST_TEST(text.starts_with(prefix), text);
        got.push_back(text.substr(prefix.size()));
      }
      BOOST_TEST(got.size() == expected.errors.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        const std::string want = i < expected.errors.size() ? expected.errors[i] : "(nothing)";
        BOOST_TEST(got[i].starts_with(want), "error " << i << ": got '" << got[i] << "', expected '" << want << "...'");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_missing_file_is_an_error_naming_it) {
  const auto result = load_file("/nonexistent/pkit/tree.toml");
  BOOST_TEST_REQUIRE(result.errors.size() == 1u);
  BOOST_TEST(result.errors[0].to_string().starts_with("/nonexistent/pkit/tree.toml: cannot read the file"));
}

BOOST_AUTO_TEST_CASE(a_syntax_error_from_a_string_names_the_given_file_name) {
  const auto result = pkit::tool::load_string("a = \n", "inline.toml", fs::current_path());
  BOOST_TEST_REQUIRE(result.errors.size() == 1u);
  BOOST_TEST(result.errors[0].to_string().starts_with("inline.toml:1:5: "), result.errors[0].to_string());
}

BOOST_AUTO_TEST_CASE(what_exec_would_refuse_with_e2big_is_refused_before_anything_starts) {
  const std::string big(200 * 1024, 'x');
  const auto arg = pkit::tool::load_string("[[program]]\nname = \"p\"\ncommand = [\"/bin/true\", \"" + big + "\"]\n",
                                           "t.toml", "/");
  BOOST_TEST_REQUIRE(arg.errors.size() == 1u);
  BOOST_TEST(arg.errors[0].to_string().starts_with("t.toml:3:11: program[0].command: argument 1 is longer than exec allows"),
             arg.errors[0].to_string());
  const auto env = pkit::tool::load_string(
      "[[program]]\nname = \"p\"\ncommand = [\"/bin/true\"]\nenvironment = { BIG = \"" + big + "\" }\n", "t.toml", "/");
  BOOST_TEST_REQUIRE(env.errors.size() == 1u);
  BOOST_TEST(env.errors[0].to_string().starts_with("t.toml:4:15: program[0].environment: variable BIG is longer"),
             env.errors[0].to_string());
}

BOOST_AUTO_TEST_CASE(a_runaway_file_is_refused_unread) {
  pkit_test_common::temp_dir dir;
  const fs::path file = dir.path() / "huge.toml";
  std::ofstream(file).close();
  fs::resize_file(file, 100u << 20);  // sparse: costs no disk
  const auto result = load_file(file);
  BOOST_TEST_REQUIRE(result.errors.size() == 1u);
  BOOST_TEST(result.errors[0].to_string() == file.string() + ": the file is 104857600 bytes; a tree file has at most 4 MiB");
}

BOOST_AUTO_TEST_SUITE_END()
