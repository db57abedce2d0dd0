#include <pkit/tool/remote_control_server.hpp>

#include <pkit/tool/remote_control.hpp>
#include <pkit/tool/version.hpp>

#include <pkit/net/link_setup.hpp>
#include <pkit/net/listen_policy.hpp>
#include <pkit/net/tls_snapshot.hpp>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <condition_variable>
#include <mutex>
#include <set>

#include <unistd.h>

namespace pkit::tool {

void remote_control_init(caf::actor_system_config& cfg) { cfg.add_message_types<caf::id_block::pkit_ctl>(); }

namespace {

using json = nlohmann::json;

/// How long stop() lets clients that were answered read their replies and leave (a
/// `pkit ctl shutdown --wait` stays until the link closes: it costs that much).
constexpr auto peer_grace = std::chrono::seconds(2);

/// The reply line to one request line: the socket's checks (decode_request), then the
/// daemon's handle() — the one implementation of every command. Blocks while handle() does.
std::string answer(control_handler& handler, const std::string& line) {
  auto decoded = decode_request(line);
  if (!decoded.request) return encode_reply(decoded.id, decoded.error);
  const control_request& req = *decoded.request;
  if (req.command == "hello") {
    json result{{"protocol", control_protocol_version}, {"version", std::string(version())}, {"pid", ::getpid()}};
    return encode_reply(req.id, control_reply::success(std::move(result)));
  }
  if (req.is_stream)
    // A stream needs flow control per client, which this request/reply carrier lacks
    // (a slow reader would pile items up in CAF's buffers, unbounded).
    return encode_reply(req.id, control_reply::failure("stream_not_remote",
                                                       "`" + req.command +
                                                           "` is a stream, not served over the network (pkit ctl "
                                                           "--host): run `pkit ctl " + req.command +
                                                           "` on the machine of pkit run"));
  try {
    return encode_reply(req.id, handler.handle(req.command, req.args));
  } catch (const std::exception& e) {
    return encode_reply(req.id, control_reply::failure("internal", std::string("the daemon failed to answer: ") + e.what()));
  }
}

/// One request on a thread of its own (spawned detached): handle() may wait for the
/// supervisors, which must never cost a scheduler thread of the endpoint.
caf::behavior worker(caf::event_based_actor* self, control_handler* handler) {
  return {[self, handler](ctl_request_atom, const std::string& line) -> std::string {
    self->quit();
    return answer(*handler, line);
  }};
}

/// What stop() waits for, shared by the front actor and the server: the requests being
/// answered, and the clients that asked something and are still connected. A reply is
/// delivered to CAF, which writes it later; ending the system before a client has its
/// reply (`shutdown`: the tree ends at once) would lose it, so stop() waits for the
/// clients to go (bounded) once every reply is out.
struct drain_state {
  std::mutex m;
  std::condition_variable cv;
  unsigned in_flight = 0;
  std::size_t peers = 0;
  bool draining = false;
};

struct front_state {
  control_handler* handler = nullptr;
  std::size_t max_bytes = 0;
  unsigned max_in_flight = 0;
  std::shared_ptr<drain_state> drain;
  std::set<caf::actor_addr> peers;  // remote senders monitored
  static inline const char* name = "pkit.remote_control";
};

using front_pointer = remote_control_actor::stateful_pointer<front_state>;

std::string refusal(std::string code, std::string message) {
  return encode_reply(nullptr, control_reply::failure(std::move(code), std::move(message)));
}

/// Admits one request (under the bounds) and counts its sender; "" when admitted, else
/// the reply line that refuses it.
std::string admit(front_pointer self, const std::string& line) {
  auto& st = self->state;
  if (line.size() > st.max_bytes)
    return refusal("bad_request", "the request is larger than " + std::to_string(st.max_bytes) + " bytes");
  std::lock_guard lock(st.drain->m);
  if (st.drain->draining) return refusal("shutting_down", "pkit run is shutting down");
  if (st.drain->in_flight >= st.max_in_flight)
    return refusal("busy", std::to_string(st.drain->in_flight) + " requests are being answered: try again");
  ++st.drain->in_flight;
  const auto& sender = self->current_sender();
  if (sender && sender->node() != self->node() && st.peers.insert(caf::actor_cast<caf::actor_addr>(sender)).second) {
    self->monitor(sender);
    ++st.drain->peers;
  }
  return {};
}

void done(front_pointer self, caf::response_promise& promise, std::string reply) {
  promise.deliver(std::move(reply));
  auto& d = *self->state.drain;
  std::lock_guard lock(d.m);
  --d.in_flight;
  d.cv.notify_all();
}

/// The published actor: bounds the size and the number of requests, hands each to a
/// worker and relays its reply. Never blocks (its lock is held for counting only).
remote_control_actor::behavior_type front(front_pointer self, control_handler* handler, std::size_t max_bytes,
                                          unsigned max_in_flight, std::shared_ptr<drain_state> drain) {
  self->state.handler = handler;
  self->state.max_bytes = max_bytes;
  self->state.max_in_flight = max_in_flight;
  self->state.drain = std::move(drain);
  self->set_down_handler([self](caf::down_msg& dm) {
    if (self->state.peers.erase(dm.source) == 0) return;
    auto& d = *self->state.drain;
    std::lock_guard lock(d.m);
    --d.peers;
    d.cv.notify_all();
  });
  return {[self](ctl_request_atom, std::string& line) -> caf::result<std::string> {
    if (auto refused = admit(self, line); !refused.empty()) return refused;
    auto promise = self->make_response_promise<std::string>();
    auto w = self->spawn<caf::detached>(worker, self->state.handler);
    // The worker always answers (handle() is bounded): no timeout of our own to race it.
    self->request(w, caf::infinite, ctl_request_atom_v, std::move(line))
        .then([self, promise](std::string& reply) mutable { done(self, promise, std::move(reply)); },
              [self, promise](caf::error& err) mutable {
                done(self, promise, refusal("internal", self->system().render(err)));
              });
    return promise;
  }};
}

}  // namespace

struct remote_control_server::impl {
  // Declared before the system, which reads the copies at every connection.
  net::tls_snapshot snapshot;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  remote_control_actor actor;
  std::shared_ptr<drain_state> drain = std::make_shared<drain_state>();
  std::uint16_t port = 0;
  std::mutex stop_m;
  bool stopped = false;

