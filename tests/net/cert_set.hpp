#pragma once

// Certificates for the net suites: tools/make-certs.sh run once per test program into a
// scratch directory (a trusted pair of CAs with node "a" and controller "main", and a
// rogue pair with a node "a" of its own), plus helpers to make broken copies.

#include "temp_dir.hpp"

#include <pkit/net/tls_files.hpp>

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace pkit_net_test {

namespace fs = std::filesystem;

/// Runs make-certs.sh; throws (failing the test program) if it fails.
inline void make_certs(const fs::path& dir, const std::string& args) {
  std::string cmd = "bash '" PKIT_MAKE_CERTS "' " + args + " '" + dir.string() + "' >/dev/null";
  if (std::system(cmd.c_str()) != 0)
    throw std::runtime_error("make-certs.sh failed: " + cmd);
}

/// The certificates every case of a program shares (read-only; cases copy what they break).
struct certs {
  pkit_test_common::temp_dir root;
  fs::path good = root.path() / "good";
  fs::path rogue = root.path() / "rogue";

  certs() {
    make_certs(good, "--node a --controller main");
    make_certs(rogue, "--node a");
  }
  static certs& get() {
    static certs instance;
    return instance;
  }

  /// Node a's set: its certificate and key, trusting the controllers' CA.
  pkit::net::tls_files node() const {
    return {good / "node-a.pem", good / "node-a.key", good / "controller-ca.pem", {}, {}};
  }
  /// Controller main's set: its certificate and key, trusting the nodes' CA.
  pkit::net::tls_files controller() const {
    return {good / "controller-main.pem", good / "controller-main.key", good / "node-ca.pem",
            {}, {}};
  }
};

/// Copies `from` to `to` with mode `mode` (chmod, not subject to the umask).
inline fs::path copy_as(const fs::path& from, const fs::path& to, fs::perms mode) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  fs::permissions(to, mode);
  return to;
}

/// Writes `text` to `to` with mode `mode`.
inline fs::path write_as(const fs::path& to, const std::string& text, fs::perms mode) {
  std::ofstream(to, std::ios::trunc | std::ios::binary) << text;
  fs::permissions(to, mode);
  return to;
}

}  // namespace pkit_net_test
