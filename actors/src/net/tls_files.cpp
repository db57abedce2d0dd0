#include <pkit/net/tls_files.hpp>

#include "tls_file_checks.hpp"

#include <caf/actor_system_config.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace pkit::net {

namespace {

struct ssl_ctx_free {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct evp_pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_store_free {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct bio_free {
  void operator()(BIO* p) const { BIO_free(p); }
};

error refuse(errc code, const std::filesystem::path& file, std::string reason) {
  return {make_error_code(code), file.string(), std::move(reason)};
}

/// OpenSSL's error queue (of this thread) as one text, emptied.
std::string openssl_reason() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty())
      text += "; ";
    text += buf;
  }
  return text.empty() ? std::string{"no reason given by OpenSSL"} : text;
}

/// OpenSSL's passphrase callback: the configured passphrase, never a terminal prompt
/// (OpenSSL's default callback would ask on the tty for an encrypted key).
int passphrase_cb(char* buf, int size, int /*rwflag*/, void* user) {
  const auto* pass = static_cast<const std::string*>(user);
  if (pass == nullptr || pass->empty() || static_cast<int>(pass->size()) > size)
    return -1;
  std::memcpy(buf, pass->data(), pass->size());
  return static_cast<int>(pass->size());
}

/// Loads and checks the chain and the key into `ctx` (a fresh context).
std::optional<error> check_certificate_and_key(const tls_files& f,
                                               std::unique_ptr<SSL_CTX, ssl_ctx_free>& ctx) {
  ctx.reset(SSL_CTX_new(TLS_method()));
  if (!ctx)
    return refuse(errc::tls_certificate_invalid, f.certificate, openssl_reason());
  // What CAF's session::create_ssl_context does with the same file.
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), f.certificate.c_str()) != 1)
    return refuse(errc::tls_certificate_invalid, f.certificate, openssl_reason());
  X509* own = SSL_CTX_get0_certificate(ctx.get());
  if (X509_cmp_current_time(X509_get0_notBefore(own)) >= 0)
    return refuse(errc::tls_certificate_expired, f.certificate, "not yet valid");
  if (X509_cmp_current_time(X509_get0_notAfter(own)) <= 0)
    return refuse(errc::tls_certificate_expired, f.certificate, "expired");
  // The process's own certificate, not a CA's (whose key would sign new peers), usable
  // both ways: a node accepts connections and may make them, a controller the reverse.
  if (X509_check_ca(own) != 0)
    return refuse(errc::tls_certificate_wrong_use, f.certificate,
                  "a CA certificate: give this process's own certificate (CA:FALSE)");
  if (X509_check_purpose(own, X509_PURPOSE_SSL_SERVER, 0) != 1 ||
      X509_check_purpose(own, X509_PURPOSE_SSL_CLIENT, 0) != 1)
    return refuse(errc::tls_certificate_wrong_use, f.certificate,
                  "not usable for both TLS server and client authentication "
                  "(extendedKeyUsage serverAuth,clientAuth, as tools/make-certs.sh makes)");
  // The key is read on its own first, so that "does not load" and "does not match" are
  // told apart (SSL_CTX_use_PrivateKey_file would fail for both).
  std::unique_ptr<BIO, bio_free> bio{BIO_new_file(f.key.c_str(), "r")};
  if (!bio)
    return refuse(errc::tls_file_unreadable, f.key, openssl_reason());
  auto* pass = const_cast<std::string*>(&f.passphrase);
  std::unique_ptr<EVP_PKEY, evp_pkey_free> pkey{
    PEM_read_bio_PrivateKey(bio.get(), nullptr, passphrase_cb, pass)};
  if (!pkey) {
    std::string why = openssl_reason();
    if (f.passphrase.empty())
      why += " (an encrypted key needs its passphrase)";
    return refuse(errc::tls_key_invalid, f.key, why);
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), pkey.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1)
    return refuse(errc::tls_key_mismatch, f.key,
                  "not the key of " + f.certificate.string() + ": " + openssl_reason());
  return std::nullopt;
}

struct x509_store_ctx_free {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
struct x509_stack_free {
  void operator()(STACK_OF(X509)* p) const { sk_X509_pop_free(p, X509_free); }
};

/// How many CA certificates a CA file may hold: one per CA the process trusts (the other
/// role's, and its successor during a rotation), not a bundle.
constexpr int max_ca_certificates = 4;

/// The certificates of a loaded store.
std::vector<X509*> certificates_of(X509_STORE* store) {
  std::vector<X509*> out;
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store);
  for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i)
    if (X509* x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i)))
      out.push_back(x);
  return out;
}

/// The subject of `x` as one line, for messages.
std::string subject_of(X509* x) {
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf);
  return buf;
}

/// A root of a private CA: self-issued, its own signature valid, CA:TRUE.
bool is_self_signed_ca(X509* x) {
  return X509_check_issued(x, x) == X509_V_OK && X509_verify(x, X509_get0_pubkey(x)) == 1 &&
         (X509_get_extension_flags(x) & EXFLAG_CA) != 0 && X509_check_ca(x) >= 1;
}

