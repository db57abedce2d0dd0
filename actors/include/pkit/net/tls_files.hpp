#pragma once

/// \file
/// `pkit::net::tls_files`: the certificate, key and CA file of a pkit process that talks
/// BASP over TLS (CAF's OpenSSL module), checked before any actor system exists and then
/// written into its configuration.
///
/// Why pkit checks what CAF would load anyway (ISSUE11_DESIGN §2): CAF 0.17.6 falls back
/// to anonymous, unauthenticated TLS when no file is configured (FAULTS C3), fails every
/// handshake silently with a certificate but no CA (or a leaf given as CA), checks no
/// names — so any CA it trusts, through a capath *or* a CA file such as the system
/// bundle, lets every certificate that CA signed authenticate — and loads the files again
/// for every connection on its multiplexer thread, where a bad file ends the process.
/// Refusing capath alone does not close the public-CA hole: check() also refuses a CA
/// file holding a public (system-trusted) CA, anything but self-signed CA certificates,
/// more than a few, or the process's own role's CA. check() turns all of that into a typed refusal to
/// start, naming the file and OpenSSL's reason; tls_snapshot (pkit/net/tls_snapshot.hpp)
/// keeps the checked files from changing or vanishing under a running system. check()
/// alone opens each file more than once: only a snapshot checks what it will use.
///
/// Start-up of a TLS process:
///   tls_snapshot snap;  if (auto e = snap.take(files)) refuse(*e);
///   if (auto e = check_listen(address, &snap.files())) refuse(*e);
///   cfg.load<caf::io::middleman>(); cfg.load<caf::openssl::manager>();
///   if (auto e = snap.files().apply(cfg, timing)) refuse(*e);
///   caf::actor_system sys{cfg};   // destroyed before snap

#include <pkit/net/error.hpp>
#include <pkit/net/link_timing.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace caf {
class actor_system_config;
}

namespace pkit::net {

/// The TLS file set of one pkit process. Nodes and controllers use certificates of two
/// private CAs (tools/make-certs.sh): each trusts exactly the other role's CA.
/// A plain value; its member functions only read files and are safe to call from any
/// thread (OpenSSL 3 initialises itself).
struct tls_files {
  /// PEM certificate chain, own certificate first.
  std::filesystem::path certificate;
  /// PEM private key of that certificate; mode 0600 or stricter.
  std::filesystem::path key;
  /// PEM file of the private CA(s) whose certificates peers must present (the other
  /// role's CA; two during a rotation; never a bundle of public CAs).
  std::filesystem::path ca;
  /// The key's passphrase if it is encrypted. CAF keeps it in memory as plain text.
  std::string passphrase;
  /// Never accepted: present so that a configuration naming a CA directory is refused
  /// (tls_capath_refused) instead of silently ignored.
  std::filesystem::path capath;

  /// True when certificate, key and CA are all given and no capath: what check_listen
  /// requires beyond loopback. Says nothing about the files' contents; see check().
  bool complete() const;

  /// Checks the set with libssl, without any actor system: all three given, no capath, a
  /// passphrase without NUL and at most 1023 bytes (what CAF passes on whole); each a
  /// readable regular file of at most 1 MiB owned by the effective user or root, in no
  /// directory (as given or resolved) others may write without the sticky bit; the key not
  /// accessible to group or others and the certificate and CA not writable by group or
  /// others; the chain, the key (with `passphrase`; an
  /// encrypted key without one is refused rather than prompted for) and their match
  /// (SSL_CTX_check_private_key); the own certificate valid now, CA:FALSE and usable
  /// for TLS server and client authentication (tls_certificate_wrong_use); the CA file holding 1 to
  /// 4 certificates, each a self-signed CA:TRUE certificate valid now (tls_ca_not_root,
  /// tls_certificate_expired) and not in the system's default trust store (tls_ca_public),
  /// and not authenticating the own certificate (tls_ca_same_role: nodes trust the
  /// controllers' CA, controllers the nodes'). Returns the first refusal, naming the file
  /// and the OpenSSL or OS reason; nullopt when the set is usable.
  std::optional<error> check() const;

  /// check() and the timing's check, then, when both passed, writes the set into `cfg`:
  /// openssl.certificate, .key, .passphrase, .cafile (capath left empty), and
  /// apply_link(cfg, timing) (heartbeats, app identifier). Leaves `cfg` untouched on a
  /// refusal. Does not load modules: the caller loads caf::io::middleman and
  /// then caf::openssl::manager (in that order: CAF requires it), once.
  std::optional<error> apply(caf::actor_system_config& cfg, const link_timing& timing = {}) const;
};

}  // namespace pkit::net
