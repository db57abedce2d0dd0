#include <pkit/net/error.hpp>

namespace pkit::net {

namespace {

const char* describe(errc e) {
  switch (e) {
    case errc::tls_incomplete: return "TLS needs a certificate, a key and a CA file";
    case errc::tls_file_missing: return "TLS file does not exist";
    case errc::tls_file_unreadable: return "TLS file cannot be read";
    case errc::tls_not_regular_file: return "TLS file is not a regular file";
    case errc::tls_key_exposed: return "TLS private key is accessible to group or others";
    case errc::tls_file_writable: return "TLS file is writable by group or others";
    case errc::tls_certificate_invalid: return "TLS certificate chain does not load";
    case errc::tls_certificate_expired: return "TLS certificate is not valid now";
    case errc::tls_certificate_wrong_use: return "TLS certificate is not a TLS client and server leaf";
    case errc::tls_key_invalid: return "TLS private key does not load";
    case errc::tls_key_mismatch: return "TLS private key does not match the certificate";
    case errc::tls_ca_empty: return "TLS CA file is empty";
    case errc::tls_ca_invalid: return "TLS CA file holds no loadable certificate";
    case errc::tls_snapshot_failed: return "TLS files cannot be copied into memory";
    case errc::tls_capath_refused: return "TLS CA directory (capath) refused";
    case errc::tls_ca_too_many: return "TLS CA file holds too many certificates";
    case errc::tls_ca_not_root: return "TLS CA file holds a certificate that is no self-signed CA";
    case errc::tls_ca_public: return "TLS CA file holds a public (system-trusted) CA";
    case errc::tls_ca_same_role: return "TLS CA file trusts this process's own role";
    case errc::tls_file_foreign_owner: return "TLS file is owned by another user";
    case errc::tls_directory_writable: return "TLS file is in a directory others may write";
    case errc::tls_file_too_large: return "TLS file is too large";
    case errc::tls_passphrase_invalid: return "TLS key passphrase cannot be passed on whole";
    case errc::tls_not_in_effect: return "TLS set-up not in effect in the actor system";
    case errc::link_timing_invalid: return "heartbeat interval or connection timeout invalid";
    case errc::listen_needs_tls: return "listening beyond loopback needs TLS";
    case errc::spec_no_program: return "spec names no program";
    case errc::spec_path_not_absolute: return "path is not absolute and normalised";
    case errc::spec_program_not_allowed: return "program not allowed";
    case errc::spec_target_refused: return "fork-server targets are not allowed remotely";
    case errc::spec_output_refused: return "files as standard streams are not allowed remotely";
    case errc::spec_cwd_not_allowed: return "working directory not allowed";
    case errc::spec_credentials_not_allowed: return "user or group not allowed";
    case errc::spec_env_not_allowed: return "environment variable not allowed";
    case errc::spec_out_of_range: return "spec value out of range";
    case errc::spec_rlimits_refused: return "resource limits are not allowed remotely";
    case errc::spec_too_large: return "spec too large";
    case errc::spec_malformed: return "spec malformed";
    case errc::spec_args_not_allowed: return "arguments not allowed for this program";
    case errc::spec_process_group_required: return "remote child needs its own process group";
    case errc::spec_path_not_canonical: return "path is not its own resolved path";
    case errc::allow_list_invalid: return "allow-list invalid";
    case errc::node_protocol_mismatch: return "node protocol version mismatch";
    case errc::node_child_limit: return "node's limit of live children reached";
    case errc::node_relay_missing: return "spawn without a relay actor";
    case errc::node_address_invalid: return "invalid node address";
    case errc::connect_needs_tls: return "a node beyond loopback needs TLS";
    case errc::node_previous_run_stuck: return "the previous run of this child did not stop on the node";
    case errc::node_shutting_down: return "the node is stopping";
    case errc::node_child_retired: return "the node is stopping this child for good";
    case errc::node_not_permitted: return "only the controller that asked for this child may act on it";
  }
  return "unknown pkit.net error";
}

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pkit.net"; }
  std::string message(int value) const override {
    return describe(static_cast<errc>(value));
  }
};

}  // namespace

const std::error_category& net_category() noexcept {
  static const category instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), net_category()};
}

std::string error::peer_message() const {
  std::string text = code.message();
  for (const std::string* part : {&subject, &reason}) {
    if (!part->empty()) {
      text += ": ";
      text += *part;
    }
  }
  return text;
}

std::string error::message() const {
  std::string text = peer_message();
  if (!detail.empty())
    text += " (" + detail + ")";
  return text;
}

}  // namespace pkit::net
