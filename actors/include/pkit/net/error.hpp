#pragma once

/// \file
/// Errors of pkit's distribution layer (pkit::net): the `pkit::net::errc` enumeration, its
/// `std::error_category` ("pkit.net"), and `pkit::net::error`, a code plus the file, address
/// or spec field it is about and the underlying reason (an OpenSSL or errno text).

#include <string>
#include <system_error>
#include <utility>

namespace pkit::net {

/// Why a TLS file set, a listen address or a remote process spec was refused. Each value
/// names one cause, so that callers and tests can tell them apart without parsing text.
enum class errc {
  // -- TLS files (tls_files::check) ------------------------------------------------------
  /// certificate, key or CA file not configured (all three are required: FAULTS C3).
  tls_incomplete = 1,
  /// a configured file does not exist.
  tls_file_missing,
  /// a file exists but cannot be opened for reading (permissions, EIO, ...).
  tls_file_unreadable,
  /// a file is not a regular file (a directory, a FIFO, a device).
  tls_not_regular_file,
  /// the private key may be read or written by its group or by others (mode & 077).
  tls_key_exposed,
  /// the certificate or the CA file may be written by its group or by others.
  tls_file_writable,
  /// the certificate chain file does not load as a PEM chain.
  tls_certificate_invalid,
  /// the certificate is not yet valid or has expired.
  tls_certificate_expired,
  /// the own certificate is a CA certificate, or not usable for both TLS server and
  /// client authentication.
  tls_certificate_wrong_use,
  /// the private key does not load (not PEM, encrypted with another or no passphrase).
  tls_key_invalid,
  /// the private key does not belong to the certificate.
  tls_key_mismatch,
  /// the CA file is empty.
  tls_ca_empty,
  /// the CA file holds no loadable certificate.
  tls_ca_invalid,
  /// the files could not be copied into sealed memory (tls_snapshot; the OS's reason).
  tls_snapshot_failed,
  /// a CA directory (capath) was given: refused, since it would let every CA in it (the
  /// system's public CAs, typically) authenticate peers.
  tls_capath_refused,
  /// the CA file holds more certificates than a private CA set needs (a bundle).
  tls_ca_too_many,
  /// a certificate in the CA file is not a self-signed CA:TRUE certificate (a leaf or an
  /// intermediate: every handshake would fail).
  tls_ca_not_root,
  /// a certificate in the CA file is one of the system's trusted (public) CAs.
  tls_ca_public,
  /// the CA file authenticates the process's own certificate: peers of its own role
  /// would be trusted (one CA for both roles, or both CAs in one file).
  tls_ca_same_role,

  /// a file is owned by neither the effective user nor root.
  tls_file_foreign_owner,
  /// a directory above a file may be written by others and has no sticky bit (the file
  /// could be replaced).
  tls_directory_writable,
  /// a file is larger than any PEM file pkit reads (1 MiB).
  tls_file_too_large,
  /// the passphrase holds a NUL byte or is longer than CAF passes on (1023 bytes).
  tls_passphrase_invalid,
  /// the actor system does not use the checked TLS set (require_authenticated): the
  /// OpenSSL module missing or unauthenticated, or a setting not what apply() wrote.
  tls_not_in_effect,

  // -- link settings (apply_link) ---------------------------------------------------------
  /// a heartbeat interval or connection timeout that is not positive, or a timeout not
  /// longer than the interval (every connection would be dropped between heartbeats).
  link_timing_invalid,

  // -- listen addresses (check_listen) ----------------------------------------------------
  /// a listen address beyond loopback without a complete TLS file set (FAULTS C1/C2).
  listen_needs_tls,

  // -- remote process specs (validate against an allow_list) -----------------------------
  /// the spec names no program (argv empty).
  spec_no_program,
  /// argv[0] (or cwd) is not an absolute, normalised path (relative, "..", "." or "//").
  spec_path_not_absolute,
  /// argv[0] is neither listed nor inside an allowed directory (compared as spelled).
  spec_program_not_allowed,
  /// a fork-server target was requested (never over the network).
  spec_target_refused,
  /// stdin, stdout or stderr is a file path (only "", "null" — and "capture" for output —
  /// may cross the network).
  spec_output_refused,
  /// cwd is outside the allowed directories.
  spec_cwd_not_allowed,
  /// user or group is not on the allow-list.
  spec_credentials_not_allowed,
  /// an environment variable name is not on the allow-list.
  spec_env_not_allowed,
  /// a number outside its range: stop_signal not a signal, a stop or ready timeout
  /// negative (never) or beyond the node's cap, notify_fd one of stdin/out/err.
  spec_out_of_range,
  /// resource limits in a spec, on a node that does not allow them.
  spec_rlimits_refused,
  /// too many arguments, an argument too long, or too many bytes in total.
  spec_too_large,
  /// an argument, path or variable holds a NUL byte or is otherwise malformed.
  spec_malformed,

