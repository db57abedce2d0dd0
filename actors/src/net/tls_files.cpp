#include <pkit/net/tls_files.hpp>

#include <caf/actor_system_config.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

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

std::string mode_text(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

/// Which of certificate, key and CA a file is: they are checked differently.
enum class role { certificate, key, ca };

/// Exists, is a regular file (links followed, as OpenSSL will), can be opened for
/// reading, and its mode fits its role.
std::optional<error> check_file(const std::filesystem::path& file, role r) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    int e = errno;
    return refuse(e == ENOENT ? errc::tls_file_missing : errc::tls_file_unreadable, file,
                  std::strerror(e));
  }
  if (!S_ISREG(st.st_mode))
    return refuse(errc::tls_not_regular_file, file, "not a regular file");
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return refuse(errc::tls_file_unreadable, file, std::strerror(errno));
  ::close(fd);
  if (r == role::key && (st.st_mode & 077) != 0)
    return refuse(errc::tls_key_exposed, file,
                  "mode " + mode_text(st.st_mode) + ", needs 0600 or stricter (chmod 600)");
  // Whoever may rewrite the CA file (or the chain) decides whom this process trusts.
  if (r != role::key && (st.st_mode & S_IWOTH) != 0)
    return refuse(errc::tls_file_writable, file,
                  "mode " + mode_text(st.st_mode) + ", writable by others (chmod o-w)");
  if (r == role::ca && st.st_size == 0)
    return refuse(errc::tls_ca_empty, file, "the file is empty");
  return std::nullopt;
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

std::optional<error> check_certificate_and_key(const tls_files& f) {
  std::unique_ptr<SSL_CTX, ssl_ctx_free> ctx{SSL_CTX_new(TLS_method())};
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

std::optional<error> check_ca(const std::filesystem::path& ca) {
  std::unique_ptr<X509_STORE, x509_store_free> store{X509_STORE_new()};
  if (!store || X509_STORE_load_file(store.get(), ca.c_str()) != 1)
    return refuse(errc::tls_ca_invalid, ca, openssl_reason());
  int certificates = 0;
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store.get());
  for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i)
    if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objects, i)) == X509_LU_X509)
      ++certificates;
  if (certificates == 0)
    return refuse(errc::tls_ca_invalid, ca, "no certificate in the file");
  return std::nullopt;
}

}  // namespace

bool tls_files::complete() const {
  return !certificate.empty() && !key.empty() && !ca.empty() && capath.empty();
}

std::optional<error> tls_files::check() const {
  ERR_clear_error();
  if (!capath.empty())
    return refuse(errc::tls_capath_refused, capath,
                  "peers must be authenticated by a private CA file, not a CA directory");
  for (auto [file, name] : {std::pair{&certificate, "certificate"}, std::pair{&key, "key"},
                            std::pair{&ca, "CA file"}})
    if (file->empty())
      return error{make_error_code(errc::tls_incomplete), name, "not configured"};
  if (auto e = check_file(certificate, role::certificate))
    return e;
  if (auto e = check_file(key, role::key))
    return e;
  if (auto e = check_file(ca, role::ca))
    return e;
  if (auto e = check_certificate_and_key(*this))
    return e;
  return check_ca(ca);
}

std::optional<error> tls_files::apply(caf::actor_system_config& cfg,
                                      const link_timing& timing) const {
  if (auto e = check())
    return e;
  if (auto e = timing.check())
    return e;
  // Absolute: CAF opens the files again for every connection, after any chdir.
  cfg.openssl_certificate = std::filesystem::absolute(certificate).string();
  cfg.openssl_key = std::filesystem::absolute(key).string();
  cfg.openssl_passphrase = passphrase;
  cfg.openssl_cafile = std::filesystem::absolute(ca).string();
  cfg.openssl_capath.clear();
  return apply_link(cfg, timing);
}

}  // namespace pkit::net