  void start(control_handler& handler, const remote_control_options& o) {
    const net::tls_files* tls = o.tls ? &*o.tls : nullptr;
    const std::string where = o.host + ":" + std::to_string(o.port);
    if (o.host.empty()) throw remote_control_error("control_listen: no address (every interface is never meant)");
    if (auto bad = net::check_listen(o.host, tls)) throw remote_control_error(bad->message());
    // The same start-up as the links to nodes and `pkit node` (one sequence, one set of checks).
    if (auto bad = net::prepare_links(cfg, tls, net::link_timing{}, snapshot))
      throw remote_control_error("the control listener: " + bad->message());
    remote_control_init(cfg);
    // A few threads do: the endpoint only relays, workers are threads of their own.
    cfg.set("scheduler.max-threads", std::size_t{2});
    try {
      sys = std::make_unique<caf::actor_system>(cfg);
    } catch (const std::exception& e) {
      throw remote_control_error(std::string("the control listener's actor system did not start: ") + e.what());
    }
    if (tls)
      if (auto off = net::require_authenticated(*sys, snapshot.files()))
        throw remote_control_error("the control listener: " + off->message());
    actor = sys->spawn(front, &handler, o.max_request_bytes, std::max(1u, o.max_in_flight), drain);
    auto published = tls ? caf::openssl::publish(actor, o.port, o.host.c_str())
                         : sys->middleman().publish(actor, o.port, o.host.c_str());
    if (!published) {
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
      actor = nullptr;
      throw remote_control_error("cannot listen on " + where + ": " + sys->render(published.error()));
    }
    port = *published;
  }

  void stop() {
    std::lock_guard lock(stop_m);
    if (stopped || !sys) return;
    stopped = true;
    {
      // No new request; every one in flight answered (each handle() is bounded); then
      // the clients that asked get a moment to read their replies and leave.
      std::unique_lock drain_lock(drain->m);
      drain->draining = true;
      drain->cv.wait(drain_lock, [this] { return drain->in_flight == 0; });
      drain->cv.wait_for(drain_lock, peer_grace, [this] { return drain->peers == 0; });
    }
    // Ending the system closes the listener and every connection.
    if (actor) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    actor = nullptr;
    sys.reset();
  }
};

remote_control_server::remote_control_server(control_handler& handler, remote_control_options options)
    : impl_(std::make_unique<impl>()) {
  try {
    impl_->start(handler, options);
  } catch (...) {
    impl_->stop();
    throw;
  }
}

remote_control_server::~remote_control_server() { stop(); }

std::uint16_t remote_control_server::port() const noexcept { return impl_->port; }

void remote_control_server::stop() { impl_->stop(); }

}  // namespace pkit::tool
