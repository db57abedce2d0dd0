#pragma once

// The scratch tree and the expectations shared by the allow-list suites (net_allow_test).

#include "temp_dir.hpp"

#include <pkit/net/allow_list.hpp>

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace pkit_allow_test {

namespace fs = std::filesystem;
using pkit::actors::process_spec;
using pkit::net::allow_list;
using pkit::net::errc;
using pkit::net::validate;

/// /bin/true as its own resolved path (/usr/bin/true where /bin links to usr/bin).
inline const std::string true_path = fs::canonical("/bin/true").string();

/// A scratch tree: apps/bin/{tool,link-out -> /bin/sh,link-in -> tool}, apps2/bin/tool,
/// work/{sub,escape -> /}, and an allow-list for apps/bin, /bin/true and work.
struct tree {
  pkit_test_common::temp_dir dir;
  fs::path apps = dir.path() / "apps";
  fs::path bin = apps / "bin";
  fs::path tool = bin / "tool";
  fs::path other = dir.path() / "apps2" / "bin" / "tool";  // shares a prefix with apps
  fs::path work = dir.path() / "work";
  allow_list allow;

  tree() {
    fs::create_directories(bin);
    fs::create_directories(other.parent_path());
    fs::create_directories(work / "sub");
    for (const auto& p : {tool, other}) {
      std::ofstream(p) << "#!/bin/sh\n";
      fs::permissions(p, fs::perms::owner_all);
    }
    fs::create_symlink("/bin/sh", bin / "link-out");
    fs::create_symlink("tool", bin / "link-in");
    fs::create_symlink("/", work / "escape");
    allow.program_dirs = {bin};
    allow.programs = {true_path};
    allow.cwd_dirs = {work};
    allow.users = {"app"};
    allow.default_user = "app";  // the suite may run as root
    allow.groups = {"apps"};
    allow.env_names = {"LANG", "APP_MODE"};
  }

  process_spec spec(std::vector<std::string> argv) const {
    process_spec s;
    s.name = "job";
    s.argv = std::move(argv);
    return s;
  }
};

inline void expect_ok(const process_spec& spec, const allow_list& allow) {
  auto refused = validate(spec, allow);
  BOOST_TEST(!refused.has_value(), (refused ? refused->message() : ""));
}

inline void expect_refused(const process_spec& spec, const allow_list& allow, errc code,
                    const std::string& field) {
  auto refused = validate(spec, allow);
  BOOST_TEST_REQUIRE(refused.has_value(), "expected a refusal naming " << field);
  BOOST_TEST_INFO("message: " << refused->message());
  BOOST_TEST(refused->code == pkit::net::make_error_code(code));
  BOOST_TEST(refused->subject == field);
  BOOST_TEST(!refused->reason.empty());
}


}  // namespace pkit_allow_test
