#pragma once

/// \file
/// `pkit` and `pkit-net`: two executables built from the same sources. `pkit` links no
/// network code (pkit::net, CAF's io and OpenSSL modules, OpenSSL): a tree without nodes
/// maps none of it (less memory, less attack surface). The commands that need the
/// network run `pkit-net` in its place (execv, same arguments, argv[0] kept so that ps
/// still says pkit), as git runs git-remote-https: `pkit run`/`pkit check` of a file that
/// declares nodes, a control listener or TLS, `pkit node`, `pkit ctl --host`.

#include <filesystem>
#include <string>
#include <vector>

namespace pkit::tool {

/// The network key `file` declares ("[nodes]", "[pkit] control_listen", "[pkit] tls",
/// "[pkit] control_tls"), or "" when it declares none or is no readable TOML (then the
/// full load, in this process, says what is wrong). Reads the file; any thread.
std::string network_key_of(const std::filesystem::path& file);

/// Where `pkit-net` is looked for, in order: next to this executable (/proc/self/exe, the
/// build tree), then libexec/pkit/ relative to it (an installation, wherever its prefix
/// is), then the configured installation's libexec/pkit/ (both set by the build).
std::vector<std::filesystem::path> pkit_net_candidates();

/// Replaces this process by `pkit-net` with the same `argv` (argv[0] kept) and
/// PKIT_NET_CALLER_VERSION set to this version. Returns only when it cannot: after
/// saying on stderr why (no candidate exists: the paths looked at; one exists but cannot
/// be executed; one is this executable itself) and that `feature` needs it; the return
/// value is then the exit code (1).
int exec_pkit_net(char** argv, const std::string& feature);

/// In pkit-net, first thing: when run by pkit (PKIT_NET_CALLER_VERSION set), removes the
/// variable, refuses another version than its own (says so; returns 1) and names the
/// process "pkit" (comm: ps, pgrep -x, killall). Returns 0 to go on.
int pkit_net_caller_check();

}  // namespace pkit::tool
