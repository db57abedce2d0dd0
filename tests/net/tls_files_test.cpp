// pkit::net::tls_files, link_timing and the listen policy: each broken TLS file set is
// refused with its own code, naming the file; the valid sets pass and land in CAF's
// configuration.

#define BOOST_TEST_MODULE net_tls
#include <boost/test/unit_test.hpp>

#include "cert_set.hpp"

#include <pkit/net/error.hpp>
#include <pkit/net/link_timing.hpp>
#include <pkit/net/listen_policy.hpp>
#include <pkit/net/tls_files.hpp>

#include <caf/actor_system_config.hpp>
#include <caf/settings.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using pkit::net::errc;
using pkit::net::tls_files;
using pkit_net_test::certs;
using pkit_net_test::copy_as;
using pkit_net_test::write_as;
using pkit_test_common::temp_dir;

namespace {

constexpr auto rw_owner = fs::perms::owner_read | fs::perms::owner_write;
constexpr auto public_file = rw_owner | fs::perms::group_read | fs::perms::others_read;

/// Checks `files`, expecting a refusal with `code` whose subject is `subject`.
void expect_refused(const tls_files& files, errc code, const std::string& subject) {
  auto refused = files.check();
  BOOST_TEST_REQUIRE(refused.has_value(), "expected " << pkit::net::make_error_code(code).message());
  BOOST_TEST_INFO("message: " << refused->message());
  BOOST_TEST(refused->code == pkit::net::make_error_code(code));
  BOOST_TEST(refused->subject == subject);
  BOOST_TEST(!refused->reason.empty());
}

void close_file(FILE* f) { std::fclose(f); }

template <class T, void (*Free)(T*)>
struct freeing {
  void operator()(T* p) const { Free(p); }
};
template <class T, void (*Free)(T*)>
using owned = std::unique_ptr<T, freeing<T, Free>>;

/// Reads a PEM object with `read` (PEM_read_X509, PEM_read_PrivateKey).
template <class T, void (*Free)(T*)>
owned<T, Free> read_pem(const fs::path& file, T* (*read)(FILE*, T**, pem_password_cb*, void*)) {
  owned<FILE, close_file> f{std::fopen(file.c_str(), "r")};
  BOOST_TEST_REQUIRE(f != nullptr);
  owned<T, Free> obj{read(f.get(), nullptr, nullptr, nullptr)};
  BOOST_TEST_REQUIRE(obj != nullptr);
  return obj;
}

/// A certificate for node a's key, signed by the nodes' CA, valid from now + `from_s` to
/// now + `to_s` seconds (make-certs.sh cannot backdate: OpenSSL 3.0's x509 has no
/// -not_before).
fs::path make_certificate_valid(const fs::path& to, long from_s, long to_s,
                                const char* extended_key_usage = nullptr) {
  const auto& good = certs::get().good;
  auto key = read_pem<EVP_PKEY, EVP_PKEY_free>(good / "node-a.key", PEM_read_PrivateKey);
  auto ca_key = read_pem<EVP_PKEY, EVP_PKEY_free>(good / "node-ca.key", PEM_read_PrivateKey);
  auto ca = read_pem<X509, X509_free>(good / "node-ca.pem", PEM_read_X509);
  owned<X509, X509_free> x{X509_new()};
  BOOST_TEST_REQUIRE(X509_set_version(x.get(), 2) == 1);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 4711);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), from_s);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), to_s);
  BOOST_TEST_REQUIRE(X509_set_pubkey(x.get(), key.get()) == 1);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("a"), -1, -1, 0);
  BOOST_TEST_REQUIRE(X509_set_issuer_name(x.get(), X509_get_subject_name(ca.get())) == 1);
  if (extended_key_usage != nullptr) {
    owned<X509_EXTENSION, X509_EXTENSION_free> ext{
      X509V3_EXT_conf_nid(nullptr, nullptr, NID_ext_key_usage, extended_key_usage)};
    BOOST_TEST_REQUIRE(ext != nullptr);
    BOOST_TEST_REQUIRE(X509_add_ext(x.get(), ext.get(), -1) == 1);
  }
  BOOST_TEST_REQUIRE(X509_sign(x.get(), ca_key.get(), EVP_sha256()) > 0);
  owned<FILE, close_file> out{std::fopen(to.c_str(), "w")};
  BOOST_TEST_REQUIRE(out != nullptr);
  BOOST_TEST_REQUIRE(PEM_write_X509(out.get(), x.get()) == 1);
  return to;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(check)

