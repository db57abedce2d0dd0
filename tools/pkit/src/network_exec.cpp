#include <pkit/tool/network_exec.hpp>
#include <pkit/tool/version.hpp>

#include <toml++/toml.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <system_error>

#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pkit::tool {

namespace {
// Set by pkit for the pkit-net it runs: its own version.
constexpr const char* caller_version_variable = "PKIT_NET_CALLER_VERSION";
}  // namespace

std::string network_key_of(const std::filesystem::path& file) {
  // Only what the full load would read: a regular file of at most 4 MiB (a FIFO or a
  // runaway file is refused there, with its own message; it must not hang this peek).
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec) || std::filesystem::file_size(file, ec) > (4u << 20) || ec)
    return "";
  toml::table t;
  try {
    t = toml::parse_file(file.string());
  } catch (const std::exception&) {
    return "";  // the load in this process reports it (as `pkit-net` would)
  }
  if (t.contains("nodes")) return "[nodes]";
  if (const toml::table* p = t["pkit"].as_table())
    for (const char* key : {"control_listen", "control_tls", "tls"})
      if (p->contains(key)) return std::string("[pkit] ") + key;
  return "";
}

std::vector<std::filesystem::path> pkit_net_candidates() {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  auto add = [&out](const std::filesystem::path& p) {
    for (const auto& known : out)
      if (known == p) return;
    out.push_back(p);
  };
  if (!ec) add(self.parent_path() / "pkit-net");
#ifdef PKIT_NET_RELATIVE
  if (!ec) add((self.parent_path() / PKIT_NET_RELATIVE).lexically_normal());
#endif
#ifdef PKIT_NET_INSTALLED
  add(PKIT_NET_INSTALLED);
#endif
  return out;
}

int exec_pkit_net(char** argv, const std::string& feature) {
  struct stat self {};
  const bool know_self = ::stat("/proc/self/exe", &self) == 0;
  std::string looked;
  for (const auto& path : pkit_net_candidates()) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      looked += (looked.empty() ? "" : ", ") + path.string();
      continue;
    }
    if (know_self && st.st_dev == self.st_dev && st.st_ino == self.st_ino) {
      // A pkit-net that is this pkit (a link, a copy made by hand) would exec itself for ever.
      std::fprintf(stderr, "pkit: %s needs pkit-net (pkit's network module), but %s is this pkit itself\n",
                   feature.c_str(), path.c_str());
      return 1;
    }
    // The pkit-net of another version would read this argv its own way: it refuses to
    // run when this differs from its version (pkit_net_caller_check).
    ::setenv(caller_version_variable, std::string(version()).c_str(), 1);
    ::execv(path.c_str(), argv);
    std::fprintf(stderr, "pkit: %s needs pkit-net (pkit's network module): cannot run %s: %s\n", feature.c_str(),
                 path.c_str(), std::strerror(errno));
    return 1;
  }
  std::fprintf(stderr, "pkit: %s needs pkit-net (pkit's network module), which is not installed: looked at %s\n",
               feature.c_str(), looked.empty() ? "nothing (no /proc/self/exe)" : looked.c_str());
  return 1;
}

int pkit_net_caller_check() {
  const char* caller = std::getenv(caller_version_variable);
  if (caller == nullptr) return 0;  // run directly (tests, a user who knows it)
  const std::string wanted = caller;
  ::unsetenv(caller_version_variable);  // not for the programs of the tree
  if (wanted != version()) {
    std::fprintf(stderr,
                 "pkit-net: this is version %.*s, the pkit that ran it is %s: install pkit and pkit-net together\n",
                 static_cast<int>(version().size()), version().data(), wanted.c_str());
    return 1;
  }
  // Run for `pkit`: named so in ps, pgrep -x and killall (exe still says pkit-net).
  ::prctl(PR_SET_NAME, "pkit", 0, 0, 0);
  return 0;
}

}  // namespace pkit::tool
