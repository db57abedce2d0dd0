// `pkit` and `pkit-net` (include/pkit/tool/network_exec.hpp): a tree without nodes runs in
// `pkit`, which maps no network code (CAF's io and OpenSSL modules, OpenSSL) and no
// libsystemd, also when systemd asks to be notified; a tree with nodes runs in `pkit-net` (the same argv, argv[0]
// kept); a reload that adds nodes to a tree started without them is refused, saying to
// restart; a missing pkit-net is an error naming where it was looked for. Real processes:
// their /proc/PID/maps, exe and cmdline.

#define BOOST_TEST_MODULE pkit_binaries
#include "pkit_tree_run.hpp"

#include <filesystem>
#include <fstream>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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
  // As under systemd (Type=notify): a NOTIFY_SOCKET that listens, and READY=1 must reach
  // it — sent without libsystemd, which must not be mapped.
  const std::string notify_path = dir.file("notify.sock");
  const int notify = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(notify >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", notify_path.c_str());
  BOOST_REQUIRE(::bind(notify, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  pkit_process run({"run", file, "--log-format", "json"}, {"NOTIFY_SOCKET=" + notify_path, "WATCHDOG_USEC="});
  BOOST_REQUIRE_MESSAGE(run.wait_event(is_event("p", "ready")), run.stderr_text());
  std::string said;
  for (int i = 0; i < 10 && said.find("READY=1") == std::string::npos; ++i) {
    pollfd p{notify, POLLIN, 0};
    BOOST_REQUIRE_MESSAGE(::poll(&p, 1, 10000) == 1, "no READY=1 on NOTIFY_SOCKET; got: " << said);
    char buf[512];
    const ssize_t n = ::recv(notify, buf, sizeof buf, 0);
    if (n > 0) said.append(buf, static_cast<std::size_t>(n)).push_back('\n');
  }
  BOOST_TEST(said.find("READY=1") != std::string::npos, said);
  ::close(notify);
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

namespace {
/// The build's pkit under another name, so that /proc/self/exe names `path`'s directory
/// (where pkit looks for pkit-net): a hard link, which /proc/self/exe reports by the name
/// it was run by; a copy (~80 MB with debug information) only across file systems.
/// Being a hard link, `path` IS the build's binary: never change its mode or contents.
void pkit_alone_at(const std::string& path) {
  std::error_code ec;
  fs::create_hard_link(pkit_binary(), path, ec);
  if (!ec) return;
  BOOST_TEST_MESSAGE("no hard link to " << pkit_binary() << " at " << path << " (" << ec.message() << "): copied");
  fs::copy_file(pkit_binary(), path);
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_missing_pkit_net_is_an_error_naming_where_it_was_looked_for) {
  pkit_test_common::temp_dir dir;
  if (fs::exists(PKIT_NET_INSTALLED)) {
    BOOST_TEST_MESSAGE("skipped: an installed pkit-net exists (" PKIT_NET_INSTALLED ")");
    return;
  }
  const std::string alone = dir.file("pkit");
  pkit_alone_at(alone);
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

namespace {
/// Runs `command` through the shell; its exit code (or -1) and what it wrote to stderr.
std::pair<int, std::string> shell_with_stderr(pkit_test_common::temp_dir& dir, const std::string& command) {
  const std::string err = dir.file("err-" + std::to_string(::getpid()) + ".txt");
  const int status = std::system((command + " 2>'" + err + "' >/dev/null </dev/null").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(err)};
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_pkit_net_that_is_pkit_itself_is_refused_not_run_for_ever) {
  pkit_test_common::temp_dir dir;
  // pkit-net next to a pkit (a hard link, so that /proc/self/exe names this directory) is a
  // link to that pkit: it would exec itself in a loop.
  const std::string alone = dir.file("pkit");
  pkit_alone_at(alone);
  fs::create_symlink(alone, dir.file("pkit-net"));
  const std::string file = dir.file("tree.toml");
  write_file(file, tree(dir.file("ctl.sock"), "[nodes.far]\naddress = \"127.0.0.1:9\"\n"));
  auto [code, text] = shell_with_stderr(dir, "timeout 20 '" + alone + "' check '" + file + "'");
  BOOST_TEST(code == 1, text);
  BOOST_TEST(text.find("is this pkit itself") != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(pkit_net_refuses_a_pkit_of_another_version_and_is_named_pkit_for_its_own) {
  pkit_test_common::temp_dir dir;
  const std::string net = (fs::path(pkit_binary()).parent_path() / "pkit-net").string();
  auto [code, text] = shell_with_stderr(dir, "PKIT_NET_CALLER_VERSION=0.0.0-other '" + net + "' --version");
  BOOST_TEST(code == 1, text);
  BOOST_TEST(text.find("install pkit and pkit-net together") != std::string::npos, text);
  // Run by this pkit: comm says pkit (ps -C pkit, pgrep -x pkit, killall pkit).
  const std::string file = dir.file("tree.toml");
  write_file(file, tree(dir.file("ctl.sock"), "[nodes.far]\naddress = \"127.0.0.1:9\"\n"));
  pkit_process run({"run", file, "--log-format", "json"});
  auto ready = run.wait_event(is_event("p", "ready"));
  BOOST_REQUIRE_MESSAGE(ready, run.stderr_text());
  BOOST_TEST(exe_of(run.pid()) == "pkit-net");
  BOOST_TEST(read_file("/proc/" + std::to_string(run.pid()) + "/comm") == "pkit\n");
  // The variable is pkit's to pkit-net only: the tree's programs do not inherit it.
  const int program = ready->value("pid", 0);
  BOOST_REQUIRE(program > 0);
  const std::string environ = read_file("/proc/" + std::to_string(program) + "/environ");
  BOOST_REQUIRE(!environ.empty());
  BOOST_TEST(environ.find("PKIT_NET_CALLER_VERSION") == std::string::npos);
}
