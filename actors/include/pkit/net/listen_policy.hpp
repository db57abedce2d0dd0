#pragma once

/// \file
/// `pkit::net::check_listen`: may a pkit process listen (publish its BASP actor) on an
/// address with the given TLS set-up? Beyond loopback only with a complete TLS file set
/// (FAULTS C1/C2): CAF binds every interface for an empty address and trusts every peer
/// that connects, so a plain listener reachable from the network is remote code execution.

#include <pkit/net/error.hpp>
#include <pkit/net/tls_files.hpp>

#include <optional>
#include <string_view>

namespace pkit::net {

/// True for a numeric loopback address: 127.0.0.0/8, ::1, or ::ffff:127.x.y.z. Names
/// ("localhost") are not loopback here: what they resolve to is not this check's to know.
bool is_loopback_address(std::string_view address);

/// Refuses (listen_needs_tls, naming the address and saying what to do) a listen address
/// that is not numeric loopback — "" and "0.0.0.0" and "::" included — unless `tls` is
/// given and complete(). Loopback is allowed with or without TLS. Pure: it does not look at
/// the files (tls_files::check does) nor resolve names. nullopt when allowed.
std::optional<error> check_listen(std::string_view address, const tls_files* tls);

}  // namespace pkit::net
