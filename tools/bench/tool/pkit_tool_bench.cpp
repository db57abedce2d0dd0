// pkit_tool_bench: the `pkit` command against the supervisors users compare it with, side
// by side in one run, on the same machine, with the same probes (see README.md):
//
//   (a) restart after SIGKILL: a supervised `sleep` is SIGKILLed; the time until the new
//       `sleep` exists, seen the same way for every supervisor (the supervisor's
//       /proc/PID/task/*/children). pkit run vs runit's runsv vs supervisord.
//   (b) `pkit ctl status` of a 1,000-program tree, end to end (exec of the client
//       included); supervisorctl status of the same 1,000 programs beside it.
//   (c) memory: the RSS of `pkit run` with 100 programs; supervisord's with the same 100.
//   (d) reload of a 1,000-program file with one change: `pkit ctl reload` end to end, and
//       exactly one program touched (every other pid unchanged).
//
//   (e) programs on nodes (issue 11, nodes_section.cpp): remote start vs local start,
//       failover after a node is SIGSTOPped, status of 1,000 programs over 3 nodes.
//
// runsv and supervisord are optional (Debian: runit, supervisor): their rows are skipped
// when missing. `--quick` (CI) runs a few iterations of everything to keep the code alive.

#include "tool_bench_support.hpp"

#include <pkit/communicate.hpp>
#include <pkit/process.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace tool_bench;
using bench::fail;
using bench::now_ns;

namespace {

// -- (a) restart after SIGKILL -------------------------------------------------------------

// One supervisor's restart probe: kill its sleep, time until the new sleep exists.
struct restart_probe {
  std::string label;
  pid_t supervisor;
  pid_t current = 0;
  std::vector<double> samples;
  bool once() {
    if (current == 0) current = await_child(supervisor, "sleep", 0, 10000);
    if (current == 0) return false;
    const auto t0 = now_ns();
    ::kill(current, SIGKILL);
    pid_t next = await_child(supervisor, "sleep", current, 10000);
    if (next == 0) return false;
    samples.push_back(bench::us_since(t0));
    current = next;
    return true;
  }
};

void section_restart(const fs::path& work) {
  std::printf("(a) restart after SIGKILL ...\n");
  std::fflush(stdout);
  const fs::path dir = work / "restart";
  fs::create_directories(dir / "runsv-service");
  write(dir / "pkit.toml", pkit_tree(dir, 1));
  std::vector<std::unique_ptr<background>> running;
  std::vector<restart_probe> probes;
  running.push_back(std::make_unique<background>(
      std::vector<std::string>{pkit_binary(), "run", (dir / "pkit.toml").string()}, dir / "pkit.log"));
  probes.push_back({"pkit run", running.back()->pid(), 0, {}});
  if (which("runsv")) {
    write(dir / "runsv-service" / "run", "#!/bin/sh\nexec sleep 3600\n");
    fs::permissions(dir / "runsv-service" / "run", fs::perms::owner_all);
    running.push_back(std::make_unique<background>(
        std::vector<std::string>{"runsv", (dir / "runsv-service").string()}, dir / "runsv.log"));
    probes.push_back({"runit runsv", running.back()->pid(), 0, {}});
  } else {
    std::printf("  runsv not installed (Debian: runit): skipped\n");
  }
  if (which("supervisord")) {
    write(dir / "supervisord.conf", supervisord_conf(dir, 1));
    running.push_back(std::make_unique<background>(
        std::vector<std::string>{"supervisord", "-c", (dir / "supervisord.conf").string()}, dir / "sd.log"));
    probes.push_back({"supervisord", running.back()->pid(), 0, {}});
  } else {
    std::printf("  supervisord not installed (Debian: supervisor): skipped\n");
  }
  const int rounds = quick ? 2 : 10;
  for (int r = 0; r < rounds; ++r) {
    for (auto& p : probes)
      if (!p.once()) fail(p.label + ": its sleep was not restarted within 10 s");
    // runsv waits 1 s before restarting a service that ran less than 1 s: every
    // supervisor gets the same pause, so the probe never measures that rule.
    std::this_thread::sleep_for(1100ms);
  }
  std::vector<row> rows;
  for (auto& p : probes) rows.push_back({p.label, bench::summarize(p.samples), "µs"});
  print_rows("(a) restart after SIGKILL: the supervised sleep killed → the new sleep exists", rows);
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const double ratio = rows[0].s.median / rows[i].s.median;
    std::printf("  pkit run / %s: %.2f×\n", rows[i].what.c_str(), ratio);
    checks.push_back({"(a) restart: pkit run / " + rows[i].what, fmt("%.2f×", ratio), "≤ 1.00×", ratio <= 1.0});
  }
}