/// True when `x` is one of the system's default trusted certificates (SSL_CERT_FILE /
/// SSL_CERT_DIR or OpenSSL's built-in paths: /etc/ssl/certs on Debian). `system` is that
/// store, loaded once per check; lookups by subject fill it lazily from the directory.
bool is_system_ca(X509_STORE* system, X509* x) {
  std::unique_ptr<X509_STORE_CTX, x509_store_ctx_free> ctx{X509_STORE_CTX_new()};
  if (!ctx || X509_STORE_CTX_init(ctx.get(), system, nullptr, nullptr) != 1)
    return false;
  std::unique_ptr<STACK_OF(X509), x509_stack_free> same{
    X509_STORE_CTX_get1_certs(ctx.get(), X509_get_subject_name(x))};
  for (int i = 0; same && i < sk_X509_num(same.get()); ++i)
    if (X509_cmp(sk_X509_value(same.get(), i), x) == 0)
      return true;
  return false;
}

/// True when the own certificate (with its chain) verifies against the CA file: the
/// process would then trust peers of its own role (one CA for both roles, or a file
/// holding both CAs), which two CAs exist to prevent.
bool trusts_own_role(X509_STORE* store, SSL_CTX* own) {
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(own, &chain);
  std::unique_ptr<X509_STORE_CTX, x509_store_ctx_free> ctx{X509_STORE_CTX_new()};
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store, SSL_CTX_get0_certificate(own), chain) != 1)
    return false;
  bool verified = X509_verify_cert(ctx.get()) == 1;
  ERR_clear_error();
  return verified;
}

/// The CA file: loads as CAF loads it, holds 1 to max_ca_certificates certificates, each
/// a self-signed CA valid now and none of the system's public CAs (CAF checks no names, so
/// any certificate a public CA signed would authenticate), and does not authenticate the
/// process's own certificate. `own` holds the checked certificate chain.
std::optional<error> check_ca(const std::filesystem::path& ca, SSL_CTX* own) {
  std::unique_ptr<X509_STORE, x509_store_free> store{X509_STORE_new()};
  if (!store || X509_STORE_load_file(store.get(), ca.c_str()) != 1)
    return refuse(errc::tls_ca_invalid, ca, openssl_reason());
  const std::vector<X509*> cas = certificates_of(store.get());
  if (cas.empty())
    return refuse(errc::tls_ca_invalid, ca, "no certificate in the file");
  if (cas.size() > max_ca_certificates)
    return refuse(errc::tls_ca_too_many, ca,
                  std::to_string(cas.size()) + " certificates, at most " +
                    std::to_string(max_ca_certificates) +
                    ": give the other role's private CA, not a bundle");
  std::unique_ptr<X509_STORE, x509_store_free> system{X509_STORE_new()};
  if (system)
    X509_STORE_set_default_paths(system.get());
  ERR_clear_error();  // a missing default file or directory is no error here
  for (X509* x : cas) {
    if (!is_self_signed_ca(x))
      return refuse(errc::tls_ca_not_root, ca,
                    subject_of(x) + " is not a self-signed CA certificate (CA:TRUE): give "
                                    "the private CA's own certificate, not a leaf or an "
                                    "intermediate");
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0 ||
        X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
      return refuse(errc::tls_certificate_expired, ca, subject_of(x) + " is not valid now");
    if (system && is_system_ca(system.get(), x))
      return refuse(errc::tls_ca_public, ca,
                    subject_of(x) + " is one of the system's trusted CAs: every certificate "
                                    "it signed would authenticate; use a private CA "
                                    "(tools/make-certs.sh)");
  }
  if (trusts_own_role(store.get(), own))
    return refuse(errc::tls_ca_same_role, ca,
                  "it authenticates this process's own certificate, so peers of the same "
                  "role would be trusted: give the other role's CA (nodes trust "
                  "controller-ca.pem, controllers node-ca.pem)");
  return std::nullopt;
}

}  // namespace

std::optional<error> detail::check_contents(const tls_files& f) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, ssl_ctx_free> own;
  if (auto e = check_certificate_and_key(f, own))
    return e;
  return check_ca(f.ca, own.get());
}

bool tls_files::complete() const {
  return !certificate.empty() && !key.empty() && !ca.empty() && capath.empty();
}

std::optional<error> tls_files::check() const {
  if (auto e = detail::check_settings(*this))
    return e;
  for (auto [file, role] : {std::pair{&certificate, detail::tls_role::certificate},
                            std::pair{&key, detail::tls_role::key},
                            std::pair{&ca, detail::tls_role::ca}}) {
    int fd = -1;
    if (auto e = detail::open_checked(*file, role, fd))
      return e;
    ::close(fd);
  }
  return detail::check_contents(*this);
}

std::optional<error> tls_files::apply(caf::actor_system_config& cfg,
                                      const link_timing& timing) const {
  if (auto e = check())
    return e;
  if (auto e = timing.check())
    return e;
  // Absolute: CAF opens the files again for every connection, after any chdir. All
  // three are computed before anything is written, so that a refusal (the working
  // directory gone) leaves `cfg` untouched, as documented.
  std::string absolute[3];
  const std::filesystem::path* files[3] = {&certificate, &key, &ca};
  for (int i = 0; i < 3; ++i) {
    std::error_code ec;
    absolute[i] = std::filesystem::absolute(*files[i], ec).string();
    if (ec)
      return refuse(errc::tls_file_unreadable, *files[i],
                    "cannot make the path absolute: " + ec.message());
  }
  cfg.openssl_certificate = std::move(absolute[0]);
  cfg.openssl_key = std::move(absolute[1]);
  cfg.openssl_passphrase = passphrase;
  cfg.openssl_cafile = std::move(absolute[2]);
  cfg.openssl_capath.clear();
  return apply_link(cfg, timing);  // cannot refuse: timing.check() passed
}

}  // namespace pkit::net