BOOST_AUTO_TEST_CASE(valid_sets_pass) {
  auto node = certs::get().node().check();
  BOOST_TEST(!node.has_value(), (node ? node->message() : ""));
  auto controller = certs::get().controller().check();
  BOOST_TEST(!controller.has_value(), (controller ? controller->message() : ""));
  BOOST_TEST(certs::get().node().complete());
}

BOOST_AUTO_TEST_CASE(each_file_is_required) {
  auto files = certs::get().node();
  files.certificate.clear();
  BOOST_TEST(!files.complete());
  expect_refused(files, errc::tls_incomplete, "certificate");
  files = certs::get().node();
  files.key.clear();
  expect_refused(files, errc::tls_incomplete, "key");
  files = certs::get().node();
  files.ca.clear();
  expect_refused(files, errc::tls_incomplete, "CA file");
}

BOOST_AUTO_TEST_CASE(missing_files_are_named) {
  temp_dir dir;
  for (fs::path tls_files::*member : {&tls_files::certificate, &tls_files::key, &tls_files::ca}) {
    auto files = certs::get().node();
    files.*member = dir.path() / "absent.pem";
    expect_refused(files, errc::tls_file_missing, (dir.path() / "absent.pem").string());
  }
}

BOOST_AUTO_TEST_CASE(unreadable_files_are_named) {
  temp_dir dir;
  auto files = certs::get().node();
  // A path through a regular file fails with ENOTDIR, for root as for anyone.
  auto through_file = certs::get().good / "node-a.pem" / "x";
  files.ca = through_file;
  expect_refused(files, errc::tls_file_unreadable, through_file.string());
  if (::geteuid() == 0) {
    BOOST_TEST_MESSAGE("running as root: mode 000 does not keep root out, case skipped");
    return;
  }
  files = certs::get().node();
  files.key = copy_as(files.key, dir.path() / "locked.key", fs::perms::none);
  expect_refused(files, errc::tls_file_unreadable, files.key.string());
}

BOOST_AUTO_TEST_CASE(non_regular_files_are_refused) {
  auto files = certs::get().node();
  files.certificate = certs::get().good;  // a directory
  expect_refused(files, errc::tls_not_regular_file, certs::get().good.string());
  files = certs::get().node();
  files.ca = "/dev/null";  // a device: "empty" for any reader
  expect_refused(files, errc::tls_not_regular_file, "/dev/null");
}

BOOST_AUTO_TEST_CASE(a_key_others_may_read_is_refused) {
  temp_dir dir;
  using p = fs::perms;
  for (auto extra : {p::group_read, p::others_read, p::group_write, p::others_exec}) {
    auto files = certs::get().node();
    files.key = copy_as(files.key, dir.path() / "exposed.key", rw_owner | extra);
    expect_refused(files, errc::tls_key_exposed, files.key.string());
  }
  auto files = certs::get().node();
  files.key = copy_as(files.key, dir.path() / "exposed.key", p::owner_read | p::group_read);
  auto refused = files.check();
  BOOST_TEST_REQUIRE(refused.has_value());
  BOOST_TEST(refused->reason.find("0440") != std::string::npos, refused->reason);
  // Read-only for the owner is stricter than 0600: fine.
  files.key = copy_as(certs::get().node().key, dir.path() / "strict.key", p::owner_read);
  BOOST_TEST(!files.check().has_value());
}

