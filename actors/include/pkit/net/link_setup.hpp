#pragma once

/// \file
/// `pkit::net::prepare_links`: the one start-up sequence of a pkit process that talks BASP
/// (a `pkit node`, a `pkit run` with nodes), so that node and controller cannot drift
/// apart in what they check and load (tls_files.hpp explains each step).

#include <pkit/net/error.hpp>
#include <pkit/net/link_timing.hpp>
#include <pkit/net/tls_files.hpp>
#include <pkit/net/tls_snapshot.hpp>

#include <optional>

namespace caf {
class actor_system_config;
}

namespace pkit::net {

/// Readies `cfg`, before its actor system exists: checks `timing` and, with `tls`, takes
/// `snapshot` of the files (every rule of tls_files::check()); only when all passed, loads
/// CAF's middleman (and then its OpenSSL module, with `tls`), registers pkit's types
/// (pkit::net::init) and applies the links' settings (the snapshot's files, the timing,
/// the application identifier). A refusal names what was wrong; one found before the
/// loading (the timing, the files) leaves `cfg` as it was. apply() checks the copies
/// once more after the loading: should that refuse, do not use `cfg`. Without `tls` the links are plain BASP: allowed by
/// pkit on loopback only (check_listen, node_directory::add_node).
///
/// `snapshot` must be empty and must outlive the actor system made from `cfg` (CAF reads
/// the copies at every connection). Call once per configuration; not thread-safe on one
/// `cfg`.
std::optional<error> prepare_links(caf::actor_system_config& cfg, const tls_files* tls, const link_timing& timing,
                                   tls_snapshot& snapshot);

}  // namespace pkit::net
