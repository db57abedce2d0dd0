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
// runsv and supervisord are optional (Debian: runit, supervisor): their rows are skipped
// when missing. `--quick` (CI) runs a few iterations of everything to keep the code alive.

#include "../bench_harness.hpp"

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
using bench::fail;
using bench::now_ns;

namespace {

bool quick = false;

// -- /proc ---------------------------------------------------------------------------------

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every child of `pid` (all its threads: pkit run creates children on several threads).
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::istringstream in(read_file(t.path() / "children"));
    for (pid_t c; in >> c;) out.push_back(c);
  }
  return out;
}

std::string comm_of(pid_t pid) {
  std::string c = read_file("/proc/" + std::to_string(pid) + "/comm");
  while (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

// The child of `parent` named `comm` other than `old`, polled until `deadline_ms`.
pid_t await_child(pid_t parent, const std::string& comm, pid_t old, double deadline_ms) {
  const auto t0 = now_ns();
  for (;;) {
    for (pid_t c : children_of(parent))
      if (c != old && comm_of(c) == comm) return c;
    if (bench::ms_since(t0) > deadline_ms) return 0;
    std::this_thread::yield();
  }
}

long rss_kb(pid_t pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

std::optional<std::string> which(const std::string& prog) {
  const char* path = std::getenv("PATH");
  std::istringstream in(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(in, dir, ':');) {
    fs::path p = fs::path(dir) / prog;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return std::nullopt;
}

// -- running things ------------------------------------------------------------------------

// A supervisor under test, in the background, its output to a log file; stopped (group
// SIGTERM, then SIGKILL) by the destructor.
struct background {
  std::unique_ptr<pkit::process> proc;
  background(std::vector<std::string> argv, const fs::path& log, std::vector<std::string> env = {}) {
    pkit::command cmd{std::move(argv)};
    cmd.env = std::move(env);
    pkit::process_options o;
    o.out = pkit::stdio::file(log.string(), true);
    o.err = pkit::stdio::file(log.string(), true);
    o.stop = pkit::stop_policy{SIGTERM, std::chrono::milliseconds(20000), true};
    proc = std::make_unique<pkit::process>(std::move(cmd), std::move(o));
    proc->start();
  }
  pid_t pid() const { return proc->pid().value_or(0); }
  ~background() {
    try {
      proc->stop();
    } catch (...) {
      // Already gone, or not stoppable: the process object's destructor tries again.
    }
  }
};

struct ran {
  int code = -1;
  std::string out, err;
};

ran run(std::vector<std::string> argv) {
  pkit::process_options o;
  o.out = pkit::stdio::pipe();
  o.err = pkit::stdio::pipe();
  pkit::process p{pkit::command{std::move(argv)}, std::move(o)};
  p.start();
  auto r = pkit::communicate(p, {.input = {}, .timeout = std::chrono::milliseconds(60000), .max_output = {}});
  ran out;
  out.out = std::move(r.out);
  out.err = std::move(r.err);
  out.code = r.status && !r.status->is_killed() ? r.status->code() : -1;
  return out;
}

std::string pkit_binary() {
  if (const char* p = std::getenv("PKIT_BINARY")) return p;
  return PKIT_TOOL_BENCH_PKIT;
}

// -- the trees -----------------------------------------------------------------------------

std::string pkit_tree(const fs::path& dir, int programs, const std::string& changed = {}) {
  std::ostringstream t;
  t << "intensity = 1000000\nperiod = \"1s\"\nstart_concurrency = " << programs << "\n\n"
    << "[pkit]\nname = \"bench\"\ncontrol_socket = \"" << (dir / "pkit.sock").string() << "\"\n\n";
  for (int i = 0; i < programs; ++i) {
    const std::string name = "p" + std::to_string(i);
    t << "[[program]]\nname = \"" << name << "\"\ncommand = [\"sleep\", \""
      << (name == changed ? "3601" : "3600") << "\"]\nstop_timeout = \"2s\"\n\n";
  }
  return t.str();
}

std::string supervisord_conf(const fs::path& dir, int programs) {
  std::ostringstream c;
  c << "[supervisord]\nnodaemon=true\nlogfile=" << (dir / "supervisord.log").string()
    << "\npidfile=" << (dir / "supervisord.pid").string() << "\nchildlogdir=" << dir.string()
    << "\n\n[unix_http_server]\nfile=" << (dir / "supervisor.sock").string()
    << "\n\n[rpcinterface:supervisor]\n"
       "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
       "[supervisorctl]\nserverurl=unix://"
    << (dir / "supervisor.sock").string()
    << "\n\n[program:p]\ncommand=sleep 3600\nprocess_name=%(program_name)s_%(process_num)d\nnumprocs="
    << programs << "\nautorestart=true\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n";
  return c.str();
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

nlohmann::json pkit_status(const fs::path& sock) {
  auto r = run({pkit_binary(), "ctl", "--socket", sock.string(), "status", "--json"});
  if (r.code != 0 && r.code != 3) return nullptr;
  try {
    return nlohmann::json::parse(r.out);
  } catch (...) {
    return nullptr;
  }
}

std::map<std::string, int> pids_of(const nlohmann::json& status) {
  std::map<std::string, int> out;
  if (!status.is_object() || !status.contains("programs")) return out;
  for (const auto& p : status["programs"])
    if (p.value("state", "") == "running") out[p.value("name", "")] = p.value("pid", 0);
  return out;
}

// Waits until `n` programs run under the pkit run listening at `sock`.
bool await_pkit_tree(const fs::path& sock, std::size_t n, double deadline_ms) {
  const auto t0 = now_ns();
  while (bench::ms_since(t0) < deadline_ms) {
    if (pids_of(pkit_status(sock)).size() == n) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

bool await_supervisord(const fs::path& conf, int n, double deadline_ms) {
  const auto t0 = now_ns();
  while (bench::ms_since(t0) < deadline_ms) {
    auto r = run({"supervisorctl", "-c", conf.string(), "status"});
    int running = 0;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
      if (line.find("RUNNING") != std::string::npos) ++running;
    if (running == n) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// -- report --------------------------------------------------------------------------------

struct row {
  std::string what;
  bench::stats s;
  std::string unit;
};

void print_rows(const std::string& title, const std::vector<row>& rows) {
  std::printf("\n%s\n", title.c_str());
  for (const auto& r : rows)
    std::printf("  %-46s median %10.1f %s   p10 %10.1f   p90 %10.1f   (n=%zu)\n", r.what.c_str(), r.s.median,
                r.unit.c_str(), r.s.p10, r.s.p90, r.s.n);
}

struct check {
  std::string what, value, target;
  bool pass;
};
std::vector<check> checks;

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

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
    std::printf("  pkit run: %ld KB RSS (+ %ld KB for its own helper processes)\n", pkit_kb, helpers_kb);
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
      std::fprintf(stderr, "usage: pkit_tool_bench [--quick] [--sections abcd]\n");
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
