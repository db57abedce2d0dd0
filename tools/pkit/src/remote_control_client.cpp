#include <pkit/tool/remote_control_client.hpp>

#include <pkit/tool/control_protocol.hpp>
#include <pkit/tool/remote_control.hpp>

#include <pkit/net/link_setup.hpp>
#include <pkit/net/link_timing.hpp>
#include <pkit/net/listen_policy.hpp>
#include <pkit/net/tls_snapshot.hpp>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/scoped_actor.hpp>

#include <set>

namespace pkit::tool {

namespace {

using json = nlohmann::json;
using kind = control_client_error::kind;

caf::timespan as_timespan(std::chrono::milliseconds t) {
  // Negative: for ever (a day is as good, and keeps the deadline arithmetic finite).
  return t.count() < 0 ? caf::timespan{std::chrono::hours(24)} : caf::timespan{t};
}

}  // namespace

struct remote_control_client::impl {
  net::tls_snapshot snapshot;  // outlives the system, which reads the copies
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<caf::scoped_actor> self;
  remote_control_actor server;
  std::string where;
  bool tls = false;
  std::int64_t next_id = 1;

  ~impl() {
    server = nullptr;
    self.reset();
    sys.reset();
  }

  [[noreturn]] void fail(const caf::error& err, const std::string& doing) {
    const std::string text = sys->render(err);
    if (err == caf::sec::request_timeout)
      throw control_client_error(kind::timeout, "no answer from " + where + " in time (" + doing + ")");
    if (err == caf::sec::cannot_connect_to_node)
      throw control_client_error(kind::no_server, "no pkit run listening at " + where + " (" + text + ")");
    if (err == caf::sec::incompatible_application_ids)
      throw control_client_error(kind::io, where + ": " + net::incompatible_release_text());
    if (err == caf::sec::disconnect_during_handshake)
      throw control_client_error(kind::io, "the link to " + where + " closed during its handshake: " +
                                               (tls ? "it does not trust our certificate or we do not trust its"
                                                    : "it may require TLS (--tls-cert, --tls-key, --tls-ca)") +
                                               " (" + text + ")");
    throw control_client_error(kind::io, doing + " " + where + ": " + text);
  }

  void connect(const std::string& host, std::uint16_t port, const std::optional<net::tls_files>& tls,
               std::chrono::milliseconds timeout) {
    if (!tls && !net::is_loopback_address(host))
      throw control_client_error(kind::io, where + " is beyond loopback: remote control needs mutual TLS "
                                               "(--tls-cert, --tls-key, --tls-ca)");
    // The start-up of pkit's own TLS processes: the same checks of the files.
    if (auto bad = net::prepare_links(cfg, tls ? &*tls : nullptr, net::link_timing{}, snapshot))
      throw control_client_error(kind::io, bad->message());
    remote_control_init(cfg);
    this->tls = tls.has_value();
    cfg.set("scheduler.max-threads", std::size_t{1});
    sys = std::make_unique<caf::actor_system>(cfg);
    if (tls)
      if (auto off = net::require_authenticated(*sys, snapshot.files()))
        throw control_client_error(kind::io, off->message());
    self = std::make_unique<caf::scoped_actor>(*sys);
    // Never the blocking remote_actor(): its wait has no end (ISSUE11_DESIGN §1).
    auto mm = tls ? caf::actor_cast<caf::actor>(sys->openssl_manager().actor_handle())
                  : caf::actor_cast<caf::actor>(sys->middleman().actor_handle());
    // Handlers only record: nothing is thrown through CAF's receive.
    caf::error failed;
    std::string refused;
    (*self)
        ->request(mm, as_timespan(timeout), caf::connect_atom_v, host, port)
        .receive(
            [&](caf::node_id&, caf::strong_actor_ptr& ptr, std::set<std::string>& ifs) {
              if (!ptr) refused = "no actor published at " + where;
              else if (!sys->assignable<remote_control_actor>(ifs))
                refused = "what listens at " + where + " is not the remote control of pkit run";
              else server = caf::actor_cast<remote_control_actor>(ptr);
            },
            [&](caf::error& err) { failed = std::move(err); });
    if (failed) fail(failed, "connecting to");
    if (!refused.empty()) throw control_client_error(kind::protocol, refused);
  }
};

remote_control_client::remote_control_client(const std::string& host, std::uint16_t port,
                                             const std::optional<net::tls_files>& tls,
                                             std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>()) {
  const bool v6 = host.find(':') != std::string::npos;
  impl_->where = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  impl_->connect(host, port, tls, timeout);
}

remote_control_client::~remote_control_client() = default;

control_reply remote_control_client::request(const std::string& command, const json& args,
                                             std::chrono::milliseconds timeout) {
  const json line{{"id", impl_->next_id++}, {"command", command}, {"args", args}};
  std::string reply_line;
  caf::error failed;
  (*impl_->self)
      ->request(impl_->server, as_timespan(timeout), ctl_request_atom_v,
                line.dump(-1, ' ', false, json::error_handler_t::replace))
      .receive([&](std::string& r) { reply_line = std::move(r); },
               [&](caf::error& err) { failed = std::move(err); });
  if (failed) impl_->fail(failed, command + " at");
  while (!reply_line.empty() && reply_line.back() == '\n') reply_line.pop_back();
  std::string error;
  auto decoded = decode_server_line(reply_line, error);
  if (!decoded || decoded->what != decoded_line::kind::reply)
    throw control_client_error(kind::protocol, impl_->where + " answered something that is not the protocol: " +
                                                   (decoded ? "not a reply" : error));
  return decoded->reply;
}

control_reply remote_control_client::stream(const std::string& command, const json& args,
                                            const std::function<bool(const json&)>& on_item,
                                            std::chrono::milliseconds timeout) {
  control_reply opened = request(command, args, timeout);
  if (!opened.ok) return opened;
  const auto session = opened.result.value("session", std::uint64_t{0});
  // An endpoint that answers a stream's opening has the stream interface.
  auto streams = caf::actor_cast<remote_stream_actor>(impl_->server);
  // A pull is held at most about a second: no answer in 5 s means the endpoint is gone
  // (an actor killed under its link answers nothing).
  const auto pull_limit = std::chrono::milliseconds(5000);
  for (;;) {
    std::vector<std::string> got;
    caf::error failed;
    (*impl_->self)
        ->request(streams, as_timespan(pull_limit), ctl_next_atom_v, session)
        .receive([&](std::vector<std::string>& v) { got = std::move(v); },
                 [&](caf::error& err) { failed = std::move(err); });
    if (failed) {
      opened.result["end"] = "closed";  // the link or the endpoint is gone
      return opened;
    }
    for (auto& line : got) {
      std::string error;
      auto d = decode_server_line(line, error);
      if (!d) throw control_client_error(kind::protocol, impl_->where + ": " + error);
      if (d->what == decoded_line::kind::end) {
        opened.result["end"] = d->end_reason;
        return opened;
      }
      if (d->what == decoded_line::kind::item && !on_item(d->item)) {
        opened.result["end"] = "stopped";
        return opened;
      }
    }
  }
}

bool remote_control_client::wait_closed(std::chrono::milliseconds timeout) {
  auto& self = *impl_->self;
  self->monitor(impl_->server);
  bool closed = false;
  self->receive([&](caf::down_msg&) { closed = true; },
                caf::after(as_timespan(timeout)) >> [] {});
  return closed;
}

}  // namespace pkit::tool
