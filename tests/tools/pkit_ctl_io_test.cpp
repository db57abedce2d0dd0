// The end-to-end suite's second half: log files written through the real binary, and the
// real daemon's control socket (permissions, peer check, size limit, concurrency, a
// second run on the same socket).

#include "pkit_tree_run.hpp"

#include <filesystem>
#include <regex>

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace pkit_test_tools;
namespace fs = std::filesystem;

namespace {

// One record of a captured-output file: "YYYY-MM-DDTHH:MM:SS.mmmZ" + marker + text.
struct record {
  char marker;
  std::string text;
};

std::vector<record> records_of(const std::string& path) {
  static const std::regex form(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z([ +])(.*)$)");
  std::vector<record> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    BOOST_REQUIRE_MESSAGE(std::regex_match(line, m, form), path << ": not a record: " << line);
    out.push_back({m[1].str()[0], m[2].str()});
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(log_files_rotate_without_losing_or_splitting_a_line_and_a_killed_runs_partial_line_stands_alone) {
  tree_run t("",
             program("writer", "\"write-lines\", \"3000\", \"30\"",
                     "restart = \"transient\"\nstdout = { file = \"out.log\", max_size = \"4KiB\", keep = 50 }") +
                 program("cut", "\"lines-then-partial\", \"10\", \"1\"", "stdout = { file = \"cut.log\" }"),
             {"cut"});
  auto done = t.event(is_event("writer", "exited"));
  BOOST_REQUIRE(done);
  BOOST_TEST(done->value("status", json::object()).value("code", -1) == 0);
  const auto cut = t.dir.file("logs/cut.log");
  const pid_t c0 = t.pids["cut"];
  auto has_line = [&](pid_t pid, int i) {
    return eventually([&] { return read_file(cut).find(" " + std::to_string(pid) + " " + std::to_string(i) + "\n") != std::string::npos; });
  };
  BOOST_REQUIRE(has_line(c0, 10));
  ::kill(c0, SIGKILL);
  auto again = t.event(is_event("cut", "started", 2));
  BOOST_REQUIRE(again);
  const pid_t c1 = again->value("pid", 0);
  BOOST_REQUIRE(has_line(c1, 10));
  t.finish();  // the capture is drained when pkit run ends

  // out.log and its rotations, oldest first: out.K.log ... out.1.log, out.log.
  std::vector<std::string> files;
  for (int k = 50; k >= 1; --k)
    if (fs::exists(t.dir.file("logs/out." + std::to_string(k) + ".log"))) files.push_back(t.dir.file("logs/out." + std::to_string(k) + ".log"));
  files.push_back(t.dir.file("logs/out.log"));
  BOOST_TEST(files.size() > 10u, "it rotated: " << files.size() << " files");
  std::vector<int> numbers;
  for (const auto& f : files) {
    BOOST_TEST(fs::file_size(f) <= 4096u, f << " is " << fs::file_size(f) << " bytes");
    for (const auto& r : records_of(f)) {
      BOOST_TEST(r.marker == ' ', "a whole line");
      BOOST_TEST((r.text.size() == 30u && std::regex_match(r.text, std::regex("[0-9]{8}x+"))), "a split line: " << r.text);
      numbers.push_back(std::stoi(r.text.substr(0, 8)));
    }
  }
  BOOST_TEST(numbers.size() == 3000u);
  bool in_order = true;
  for (std::size_t i = 0; i < numbers.size(); ++i) in_order = in_order && numbers[i] == static_cast<int>(i) + 1;
  BOOST_TEST(in_order, "every line once, in order, across the files");

  // cut.log: run 1's lines, its partial line alone, then run 2's lines.
  auto recs = records_of(cut);
  std::vector<std::string> texts;
  for (const auto& r : recs) texts.push_back(r.text);
  std::vector<std::string> want;
  for (int i = 1; i <= 10; ++i) want.push_back(std::to_string(c0) + " " + std::to_string(i));
  want.push_back(std::to_string(c0) + " partial");
  for (int i = 1; i <= 10; ++i) want.push_back(std::to_string(c1) + " " + std::to_string(i));
  want.push_back(std::to_string(c1) + " partial");  // written when pkit run stopped it
  BOOST_TEST(texts == want, boost::test_tools::per_element());
}

namespace {

// Connects as uid/gid 65534 (keeping CAP_DAC_OVERRIDE, so that the socket file's mode is
// not what refuses it: the peer check must) and sends a status request. The child's exit
// code: 0 refused with permission_denied, 2 answered, 3 no reply, 4 no connection, 5 setup.
int status_as_nobody(const std::string& sock) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::prctl(PR_SET_KEEPCAPS, 1) != 0 || ::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0)
      ::_exit(5);
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct caps[2]{};
    caps[0].effective = caps[0].permitted = 1u << CAP_DAC_OVERRIDE;
    if (::syscall(SYS_capset, &hdr, caps) != 0) ::_exit(5);
    try {
      raw_client c(sock);
      c.send("{\"id\":1,\"command\":\"status\"}\n");
      auto r = c.read_reply();
      if (!r) ::_exit(3);
      ::_exit(!r->value("ok", false) && (*r)["error"].value("code", "") == "permission_denied" ? 0 : 2);
    } catch (...) {
      ::_exit(4);
    }
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_control_socket_is_private_refuses_other_users_and_huge_requests_and_serves_100_at_once) {
  tree_run t("", pause_program("alpha"), {"alpha"});
  struct stat st{};
  BOOST_REQUIRE(::stat(t.sock.c_str(), &st) == 0);
  BOOST_TEST(S_ISSOCK(st.st_mode));
  BOOST_TEST((st.st_mode & 07777) == 0600u, std::oct << (st.st_mode & 07777));
  BOOST_REQUIRE(::stat(t.dir.file("run").c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0700u, "the directory pkit made: " << std::oct << (st.st_mode & 07777));

  if (::geteuid() == 0) {
    BOOST_TEST(status_as_nobody(t.sock) == 0, "uid 65534 is refused with permission_denied");
    BOOST_TEST(!t.run->wait_exit(milliseconds(0)), "pkit run still runs");
  } else {
    BOOST_TEST_MESSAGE("not root: the other-uid check is skipped");
  }

  {
    // 100 MB on one line: refused once it passes 1 MiB; the rest is never read.
    raw_client big(t.sock);
    timeval tv{5, 0};
    ::setsockopt(big.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const std::string chunk(1 << 20, 'a');
    std::size_t sent = 0;
    BOOST_REQUIRE(big.send("{\"command\":\"status\",\"x\":\""));
    while (sent < 100u * 1000 * 1000 && big.send(chunk)) sent += chunk.size();
    BOOST_TEST(sent < 100u * 1000 * 1000, "the server read all of it");
    BOOST_TEST_MESSAGE("the server took " << sent << " bytes of the 100 MB line");
    if (auto reply = big.read_reply(seconds(5))) {  // may be lost to the reset of the unread rest
      BOOST_TEST_MESSAGE(reply->dump());
      BOOST_TEST((*reply)["error"].value("code", "") == "too_large", reply->dump());
    }
  }
  BOOST_TEST(t.ctl({"status", "alpha"}).code == 0, "still answering");

  std::vector<std::unique_ptr<raw_client>> clients;
  for (int i = 0; i < 100; ++i) {
    clients.push_back(std::make_unique<raw_client>(t.sock));
    BOOST_REQUIRE(clients.back()->send("{\"id\":" + std::to_string(i) + ",\"command\":\"status\"}\n"));
  }
  int answered = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = clients[static_cast<std::size_t>(i)]->read_reply(seconds(20));
    answered += r && r->value("ok", false) && r->value("id", -1) == i && (*r)["result"]["programs"].size() == 1u;
  }
  BOOST_TEST(answered == 100);
  BOOST_TEST(alive(t.pids["alpha"]));
  t.finish();
}

BOOST_AUTO_TEST_CASE(a_second_run_on_the_same_socket_is_refused_and_the_first_goes_on) {
  tree_run t("", pause_program("alpha"), {"alpha"});
  const auto other = t.dir.file("other.toml");
  write_file(other, t.text("", pause_program("intruder")));
  pkit_process second({"run", other, "--log-format", "json"});
  auto code = second.wait_exit(seconds(20));
  BOOST_REQUIRE_MESSAGE(code, "the second pkit run did not end");
  BOOST_TEST(*code != 0);
  BOOST_TEST(second.stderr_text().find("already listening") != std::string::npos, second.stderr_text());
  BOOST_TEST(second.stderr_text().find("\"started\"") == std::string::npos, "it started nothing");
  BOOST_TEST(fs::exists(t.sock));
  BOOST_TEST(alive(t.pids["alpha"]));
  BOOST_TEST(t.ctl({"status", "alpha"}).code == 0, "the first still answers");
  BOOST_TEST(t.ctl({"shutdown"}).code == 0);
  BOOST_TEST(t.run->wait_exit(seconds(20)).value_or(-1) == 0);
  t.no_process_left();
}