BOOST_AUTO_TEST_CASE(certificate_or_ca_writable_by_others_is_refused) {
  temp_dir dir;
  auto writable = public_file | fs::perms::others_write;
  auto files = certs::get().node();
  files.certificate = copy_as(files.certificate, dir.path() / "cert.pem", writable);
  expect_refused(files, errc::tls_file_writable, files.certificate.string());
  files = certs::get().node();
  files.ca = copy_as(files.ca, dir.path() / "ca.pem", writable);
  expect_refused(files, errc::tls_file_writable, files.ca.string());
}

// Review #7: a group-writable certificate or CA was accepted (only o+w was refused), the
// owner was never checked (root took a 0600 key owned by uid 1000), nor the directories.
BOOST_AUTO_TEST_CASE(group_writable_files_foreign_owners_and_open_directories_are_refused) {
  temp_dir dir;
  auto files = certs::get().node();
  files.ca = copy_as(files.ca, dir.path() / "ca.pem", public_file | fs::perms::group_write);
  expect_refused(files, errc::tls_file_writable, files.ca.string());
  files = certs::get().node();
  files.certificate = copy_as(files.certificate, dir.path() / "cert.pem",
                              public_file | fs::perms::group_write);
  expect_refused(files, errc::tls_file_writable, files.certificate.string());
  // A directory others may write to, without the sticky bit: the file could be replaced.
  const fs::path open_dir = dir.path() / "open";
  fs::create_directory(open_dir);
  fs::permissions(open_dir, fs::perms::all);
  files = certs::get().node();
  files.ca = copy_as(files.ca, open_dir / "ca.pem", public_file);
  expect_refused(files, errc::tls_directory_writable, files.ca.string());
  // ... and reached through a link from a closed one.
  const fs::path closed = dir.path() / "closed";
  fs::create_directory(closed);
  fs::create_symlink(open_dir / "ca.pem", closed / "ca.pem");
  files.ca = closed / "ca.pem";
  expect_refused(files, errc::tls_directory_writable, files.ca.string());
  // With the sticky bit (as /tmp): fine.
  fs::permissions(open_dir, fs::perms::all | fs::perms::sticky_bit);
  BOOST_TEST(!files.check().has_value());
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("not root: cannot give a file to another owner, owner case skipped");
    return;
  }
  files = certs::get().node();
  files.key = copy_as(files.key, dir.path() / "foreign.key", rw_owner);
  BOOST_TEST_REQUIRE(::chown(files.key.c_str(), 1000, 1000) == 0);
  expect_refused(files, errc::tls_file_foreign_owner, files.key.string());
}

// Review #9: CAF hands the passphrase to OpenSSL with strncpy into 1024 bytes: a NUL ends
// it, and longer ones are cut — the key would then not load on the multiplexer thread.
BOOST_AUTO_TEST_CASE(a_passphrase_caf_would_cut_is_refused) {
  auto files = certs::get().node();
  files.passphrase = std::string("secret\0more", 11);
  auto refused = files.check();
  BOOST_TEST_REQUIRE(refused.has_value());
  BOOST_TEST(refused->code == pkit::net::make_error_code(errc::tls_passphrase_invalid));
  BOOST_TEST(refused->subject == "passphrase");
  BOOST_TEST(refused->message().find("secret") == std::string::npos);
  files.passphrase = std::string(1024, 'p');
  refused = files.check();
  BOOST_TEST_REQUIRE(refused.has_value());
  BOOST_TEST(refused->code == pkit::net::make_error_code(errc::tls_passphrase_invalid));
  files.passphrase = std::string(1023, 'p');  // not encrypted: ignored, but passed on whole
  refused = files.check();
  BOOST_TEST(!refused.has_value(), (refused ? refused->message() : ""));
}

