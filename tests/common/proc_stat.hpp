#pragma once

// What /proc/PID/stat says about a process: shared by every test suite that checks pids
// (zombies, process groups, processes that must be gone).

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <sys/types.h>

namespace pkit_test_proc {

struct proc_stat {
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
};

/// Fields of /proc/PID/stat; nullopt when the process does not exist (any more).
inline std::optional<proc_stat> read_proc_stat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  if (!f) return std::nullopt;
  std::string s;
  std::getline(f, s);
  // The command name may contain spaces and parentheses: the fields start after the last ')'.
  const auto rp = s.rfind(')');
  if (rp == std::string::npos || rp + 2 > s.size()) return std::nullopt;
  std::istringstream is(s.substr(rp + 2));
  proc_stat st;
  if (!(is >> st.state >> st.ppid >> st.pgrp)) return std::nullopt;
  return st;
}

inline bool proc_exists(pid_t pid) { return read_proc_stat(pid).has_value(); }

inline bool is_zombie(pid_t pid) {
  const auto st = read_proc_stat(pid);
  return st && st->state == 'Z';
}

/// Exists and has not terminated (neither zombie nor dead).
inline bool is_running(pid_t pid) {
  const auto st = read_proc_stat(pid);
  return st && st->state != 'Z' && st->state != 'X' && st->state != 'x';
}

}  // namespace pkit_test_proc