  /// the arguments are not one of the fixed vectors the node pinned for that program.
  spec_args_not_allowed,
  /// new_process_group or kill_group is false: a remote child must lead its own process
  /// group and be stopped with it (nothing it started may outlive it).
  spec_process_group_required,
  /// argv[0] or cwd is not its own resolved path (a symbolic link in it), or lies under
  /// /proc or /dev: what the agent checked would not be what the child runs.
  spec_path_not_canonical,

  // -- the allow-list itself (allow_list::check) ------------------------------------------
  /// an allow-list entry is not an absolute path, does not exist, or a cap is zero.
  allow_list_invalid,

  // -- the node agent (node_agent.hpp) ------------------------------------------------------
  /// a controller's hello names another node protocol version.
  node_protocol_mismatch,
  /// a spawn while the node's cap on live children is reached.
  node_child_limit,
  /// a spawn without a relay actor: nobody would watch the child, nothing would stop it.
  node_relay_missing,

  // -- the controller's node directory (node_directory.hpp) --------------------------------
  /// a node's name or host is empty, its port 0, or its name is already known.
  node_address_invalid,
  /// a node beyond loopback in a process without the TLS module: BASP in plain text
  /// would carry the tree's control across the network (FAULTS C1/C2).
  connect_needs_tls,

  // -- the node agent, appended (the codes cross the wire) ---------------------------------
  /// a spawn waited for the previous run of its id, orphaned by a lost controller, and
  /// that run did not stop within its stop timeout (+ a margin): this node will not run a
  /// second instance beside it (review 11 #4).
  node_previous_run_stuck,
  /// the node is stopping (`pkit node` got SIGTERM, SIGINT or SIGHUP): it refuses spawns,
  /// and starts through the process actors it handed out (review 11 #14). A controller's
  /// relay takes it as that node lost (node_down): the child is placed again elsewhere,
  /// or on this node once it is back.
  node_shutting_down,
  /// a start through the process actor of a child whose controller was lost: the node is
  /// stopping that run for good; a controller places its child again with a new spawn.
  node_child_retired,
  /// a request to a child's process actor from neither the controller that asked for the
  /// child (an actor of its relay's node) nor this node: refused, nothing is done.
  node_not_permitted,
};

/// The category of `pkit::net::errc`; its name is "pkit.net".
const std::error_category& net_category() noexcept;

/// Makes `std::error_code` construction from `pkit::net::errc` work (found by ADL).
std::error_code make_error_code(errc e) noexcept;

/// A refusal: the code, what it is about (a file path, an address, a spec field such as
/// "argv[0]" or "stdout_path"), the underlying reason (OpenSSL's or the OS's text, or
/// pkit's explanation) and, for refusals of remote specs, local detail kept apart. A plain
/// value: copy it, move it, keep it.
struct error {
  error() = default;
  /// A constructor rather than an aggregate, so that {code, subject, reason} stays valid
  /// (warning-free) with the optional detail.
  error(std::error_code code, std::string subject, std::string reason, std::string detail = {})
    : code(code), subject(std::move(subject)), reason(std::move(reason)),
      detail(std::move(detail)) {}

  std::error_code code;
  std::string subject;
  std::string reason;
  /// Local facts a remote peer must not learn (what a path resolves to, whether it exists
  /// or cannot be searched): for this process's log only. Empty for most errors.
  std::string detail;

  /// "<code message>: <subject>: <reason> (<detail>)" (parts that are empty are left out),
  /// for local logs and for the message a command prints before it refuses to start.
  std::string message() const;
  /// message() without the detail: what a node agent may answer a remote peer.
  std::string peer_message() const;
};

}  // namespace pkit::net

template <>
struct std::is_error_code_enum<pkit::net::errc> : std::true_type {};