// -- (b), (d): 1,000 programs ----------------------------------------------------------------

void section_thousand(const fs::path& work) {
  const int n = quick ? 100 : 1000;
  std::printf("\n(b)/(d) a tree of %d programs ...\n", n);
  std::fflush(stdout);
  const fs::path dir = work / "thousand";
  fs::create_directories(dir);
  write(dir / "pkit.toml", pkit_tree(dir, n));
  const fs::path sock = dir / "pkit.sock";
  std::vector<row> rows;
  {
    background pkit_run({pkit_binary(), "run", (dir / "pkit.toml").string()}, dir / "pkit.log");
    if (!await_pkit_tree(sock, static_cast<std::size_t>(n), 60000)) fail("pkit run: the tree did not come up");
    std::vector<double> status_ms, status_json_ms;
    for (int i = 0; i < (quick ? 3 : 20); ++i) {
      auto t0 = now_ns();
      if (run({pkit_binary(), "ctl", "--socket", sock.string(), "status"}).code != 0) fail("pkit ctl status failed");
      status_ms.push_back(bench::ms_since(t0));
      t0 = now_ns();
      if (run({pkit_binary(), "ctl", "--socket", sock.string(), "status", "--json"}).code != 0)
        fail("pkit ctl status --json failed");
      status_json_ms.push_back(bench::ms_since(t0));
    }
    rows.push_back({"pkit ctl status (table)", bench::summarize(status_ms), "ms"});
    rows.push_back({"pkit ctl status --json", bench::summarize(status_json_ms), "ms"});
    checks.push_back({"(b) pkit ctl status, " + std::to_string(n) + " programs", fmt("%.1f ms", rows[0].s.median),
                      "< 50 ms", rows[0].s.median < 50});

    // (d) reload with one change, several times (the change toggles back and forth).
    std::vector<double> reload_ms;
    int touched_wrong = 0;
    for (int i = 0; i < (quick ? 2 : 6); ++i) {
      const auto before = pids_of(pkit_status(sock));
      write(dir / "pkit.toml", pkit_tree(dir, n, i % 2 == 0 ? "p7" : ""));
      const auto t0 = now_ns();
      auto r = run({pkit_binary(), "ctl", "--socket", sock.string(), "reload"});
      const double ms = bench::ms_since(t0);
      if (r.code != 0) fail("pkit ctl reload failed: " + r.out + r.err);
      reload_ms.push_back(ms);
      if (!await_pkit_tree(sock, static_cast<std::size_t>(n), 10000)) fail("the tree did not settle after reload");
      const auto after = pids_of(pkit_status(sock));
      int changed = 0;
      for (const auto& [name, pid] : before)
        if (after.count(name) == 0 || after.at(name) != pid) ++changed;
      if (changed != 1) ++touched_wrong;
    }
    rows.push_back({"pkit ctl reload, one program changed", bench::summarize(reload_ms), "ms"});
    const auto rs = bench::summarize(reload_ms);
    checks.push_back({"(d) reload of " + std::to_string(n) + " programs, one change", fmt("%.1f ms", rs.median),
                      "< 100 ms", rs.median < 100});
    checks.push_back({"(d) programs touched by that reload", touched_wrong == 0 ? "exactly 1" : "other than 1",
                      "exactly 1", touched_wrong == 0});
  }
  if (which("supervisord") && which("supervisorctl") && !quick) {
    write(dir / "supervisord.conf", supervisord_conf(dir, n));
    background sd({"supervisord", "-c", (dir / "supervisord.conf").string()}, dir / "sd.log");
    if (await_supervisord(dir / "supervisord.conf", n, 120000)) {
      std::vector<double> ms;
      for (int i = 0; i < 5; ++i) {
        const auto t0 = now_ns();
        run({"supervisorctl", "-c", (dir / "supervisord.conf").string(), "status"});
        ms.push_back(bench::ms_since(t0));
      }
      rows.push_back({"supervisorctl status (reference)", bench::summarize(ms), "ms"});
    } else {
      std::printf("  supervisord did not start %d programs within 120 s: its row is skipped\n", n);
    }
  }
  print_rows("(b) status of the whole tree, end to end (client exec included); (d) reload", rows);
}

