// Good tree files load and map to the actor layer's specs field by field; describe()'s
// drawing; the built-in default tree.

#define BOOST_TEST_MODULE pkit tool config
#include <pkit/tool/config.hpp>

#include <pkit/actors/supervisor.hpp>

#include <boost/test/unit_test.hpp>

#include "temp_dir.hpp"

#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace pkit::tool;
namespace actors = pkit::actors;

namespace {

const fs::path test_dir = PKIT_CONFIG_TEST_DIR;

tree_config load_good(const std::string& name) {
  auto result = load_file(test_dir / "good" / name);
  for (const auto& e : result.errors) BOOST_TEST_MESSAGE(e.to_string());
  BOOST_TEST_REQUIRE(result.errors.empty());
  BOOST_TEST_REQUIRE(result.tree.has_value());
  return *result.tree;
}

std::vector<std::string> ids(const actors::supervisor_spec& s) {
  std::vector<std::string> out;
  for (const auto& c : s.children) out.push_back(c.id);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config_load)

BOOST_AUTO_TEST_CASE(every_key_of_a_full_file_reaches_the_specs) {
  const tree_config t = load_good("full.toml");
  const fs::path dir = fs::weakly_canonical(test_dir / "good");
  BOOST_TEST(t.file == (test_dir / "good" / "full.toml").lexically_normal());
  BOOST_TEST(t.settings.name == "full");
  BOOST_TEST(t.settings.log_dir == dir / "var/log");
  BOOST_TEST(t.settings.control_socket == dir / "run/full.sock");
  BOOST_TEST(t.settings.shutdown_timeout_ms == 30000);
  BOOST_TEST(t.settings.watchdog_ms == 10000);

  const actors::supervisor_spec spec = to_supervisor_spec(t);
  BOOST_TEST(!actors::check_supervisor_spec(spec));
  BOOST_TEST(spec.name == "full");
  const actors::supervisor_flags& f = spec.flags;
  BOOST_TEST((f.strategy == actors::restart_strategy::rest_for_one));
  BOOST_TEST(f.intensity == 7);
  BOOST_TEST(f.period_ms == 120000);
  BOOST_TEST(f.backoff.initial_ms == 250);
  BOOST_TEST(f.backoff.max_ms == 8000);
  BOOST_TEST(f.backoff.multiplier == 1.5);
  BOOST_TEST(f.backoff.jitter == 0.2);
  BOOST_TEST(f.backoff.reset_after_ms == 90000);
  BOOST_TEST(f.min_uptime_ms == 2000);
  BOOST_TEST(f.max_failed_starts == 4);
  BOOST_TEST(f.start_concurrency == 3);
  BOOST_TEST((f.shutdown == actors::auto_shutdown::any_significant));
  BOOST_TEST((f.report == actors::supervisor_report::all));
  BOOST_TEST(ids(spec) == (std::vector<std::string>{"api", "job.1", "job.2", "job.3"}), boost::test_tools::per_element());

  const actors::child_spec& api = spec.children[0];
  const actors::process_spec& p = api.process;
  BOOST_TEST(p.name == "api");
  BOOST_TEST(p.argv == (std::vector<std::string>{"sh", "-c", "exec sleep 1", "x y"}), boost::test_tools::per_element());
  BOOST_TEST(p.env == (std::vector<std::string>{"EMPTY=", "MODE=test"}), boost::test_tools::per_element());
  BOOST_TEST(p.clear_env);
  BOOST_TEST(p.cwd == dir.string());
  BOOST_TEST(p.stdout_path == "capture");
  BOOST_TEST(p.stderr_path == "capture");
  BOOST_TEST(p.stdin_path == "");  // stdin = "inherit"
  BOOST_TEST(p.notify_fd == 5);
  BOOST_TEST(!p.notify_socket);
  BOOST_TEST(p.ready_timeout_ms == 3000);
  BOOST_TEST(p.stop_signal == SIGINT);
  BOOST_TEST(p.stop_timeout_ms == -1);
  BOOST_TEST(!p.kill_group);
  BOOST_TEST((api.restart == actors::restart_type::transient));
  BOOST_TEST(api.shutdown_ms == -1);
  BOOST_TEST(api.significant);
  BOOST_TEST_REQUIRE(p.rlimits.size() == 3u);
  BOOST_TEST(p.rlimits[0].resource == RLIMIT_AS);
  BOOST_TEST(p.rlimits[0].soft == (1ull << 30));
  BOOST_TEST(p.rlimits[0].hard == (2ull << 30));
  BOOST_TEST(p.rlimits[1].resource == RLIMIT_CORE);
  BOOST_TEST(p.rlimits[1].soft == actors::rlimit_spec::unlimited);
  BOOST_TEST(p.rlimits[2].resource == RLIMIT_NOFILE);
  BOOST_TEST(p.rlimits[2].soft == 1024u);
  BOOST_TEST(p.rlimits[2].hard == 1024u);

  const program_config& api_cfg = *t.root.children[0].program;
  BOOST_TEST(api_cfg.where.line == 19u);
  BOOST_TEST(api_cfg.stdout_spec.path == dir / "var/log/api.out.log");
  BOOST_TEST(api_cfg.stderr_spec.path == dir / "var/log/api-errors.log");
  BOOST_TEST(api_cfg.stderr_spec.max_bytes == (2u << 20));
  BOOST_TEST(api_cfg.stderr_spec.keep == 3u);

  for (std::size_t i = 1; i <= 3; ++i) {
    const actors::child_spec& job = spec.children[i];
    BOOST_TEST(job.process.name == "job." + std::to_string(i));
    BOOST_TEST(job.process.argv == (std::vector<std::string>{"/bin/sh", "-c", "echo hello; exit 0"}),
               boost::test_tools::per_element());
    BOOST_TEST(job.process.stdout_path == "null");
    BOOST_TEST(job.process.stderr_path == "");
    BOOST_TEST(job.process.stdin_path == "null", "the default: /dev/null, as systemd's StandardInput=null");
    BOOST_TEST(job.process.stop_signal == 1);
    BOOST_TEST(job.process.stop_timeout_ms == 0);
    BOOST_TEST(job.shutdown_ms == 0);
    BOOST_TEST((job.restart == actors::restart_type::temporary));
    BOOST_TEST(job.process.notify_socket);
    BOOST_TEST(job.process.notify_fd == -1);
    BOOST_TEST(job.process.kill_group);
  }
}

BOOST_AUTO_TEST_CASE(groups_and_programs_keep_the_file_order_at_every_depth) {
  const tree_config t = load_good("nested.toml");
  const actors::supervisor_spec spec = to_supervisor_spec(t);
  BOOST_TEST(!actors::check_supervisor_spec(spec));
  BOOST_TEST(ids(spec) == (std::vector<std::string>{"first", "backend", "last"}), boost::test_tools::per_element());
  const actors::supervisor_spec& backend = spec.children[1].supervisor.at(0);
  BOOST_TEST(backend.name == "backend");
  BOOST_TEST((backend.flags.strategy == actors::restart_strategy::one_for_all));
  BOOST_TEST(ids(backend) == (std::vector<std::string>{"db", "workers", "cache"}), boost::test_tools::per_element());
  const actors::supervisor_spec& workers = backend.children[1].supervisor.at(0);
  BOOST_TEST(workers.flags.intensity == 2);
  BOOST_TEST(workers.flags.period_ms == 60000);
  BOOST_TEST(ids(workers) == (std::vector<std::string>{"w.1", "w.2"}), boost::test_tools::per_element());
  BOOST_TEST(spec.flags.backoff.initial_ms == 500);
  BOOST_TEST(spec.flags.backoff.max_ms == 30000);

  const auto refs = programs_of(t);
  BOOST_TEST_REQUIRE(refs.size() == 5u);
  std::vector<std::string> where;
  for (const auto& r : refs) {
    std::string path;
    for (const auto& g : r.groups) path += g + "/";
    where.push_back(path + r.program->name);
  }
  BOOST_TEST(where == (std::vector<std::string>{"first", "backend/db", "backend/workers/w", "backend/cache", "last"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(describe_draws_the_tree) {
  const std::string expected =
      "shop (one_for_one, intensity 3 in 10s, backoff 500ms..30s)\n"
      "├── first    [program] sleep 10   stop: SIGTERM 5s\n"
      "├── backend  (one_for_all, intensity 1 in 5s)\n"
      "│   ├── db       [program] sleep 10   ready: fd 3, stop: SIGTERM 5s\n"
      "│   ├── workers  (rest_for_one, intensity 2 in 1m)\n"
      "│   │   └── w  [program] sleep 10   instances 2, stop: SIGTERM 5s\n"
      "│   └── cache    [program] sleep 10   stop: SIGTERM 5s\n"
      "└── last     [program] sh -c 'exec sleep 10'   ready: notify, stop: SIGTERM 2s\n";
  BOOST_TEST(describe(load_good("nested.toml")) == expected);
}

BOOST_AUTO_TEST_CASE(the_default_tree_loads_and_is_the_demo_the_readme_promises) {
  auto result = load_string(default_tree_text(), "<built-in default>", fs::current_path());
  for (const auto& e : result.errors) BOOST_TEST_MESSAGE(e.to_string());
  BOOST_TEST_REQUIRE(result.errors.empty());
  const tree_config& t = *result.tree;
  const actors::supervisor_spec spec = to_supervisor_spec(t);
  BOOST_TEST(!actors::check_supervisor_spec(spec));
  BOOST_TEST(ids(spec) == (std::vector<std::string>{"api", "worker", "backend"}), boost::test_tools::per_element());
  BOOST_TEST(spec.children[0].process.notify_fd == 3);
  BOOST_TEST(spec.flags.backoff.initial_ms == 500);
  BOOST_TEST(spec.flags.intensity >= 10);
  const actors::supervisor_spec& backend = spec.children[2].supervisor.at(0);
  BOOST_TEST((backend.flags.strategy != actors::restart_strategy::one_for_one));
  BOOST_TEST(backend.children.size() == 2u);
  // Every program's output is inherited: a newcomer sees their lines.
  for (const auto& r : programs_of(t)) BOOST_TEST((r.program->stdout_spec.mode == output_spec::kind::inherit));
  const std::string drawing = describe(t);
  BOOST_TEST(drawing.starts_with("pkit (one_for_one, intensity 20 in 1m, backoff 500ms..5s, min uptime 1s)\n"
                                 "├── api      [program] sh -c 'echo \"api: starting (pid $$)\"; sleep 0.5; echo \"ap...   "
                                 "ready: fd 3, stop: SIGTERM 5s\n"),
             drawing);
}

// pkit check shows a program that shares pkit run's stdin (the exception), and says
// nothing of the default (/dev/null).
BOOST_AUTO_TEST_CASE(describe_names_a_program_that_inherits_stdin) {
  auto r = load_string("[[program]]\nname = \"quiet\"\ncommand = [\"/bin/cat\"]\n"
                       "[[program]]\nname = \"reader\"\ncommand = [\"/bin/cat\"]\nstdin = \"inherit\"\n",
                       "stdin.toml", fs::current_path());
  for (const auto& e : r.errors) BOOST_TEST_MESSAGE(e.to_string());
  BOOST_TEST_REQUIRE(r.errors.empty());
  const std::string text = describe(*r.tree);
  const auto reader = text.find("reader");
  BOOST_TEST_REQUIRE(reader != std::string::npos, text);
  BOOST_TEST(text.find("stdin: inherit", reader) != std::string::npos, text);
  BOOST_TEST(text.find("stdin") == text.find("stdin: inherit"), "only the reader names its stdin: " << text);
}

BOOST_AUTO_TEST_CASE(the_default_tree_is_default_toml_verbatim) {
  std::ifstream in(test_dir / "../../tools/pkit/default.toml");
  std::ostringstream text;
  text << in.rdbuf();
  BOOST_TEST(!text.str().empty());
  BOOST_TEST(text.str() == std::string(default_tree_text()));
}

BOOST_AUTO_TEST_CASE(a_relative_program_path_is_made_absolute_against_the_files_directory) {
  pkit_test_common::temp_dir dir;
  fs::create_directories(dir.path() / "bin");
  std::ofstream(dir.path() / "bin/run.sh") << "#!/bin/sh\n";
  fs::permissions(dir.path() / "bin/run.sh", fs::perms::owner_all);
  const auto result = load_string("[[program]]\nname = \"p\"\ncommand = [\"./bin/run.sh\", \"a\"]\n", "t.toml", dir.path());
  BOOST_TEST_REQUIRE(result.errors.empty());
  BOOST_TEST(result.tree->root.children[0].program->argv[0] == (dir.path() / "bin/run.sh").string());
}

BOOST_AUTO_TEST_CASE(a_relative_program_path_follows_the_programs_cwd) {
  pkit_test_common::temp_dir dir;
  fs::create_directories(dir.path() / "app");
  std::ofstream(dir.path() / "app/run.sh") << "#!/bin/sh\n";
  fs::permissions(dir.path() / "app/run.sh", fs::perms::owner_all);
  const auto ok = load_string("[[program]]\nname = \"p\"\ncwd = \"app\"\ncommand = [\"./run.sh\"]\n", "t.toml", dir.path());
  BOOST_TEST_REQUIRE(ok.errors.empty());
  BOOST_TEST(ok.tree->root.children[0].program->argv[0] == (dir.path() / "app/run.sh").string());
  BOOST_TEST(ok.tree->root.children[0].program->cwd == (dir.path() / "app").string());
  const auto missing = load_string("[[program]]\nname = \"p\"\ncommand = [\"./run.sh\"]\n", "t.toml", dir.path());
  BOOST_TEST_REQUIRE(missing.errors.size() == 1u);
  BOOST_TEST(missing.errors[0].to_string().starts_with("t.toml:3:12: program[0].command[0]: cannot run the program: '" +
                                                       (dir.path() / "run.sh").string() + "'"),
             missing.errors[0].to_string());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(nodes_are_declared_placed_by_group_or_program_and_change_the_root_on_reload) {
  // A program placed on nodes is checked by its node, not here: a command and cwd that do
  // not exist on this machine, and a user unknown here, are fine.
  const std::string text = R"([pkit]
tls = { cert = "certs/c.pem", key = "certs/c.key", ca = "certs/node-ca.pem" }
heartbeat = "200ms"
node_timeout = "1s"
[nodes.edge1]
address = "10.0.0.5:7100"
[nodes.edge2]
address = "[::1]:7101"
[[program]]
name = "here"
command = ["/bin/true"]
[[group]]
name = "far"
nodes = ["edge1", "edge2"]
[[group.program]]
name = "web"
command = ["/opt/nowhere/web"]
cwd = "/srv/nowhere"
user = "no-such-user-here"
[[group.program]]
name = "pinned"
node = "edge2"
command = ["/opt/nowhere/pinned"]
)";
  const auto r = load_string(text, "t.toml", "/etc");
  for (const auto& e : r.errors) BOOST_TEST_MESSAGE(e.to_string());
  BOOST_TEST_REQUIRE(r.errors.empty());
  const tree_config& t = *r.tree;
  BOOST_TEST_REQUIRE(t.nodes.size() == 2u);
  BOOST_TEST(t.nodes[0].name == "edge1");
  BOOST_TEST(t.nodes[0].host == "10.0.0.5");
  BOOST_TEST(t.nodes[0].port == 7100);
  BOOST_TEST(t.nodes[1].host == "::1");
  BOOST_TEST_REQUIRE(t.settings.tls.has_value());
  BOOST_TEST(t.settings.tls->ca == fs::path("/etc/certs/node-ca.pem"));
  BOOST_TEST(t.settings.heartbeat_ms == 200);
  BOOST_TEST(t.settings.node_timeout_ms == 1000);
  const auto progs = programs_of(t);
  BOOST_TEST_REQUIRE(progs.size() == 3u);
  BOOST_TEST(progs[0].program->nodes.empty());
  BOOST_TEST((progs[1].program->nodes == std::vector<std::string>{"edge1", "edge2"}));
  BOOST_TEST(progs[1].program->cwd == "/srv/nowhere");
  BOOST_TEST((progs[2].program->nodes == std::vector<std::string>{"edge2"}));
  BOOST_TEST(t.root.nodes.empty());
  BOOST_TEST((t.root.children[1].group.front().nodes == std::vector<std::string>{"edge1", "edge2"}));

  // Moving a node is a change of the root (its links are made at start); moving a program
  // to another node changes that program only.
  std::string moved = text;
  moved.replace(moved.find("10.0.0.5"), 8, "10.0.0.6");
  auto plan = diff(t, *load_string(moved, "t.toml", "/etc").tree);
  BOOST_TEST(plan.root_changed);
  std::string replaced = text;
  replaced.replace(replaced.find("node = \"edge2\""), 14, "node = \"edge1\"");
  plan = diff(t, *load_string(replaced, "t.toml", "/etc").tree);
  BOOST_TEST(!plan.root_changed);
  BOOST_TEST_REQUIRE(plan.changed.size() == 1u);
  BOOST_TEST(plan.changed[0].name == "pinned");
}

// `ctl add --group far` loads its snippet with the group's placement: what does not name
// its nodes runs where the group's programs run (it ran here: a program added to a group
// on nodes started on pkit run's machine).
BOOST_AUTO_TEST_CASE(a_snippet_loaded_into_a_placed_group_inherits_its_nodes) {
  const std::string snippet = R"([[program]]
name = "web2"
command = ["/opt/nowhere/web"]
[[program]]
name = "pinned2"
node = "b"
command = ["/opt/nowhere/pinned"]
[[group]]
name = "inner"
[[group.program]]
name = "deep"
command = ["/opt/nowhere/deep"]

[nodes.a]
address = "127.0.0.1:7100"
[nodes.b]
address = "127.0.0.1:7101"
)";
  const auto r = load_string(snippet, "<ctl add>", "/", {"a", "b"});
  for (const auto& e : r.errors) BOOST_TEST_MESSAGE(e.to_string());
  BOOST_TEST_REQUIRE(r.errors.empty());
  const auto progs = programs_of(*r.tree);
  BOOST_TEST_REQUIRE(progs.size() == 3u);
  BOOST_TEST((progs[0].program->nodes == std::vector<std::string>{"a", "b"}));
  BOOST_TEST((progs[1].program->nodes == std::vector<std::string>{"b"}));
  BOOST_TEST((progs[2].program->nodes == std::vector<std::string>{"a", "b"}), "a nested group inherits too");
  // Without a placement the same programs run here, so their commands must exist here.
  BOOST_TEST(!load_string(snippet, "<ctl add>", "/"));
}

BOOST_AUTO_TEST_CASE(describe_names_the_nodes_and_where_programs_run) {
  const auto r = load_string("[nodes.a]\naddress = \"127.0.0.1:7100\"\n[[program]]\nname = \"p\"\nnodes = [\"a\"]\n"
                             "command = [\"/bin/sleep\", \"1\"]\n",
                             "t.toml", "/");
  BOOST_TEST_REQUIRE(r.errors.empty());
  const std::string text = describe(*r.tree);
  BOOST_TEST(text.find("node a at 127.0.0.1:7100\n") != std::string::npos, text);
  BOOST_TEST(text.find("on a,") != std::string::npos, text);
  BOOST_TEST(text.find("remote control") == std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(describe_shows_the_remote_control_listener_and_whom_it_trusts) {
  const auto r = load_string("[pkit]\ncontrol_listen = \"127.0.0.1:0\"\ncontrol_tls = { cert = \"c.pem\", key = "
                             "\"c.key\", ca = \"controllers.pem\" }\n[[program]]\nname = \"p\"\n"
                             "command = [\"/bin/sleep\", \"1\"]\n",
                             "t.toml", "/etc/pkit");
  for (const auto& e : r.errors) BOOST_TEST_MESSAGE(e.to_string());
  BOOST_TEST_REQUIRE(r.errors.empty());
  const std::string text = describe(*r.tree);
  BOOST_TEST(text.find("remote control at 127.0.0.1:any free port (TLS: controllers of /etc/pkit/controllers.pem)\n") !=
                 std::string::npos,
             text);
}