// Review #10: a CA certificate (with its key) passed as the process's own, and a leaf
// usable for one direction only (every connection the other way fails later).
BOOST_AUTO_TEST_CASE(the_own_certificate_is_a_leaf_for_both_directions) {
  temp_dir dir;
  auto files = certs::get().node();
  files.certificate = certs::get().good / "node-ca.pem";
  files.key = certs::get().good / "node-ca.key";
  expect_refused(files, errc::tls_certificate_wrong_use, files.certificate.string());
  files = certs::get().node();
  files.certificate = make_certificate_valid(dir.path() / "server-only.pem", -60, 3600,
                                             "serverAuth");
  expect_refused(files, errc::tls_certificate_wrong_use, files.certificate.string());
  files.certificate = make_certificate_valid(dir.path() / "both.pem", -60, 3600,
                                             "serverAuth,clientAuth");
  BOOST_TEST(!files.check().has_value());
}

BOOST_AUTO_TEST_CASE(a_key_of_another_certificate_is_refused) {
  auto files = certs::get().node();
  files.key = certs::get().good / "controller-main.key";
  expect_refused(files, errc::tls_key_mismatch, files.key.string());
  files.key = certs::get().rogue / "node-a.key";  // same name, other key
  expect_refused(files, errc::tls_key_mismatch, files.key.string());
}

BOOST_AUTO_TEST_CASE(garbage_certificate_or_key_is_refused) {
  temp_dir dir;
  auto files = certs::get().node();
  files.certificate = write_as(dir.path() / "cert.pem", "not a certificate\n", public_file);
  expect_refused(files, errc::tls_certificate_invalid, files.certificate.string());
  files = certs::get().node();
  files.certificate = write_as(dir.path() / "empty.pem", "", public_file);
  expect_refused(files, errc::tls_certificate_invalid, files.certificate.string());
  files = certs::get().node();
  files.key = write_as(dir.path() / "k.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n", rw_owner);
  expect_refused(files, errc::tls_key_invalid, files.key.string());
  files = certs::get().node();
  files.key = certs::get().node().certificate;  // a certificate where the key belongs
  files.key = copy_as(files.key, dir.path() / "cert-as.key", rw_owner);
  expect_refused(files, errc::tls_key_invalid, files.key.string());
}

BOOST_AUTO_TEST_CASE(empty_or_garbage_ca_is_refused) {
  temp_dir dir;
  auto files = certs::get().node();
  files.ca = write_as(dir.path() / "empty.pem", "", public_file);
  expect_refused(files, errc::tls_ca_empty, files.ca.string());
  files.ca = write_as(dir.path() / "garbage.pem", std::string(4096, 'x'), public_file);
  expect_refused(files, errc::tls_ca_invalid, files.ca.string());
  // A PEM file without a certificate (the CA's key) is no CA file either.
  files.ca = copy_as(certs::get().good / "controller-ca.key", dir.path() / "key-as-ca.pem",
                     public_file);
  expect_refused(files, errc::tls_ca_invalid, files.ca.string());
}

