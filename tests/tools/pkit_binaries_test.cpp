// `pkit` and `pkit-net` (include/pkit/tool/network_exec.hpp): a tree without nodes runs in
// `pkit`, which maps no network code (CAF's io and OpenSSL modules, OpenSSL) and, outside
// systemd, no libsystemd; a tree with nodes runs in `pkit-net` (the same argv, argv[0]
// kept); a reload that adds nodes to a tree started without them is refused, saying to
// restart; a missing pkit-net is an error naming where it was looked for. Real processes:
// their /proc/PID/maps, exe and cmdline.

#define BOOST_TEST_MODULE pkit_binaries
#include "pkit_tree_run.hpp"

#include <filesystem>
#include <fstream>

using namespace pkit_test_tools;
namespace fs = std::filesystem;

namespace {

const char* const network_libraries[] = {"libcaf_io", "libcaf_openssl", "libssl", "libcrypto", "libsystemd"};

std::string maps_of(pid_t pid) { return read_file("/proc/" + std::to_string(pid) + "/maps"); }

std::string exe_of(pid_t pid) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).filename().string();
}

std::string argv0_of(pid_t pid) {
  std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  return cmdline.substr(0, cmdline.find('\0'));
}

std::string tree(const std::string& socket, const std::string& extra = "") {
  return "[pkit]\nname = \"binaries\"\ncontrol_socket = \"" + socket + "\"\n" + extra + pause_program("p");
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_tree_without_nodes_runs_in_pkit_which_maps_no_network_code_nor_libsystemd) {
  pkit_test_common::temp_dir dir;
  const std::string file = dir.file("tree.toml");
  write_file(file, tree(dir.file("ctl.sock")));
  // NOTIFY_SOCKET unset: outside systemd, libsystemd is not even opened.
  pkit_process run({"run", file, "--log-format", "json"}, {"NOTIFY_SOCKET="});
  BOOST_REQUIRE_MESSAGE(run.wait_event(is_event("p", "ready")), run.stderr_text());
  BOOST_TEST(exe_of(run.pid()) == "pkit");
  const std::string maps = maps_of(run.pid());
  BOOST_REQUIRE(maps.find("libcaf_core") != std::string::npos);  // the maps were read
  for (const char* lib : network_libraries) BOOST_TEST(maps.find(lib) == std::string::npos, lib << " is mapped");
}

BOOST_AUTO_TEST_CASE(a_tree_with_a_node_runs_in_pkit_net_under_the_name_pkit) {
  pkit_test_common::temp_dir dir;
  const std::string file = dir.file("tree.toml");
  // A node nothing is placed on: the links are set up, no connection is needed.
  write_file(file, tree(dir.file("ctl.sock"), "[nodes.far]\naddress = \"127.0.0.1:9\"\n"));
  pkit_process run({"run", file, "--log-format", "json"});
  BOOST_REQUIRE_MESSAGE(run.wait_event(is_event("p", "ready")), run.stderr_text());
  BOOST_TEST(exe_of(run.pid()) == "pkit-net");
  BOOST_TEST(argv0_of(run.pid()) == pkit_binary());
  BOOST_TEST(maps_of(run.pid()).find("libcaf_io") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_reload_that_adds_nodes_to_a_tree_started_without_them_is_refused_saying_to_restart) {
  pkit_test_common::temp_dir dir;
  const std::string file = dir.file("tree.toml");
  const std::string socket = dir.file("ctl.sock");
  write_file(file, tree(socket));
  pkit_process run({"run", file, "--log-format", "json"});
  BOOST_REQUIRE_MESSAGE(run.wait_event(is_event("p", "ready")), run.stderr_text());
  write_file(file, tree(socket, "[nodes.far]\naddress = \"127.0.0.1:9\"\n"));
  auto r = run_ctl(socket, {"reload"});
  BOOST_TEST(r.code != 0);
  BOOST_TEST(r.err.find("restart pkit run") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("[nodes]") != std::string::npos, r.err);
  BOOST_TEST(alive(run.pid()));  // the running tree is left as it was
}

BOOST_AUTO_TEST_CASE(a_missing_pkit_net_is_an_error_naming_where_it_was_looked_for) {
  pkit_test_common::temp_dir dir;
  const std::string alone = dir.file("pkit");
  fs::copy_file(pkit_binary(), alone);
  fs::permissions(alone, fs::perms::owner_all);
  if (fs::exists(PKIT_NET_INSTALLED)) {
    BOOST_TEST_MESSAGE("skipped: an installed pkit-net exists (" PKIT_NET_INSTALLED ")");
    return;
  }
  const std::string file = dir.file("tree.toml");
  write_file(file, tree(dir.file("ctl.sock"), "[nodes.far]\naddress = \"127.0.0.1:9\"\n"));
  const std::string err = dir.file("err.txt");
  const std::string command = "'" + alone + "' check '" + file + "' 2>'" + err + "' >/dev/null";
  const int status = std::system(command.c_str());
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 1);
  const std::string text = read_file(err);
  BOOST_TEST(text.find("[nodes]") != std::string::npos, text);
  BOOST_TEST(text.find(dir.file("pkit-net")) != std::string::npos, text);
  BOOST_TEST(text.find(PKIT_NET_INSTALLED) != std::string::npos, text);
}