// -- (c) memory ------------------------------------------------------------------------------

void section_memory(const fs::path& work) {
  const int n = 100;
  std::printf("\n(c) memory with %d programs ...\n", n);
  std::fflush(stdout);
  const fs::path dir = work / "memory";
  fs::create_directories(dir);
  write(dir / "pkit.toml", pkit_tree(dir, n));
  long pkit_kb = 0, sd_kb = 0;
  {
    background pkit_run({pkit_binary(), "run", (dir / "pkit.toml").string()}, dir / "pkit.log");
    if (!await_pkit_tree(dir / "pkit.sock", n, 60000)) fail("pkit run: the tree did not come up");
    pkit_kb = rss_kb(pkit_run.pid());
    long helpers_kb = 0;  // the guardian and any other process of pkit's own (not `sleep`)
    for (pid_t c : children_of(pkit_run.pid()))
      if (comm_of(c) != "sleep") helpers_kb += rss_kb(c);
    std::printf("  pkit run: %ld KB RSS (+ %ld KB for its own helper processes), executable %s\n", pkit_kb, helpers_kb,
                comm_of(pkit_run.pid()).c_str());
    // Where it is (the executable and each library cost roughly the code they touch).
    std::string where;
    for (const auto& [kb, name] : rss_by_mapping(pkit_run.pid()))
      if (kb >= 64) where += (where.empty() ? "" : ", ") + name + " " + std::to_string(kb);
    std::printf("    by mapping (KB): %s\n", where.c_str());
    checks.push_back({"(c) pkit run RSS, 100 programs", fmt("%.1f MB", static_cast<double>(pkit_kb) / 1024),
                      "< 10 MB", pkit_kb < 10 * 1024});
  }
  if (which("supervisord") && !quick) {
    write(dir / "supervisord.conf", supervisord_conf(dir, n));
    background sd({"supervisord", "-c", (dir / "supervisord.conf").string()}, dir / "sd.log");
    if (await_supervisord(dir / "supervisord.conf", n, 60000)) {
      sd_kb = rss_kb(sd.pid());
      std::printf("  supervisord: %ld KB RSS (reference)\n", sd_kb);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> sections;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--sections" && i + 1 < argc) {
      for (char c : std::string(argv[++i])) sections.emplace_back(1, c);
    } else {
      std::fprintf(stderr, "usage: pkit_tool_bench [--quick] [--sections abcde]\n");
      return 2;
    }
  }
  auto want = [&](const char* s) {
    return sections.empty() || std::find(sections.begin(), sections.end(), s) != sections.end();
  };
  char tmpl[] = "/tmp/pkit-tool-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) bench::fail_errno("mkdtemp");
  const fs::path work = tmpl;
  int rc = 0;
  try {
    std::printf("pkit_tool_bench (%s)%s: pkit = %s\n", PKIT_TOOL_BENCH_BUILD_TYPE, quick ? " --quick" : "",
                pkit_binary().c_str());
    if (want("a")) section_restart(work);
    if (want("b") || want("d")) section_thousand(work);
    if (want("c")) section_memory(work);
    if (want("e")) section_nodes(work);
    std::printf("\ntargets:\n");
    for (const auto& c : checks)
      std::printf("  %-4s %-48s %-12s (target %s)\n", c.pass ? "PASS" : "MISS", c.what.c_str(), c.value.c_str(),
                  c.target.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pkit_tool_bench: %s (work dir %s kept)\n", e.what(), work.c_str());
    return 1;
  }
  std::error_code ec;
  fs::remove_all(work, ec);
  return rc;
}