// Review #2: refusing capath is not enough — a CA file can hold the public CAs too, a
// leaf or an intermediate (every handshake fails), or the own role's CA.
BOOST_AUTO_TEST_CASE(a_ca_file_must_hold_only_the_other_roles_private_roots) {
  temp_dir dir;
  auto files = certs::get().node();
  const fs::path bundle = "/etc/ssl/certs/ca-certificates.crt";
  if (fs::exists(bundle)) {
    files.ca = bundle;
    expect_refused(files, errc::tls_ca_too_many, bundle.string());
    // One public root on its own: few enough, but the system trusts it.
    std::ifstream in(bundle);
    std::string line, pem;
    while (std::getline(in, line)) {
      pem += line + "\n";
      if (line == "-----END CERTIFICATE-----")
        break;
    }
    files.ca = write_as(dir.path() / "public.pem", pem, public_file);
    expect_refused(files, errc::tls_ca_public, files.ca.string());
  }
  // A leaf given as CA.
  files.ca = certs::get().controller().certificate;
  expect_refused(files, errc::tls_ca_not_root, files.ca.string());
  // Both CAs in one file: the node would trust other nodes.
  std::ifstream a(certs::get().good / "controller-ca.pem"), b(certs::get().good / "node-ca.pem");
  std::stringstream both;
  both << a.rdbuf() << b.rdbuf();
  files.ca = write_as(dir.path() / "both.pem", both.str(), public_file);
  expect_refused(files, errc::tls_ca_same_role, files.ca.string());
  // Its own role's CA only.
  files.ca = certs::get().good / "node-ca.pem";
  expect_refused(files, errc::tls_ca_same_role, files.ca.string());
  // The other role's CA and an unrelated private root (a rotation): accepted.
  std::ifstream c(certs::get().good / "controller-ca.pem"), d(certs::get().rogue / "node-ca.pem");
  std::stringstream rotation;
  rotation << c.rdbuf() << d.rdbuf();
  files.ca = write_as(dir.path() / "rotation.pem", rotation.str(), public_file);
  BOOST_TEST(!files.check().has_value());
}

BOOST_AUTO_TEST_CASE(a_ca_directory_is_refused) {
  auto files = certs::get().node();
  files.capath = "/etc/ssl/certs";
  BOOST_TEST(!files.complete());
  expect_refused(files, errc::tls_capath_refused, "/etc/ssl/certs");
}

BOOST_AUTO_TEST_CASE(an_encrypted_key_needs_its_passphrase_and_is_never_prompted_for) {
  temp_dir dir;
  auto files = certs::get().node();
  auto encrypted = dir.path() / "enc.key";
  std::string cmd = "openssl pkey -in '" + files.key.string() +
                    "' -aes256 -passout pass:s3cret -out '" + encrypted.string() + "'";
  BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0);
  fs::permissions(encrypted, rw_owner);
  files.key = encrypted;
  // OpenSSL's default callback would wait for a passphrase on the terminal: no hang here.
  expect_refused(files, errc::tls_key_invalid, encrypted.string());
  files.passphrase = "wrong";
  expect_refused(files, errc::tls_key_invalid, encrypted.string());
  files.passphrase = "s3cret";
  auto refused = files.check();
  BOOST_TEST(!refused.has_value(), (refused ? refused->message() : ""));
}

