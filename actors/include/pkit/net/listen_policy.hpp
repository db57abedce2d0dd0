#pragma once

/// \file
/// `pkit::net::check_listen`: may a pkit process listen (publish its BASP actor) on an
/// address with the given TLS set-up? Beyond loopback only with a complete TLS file set
/// (FAULTS C1/C2): CAF binds every interface for an empty address and trusts every peer
/// that connects, so a plain listener reachable from the network is remote code execution.
///
/// Plain loopback trusts every local user (any of them can connect to 127.0.0.1), and a
/// TLS process must never publish or connect plain at all, not even on loopback: plain and
/// TLS links share one BASP broker (ISSUE11_DESIGN §2.3), so a plain peer would reach
/// everything the TLS peers reach.

#include <pkit/net/error.hpp>
#include <pkit/net/tls_files.hpp>

#include <optional>
#include <string_view>

namespace caf {
class actor_system;
}

namespace pkit::net {

/// True for a numeric loopback address: 127.0.0.0/8, ::1, or ::ffff:127.x.y.z. Names
/// ("localhost") are not loopback here: what they resolve to is not this check's to know.
bool is_loopback_address(std::string_view address);

/// Refuses (listen_needs_tls, naming the address and saying what to do) a listen address
/// that is not numeric loopback — "" and "0.0.0.0" and "::" included — unless `tls` is
/// given and complete(). Loopback is allowed with or without TLS — but plain loopback
/// trusts every local user, and a TLS process must never publish plain (see above).
/// Pure: it does not look at the files (tls_files::check does; require_authenticated ties
/// them to the running system) nor resolve names. nullopt when allowed.
std::optional<error> check_listen(std::string_view address, const tls_files* tls);

/// The guard between the checked files and what CAF actually uses, for a TLS process to
/// run after its actor system is built and before it publishes or connects anything:
/// CAF's OpenSSL module is loaded and requires peer authentication, and the system's
/// openssl.certificate, .key, .passphrase and .cafile are exactly what
/// tls_files::apply(cfg) wrote for `applied` (the snapshot's files()), and openssl.capath
/// is empty — so neither a forgotten apply() nor a later change of the configuration
/// (CAF reads it again for every connection: never change it while the system runs)
/// goes unnoticed. Returns tls_not_in_effect naming the setting ("openssl.cafile") or
/// the module; nullopt when in effect. Call from the thread that owns the system.
std::optional<error> require_authenticated(caf::actor_system& sys, const tls_files& applied);

}  // namespace pkit::net
