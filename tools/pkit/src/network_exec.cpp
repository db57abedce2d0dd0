#include <pkit/tool/network_exec.hpp>

#include <toml++/toml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include <unistd.h>

namespace pkit::tool {

std::string network_key_of(const std::filesystem::path& file) {
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
  std::string looked;
  for (const auto& path : pkit_net_candidates()) {
    if (::access(path.c_str(), X_OK) == 0) {
      ::execv(path.c_str(), argv);
      std::fprintf(stderr, "pkit: %s needs pkit-net (pkit's network module): cannot run %s: %s\n", feature.c_str(),
                   path.c_str(), std::strerror(errno));
      return 1;
    }
    looked += (looked.empty() ? "" : ", ") + path.string();
  }
  std::fprintf(stderr, "pkit: %s needs pkit-net (pkit's network module), which is not installed: looked at %s\n",
               feature.c_str(), looked.empty() ? "nothing (no /proc/self/exe)" : looked.c_str());
  return 1;
}

}  // namespace pkit::tool
