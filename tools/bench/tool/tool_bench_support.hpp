#pragma once

// What the `pkit` command's benchmark sections share (pkit_tool_bench.cpp and
// nodes_section.cpp): /proc readers, running programs in the background or to their end,
// the trees, pkit's status, and the report. Header-only; one program includes it.

#include "../bench_harness.hpp"

#include <pkit/communicate.hpp>
#include <pkit/process.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace tool_bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using bench::fail;
using bench::now_ns;

inline bool quick = false;

// -- /proc ---------------------------------------------------------------------------------

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every child of `pid` (all its threads: pkit run creates children on several threads).
inline std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::istringstream in(read_file(t.path() / "children"));
    for (pid_t c; in >> c;) out.push_back(c);
  }
  return out;
}

inline std::string comm_of(pid_t pid) {
  std::string c = read_file("/proc/" + std::to_string(pid) + "/comm");
  while (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

// The child of `parent` named `comm` other than `old`, polled until `deadline_ms`.
inline pid_t await_child(pid_t parent, const std::string& comm, pid_t old, double deadline_ms) {
  const auto t0 = now_ns();
  for (;;) {
    for (pid_t c : children_of(parent))
      if (c != old && comm_of(c) == comm) return c;
    if (bench::ms_since(t0) > deadline_ms) return 0;
    std::this_thread::yield();
  }
}

inline long rss_kb(pid_t pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// Resident KB of `pid` per mapping (file name, "[heap]", "[anon]", ...) from
// /proc/PID/smaps, largest first: where the RSS is.
inline std::vector<std::pair<long, std::string>> rss_by_mapping(pid_t pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/smaps"));
  std::map<std::string, long> kb;
  std::string name;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Rss:", 0) == 0) {
      kb[name] += std::atol(line.c_str() + 4);
    } else if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < line.find(' ')) {
      std::istringstream fields(line);
      std::string f;
      for (int i = 0; i < 6 && fields >> f; ++i) {
      }
      const bool named = !fields.fail() && !f.empty() && (f.front() == '/' || f.front() == '[');
      name = named ? f : "[anon]";
      name = name.substr(name.rfind('/') + 1);
    }
  }
  std::vector<std::pair<long, std::string>> out;
  for (const auto& [n, k] : kb) out.emplace_back(k, n);
  std::sort(out.rbegin(), out.rend());
  return out;
}

inline std::optional<std::string> which(const std::string& prog) {
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

inline ran run(std::vector<std::string> argv) {
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

inline std::string pkit_binary() {
  if (const char* p = std::getenv("PKIT_BINARY")) return p;
  return PKIT_TOOL_BENCH_PKIT;
}

// -- the trees -----------------------------------------------------------------------------

inline std::string pkit_tree(const fs::path& dir, int programs, const std::string& changed = {}) {
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

inline std::string supervisord_conf(const fs::path& dir, int programs) {
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

inline void write(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

inline nlohmann::json pkit_status(const fs::path& sock) {
  auto r = run({pkit_binary(), "ctl", "--socket", sock.string(), "status", "--json"});
  if (r.code != 0 && r.code != 3) return nullptr;
  try {
    return nlohmann::json::parse(r.out);
  } catch (...) {
    return nullptr;
  }
}

inline std::map<std::string, int> pids_of(const nlohmann::json& status) {
  std::map<std::string, int> out;
  if (!status.is_object() || !status.contains("programs")) return out;
  for (const auto& p : status["programs"])
    if (p.value("state", "") == "running") out[p.value("name", "")] = p.value("pid", 0);
  return out;
}

// Waits until `n` programs run under the pkit run listening at `sock`.
inline bool await_pkit_tree(const fs::path& sock, std::size_t n, double deadline_ms) {
  const auto t0 = now_ns();
  while (bench::ms_since(t0) < deadline_ms) {
    if (pids_of(pkit_status(sock)).size() == n) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

inline bool await_supervisord(const fs::path& conf, int n, double deadline_ms) {
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

inline void print_rows(const std::string& title, const std::vector<row>& rows) {
  std::printf("\n%s\n", title.c_str());
  for (const auto& r : rows)
    std::printf("  %-46s median %10.1f %s   p10 %10.1f   p90 %10.1f   (n=%zu)\n", r.what.c_str(), r.s.median,
                r.unit.c_str(), r.s.p10, r.s.p90, r.s.n);
}

struct check {
  std::string what, value, target;
  bool pass;
};
inline std::vector<check> checks;

inline std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

/// (e) issue 11: programs on nodes (nodes_section.cpp).
void section_nodes(const fs::path& work);

}  // namespace tool_bench
