// prepare_links: check everything first, then load and apply — a refusal must leave the
// configuration untouched (modules cannot be unloaded).

#include <pkit/net/link_setup.hpp>

#include <pkit/net/node_agent.hpp>

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>

namespace pkit::net {

std::optional<error> prepare_links(caf::actor_system_config& cfg, const tls_files* tls, const link_timing& timing,
                                   tls_snapshot& snapshot) {
  if (auto bad = timing.check()) return bad;
  if (tls != nullptr)
    if (auto bad = snapshot.take(*tls)) return bad;
  cfg.load<caf::io::middleman>();
  if (tls != nullptr) cfg.load<caf::openssl::manager>();  // after the middleman: CAF requires it
  init(cfg);
  return tls != nullptr ? snapshot.files().apply(cfg, timing) : apply_link(cfg, timing);
}

}  // namespace pkit::net