BOOST_AUTO_TEST_CASE(a_certificate_not_valid_now_is_refused) {
  temp_dir dir;
  constexpr long day = 86400;
  auto files = certs::get().node();
  files.certificate = make_certificate_valid(dir.path() / "expired.pem", -2 * day, -day);
  expect_refused(files, errc::tls_certificate_expired, files.certificate.string());
  files.certificate = make_certificate_valid(dir.path() / "future.pem", day, 2 * day);
  expect_refused(files, errc::tls_certificate_expired, files.certificate.string());
  // The same construction, valid now, passes: the refusals above are the dates'.
  files.certificate = make_certificate_valid(dir.path() / "now.pem", -day, day);
  auto refused = files.check();
  BOOST_TEST(!refused.has_value(), (refused ? refused->message() : ""));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(apply)

using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(a_valid_set_lands_in_the_configuration) {
  temp_dir dir;
  // Relative paths become absolute: CAF opens them again for every connection.
  auto files = certs::get().node();
  fs::path cwd = fs::current_path();
  fs::current_path(certs::get().good);
  files.certificate = "node-a.pem";
  caf::actor_system_config cfg;
  pkit::net::link_timing timing{caf::timespan{200ms}, caf::timespan{1s}};
  auto refused = files.apply(cfg, timing);
  fs::current_path(cwd);
  BOOST_TEST_REQUIRE(!refused.has_value(), (refused ? refused->message() : ""));
  BOOST_TEST(cfg.openssl_certificate == (certs::get().good / "node-a.pem").string());
  BOOST_TEST(cfg.openssl_key == files.key.string());
  BOOST_TEST(cfg.openssl_cafile == files.ca.string());
  BOOST_TEST(cfg.openssl_capath.empty());
  BOOST_TEST(cfg.openssl_passphrase.empty());
  auto heartbeat = caf::get_if<caf::timespan>(&cfg, "middleman.heartbeat-interval");
  BOOST_TEST_REQUIRE(static_cast<bool>(heartbeat));
  BOOST_TEST(heartbeat->count() == caf::timespan{200ms}.count());
  auto timeout = caf::get_if<caf::timespan>(&cfg, "middleman.connection-timeout");
  BOOST_TEST_REQUIRE(static_cast<bool>(timeout));
  BOOST_TEST(timeout->count() == caf::timespan{1s}.count());
  auto ids = caf::get_or(cfg, "middleman.app-identifiers", std::vector<std::string>{});
  BOOST_TEST(ids == std::vector<std::string>{pkit::net::app_identifier});
}

BOOST_AUTO_TEST_CASE(a_refused_set_leaves_the_configuration_untouched) {
  auto files = certs::get().node();
  files.capath = "/etc/ssl/certs";
  caf::actor_system_config cfg;
  auto refused = files.apply(cfg);
  BOOST_TEST_REQUIRE(refused.has_value());
  BOOST_TEST(refused->code == pkit::net::make_error_code(errc::tls_capath_refused));
  BOOST_TEST(cfg.openssl_certificate.empty());
  BOOST_TEST(cfg.openssl_cafile.empty());
  BOOST_TEST(!caf::get_if<caf::timespan>(&cfg, "middleman.heartbeat-interval"));
  BOOST_TEST(caf::get_or(cfg, "middleman.app-identifiers", std::vector<std::string>{}).empty());
}

BOOST_AUTO_TEST_CASE(a_bad_timing_is_refused_naming_the_field) {
  struct row {
    caf::timespan interval, timeout;
    const char* field;
  };
  for (auto [interval, timeout, field] :
       {row{caf::timespan{0}, caf::timespan{5s}, "heartbeat_interval"},
        row{caf::timespan{-1s}, caf::timespan{5s}, "heartbeat_interval"},
        row{caf::timespan{1s}, caf::timespan{0}, "connection_timeout"},
        row{caf::timespan{1s}, caf::timespan{1s}, "connection_timeout"},
        row{caf::timespan{2s}, caf::timespan{1s}, "connection_timeout"}}) {
    caf::actor_system_config cfg;
    pkit::net::link_timing timing{interval, timeout};
    for (auto refused : {timing.check(), pkit::net::apply_link(cfg, timing),
                         certs::get().node().apply(cfg, timing)}) {
      BOOST_TEST_REQUIRE(refused.has_value());
      BOOST_TEST(refused->code == pkit::net::make_error_code(errc::link_timing_invalid));
      BOOST_TEST(refused->subject == field);
    }
    BOOST_TEST(cfg.openssl_certificate.empty());
    BOOST_TEST(!caf::get_if<caf::timespan>(&cfg, "middleman.heartbeat-interval"));
  }
}

BOOST_AUTO_TEST_CASE(messages_name_code_subject_and_reason) {
  pkit::net::error e{pkit::net::make_error_code(errc::tls_key_exposed), "/x/k.key", "mode 0644"};
  BOOST_TEST(e.message() == "TLS private key is accessible to group or others: /x/k.key: mode 0644");
  BOOST_TEST(e.code.category().name() == std::string{"pkit.net"});
  pkit::net::error bare{e.code, "", ""};
  BOOST_TEST(bare.message() == e.code.message());
}

BOOST_AUTO_TEST_SUITE_END()
