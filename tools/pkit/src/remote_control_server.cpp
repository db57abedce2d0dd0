#include <pkit/tool/remote_control_server.hpp>

#include <pkit/tool/remote_control.hpp>
#include <pkit/tool/version.hpp>

#include "remote_control_front.hpp"

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

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include <unistd.h>

namespace pkit::tool {

void remote_control_init(caf::actor_system_config& cfg) { cfg.add_message_types<caf::id_block::pkit_ctl>(); }

namespace detail {

void finish_request(drain_state& d) {
  std::lock_guard lock(d.m);
  --d.in_flight;
  d.cv.notify_all();
}

void close_slot(const std::shared_ptr<stream_slot>& slot, drain_state& d) {
  std::unique_ptr<control_stream> stream;
  {
    std::lock_guard lock(slot->m);
    stream = std::move(slot->stream);
    slot->closed = true;
  }
  if (!stream) return;
  stream.reset();  // after this, its sink is never called again
  std::lock_guard lock(d.m);
  d.open.erase(slot);
  d.cv.notify_all();
}

std::string refusal(std::string code, std::string message) {
  return encode_reply(nullptr, control_reply::failure(std::move(code), std::move(message)));
}

// Its messages to itself are in the published interface, so a peer could send them.
// (CAF 0.17.6 lets a connected peer forge a registered local actor as the sender of a
// routed message: an authenticated controller could end the streams it follows and
// others' — less than the `shutdown` it may ask for anyway.)
bool from_here(front_pointer self) {
  const auto& sender = self->current_sender();
  return sender && sender->node() == self->node();
}

}  // namespace detail

namespace {

using namespace detail;

/// How long stop() lets clients that were answered read their replies and leave (a
/// `pkit ctl shutdown --wait` stays until the link closes: it costs that much).
constexpr auto peer_grace = std::chrono::seconds(2);
/// How long stop() waits for the requests in flight (each handle() is bounded well
/// below) and for the sessions' own ending of their streams before it closes them.
constexpr auto request_grace = std::chrono::seconds(120);
constexpr auto stream_grace = std::chrono::seconds(2);

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
  try {
    return encode_reply(req.id, handler.handle(req.command, req.args));
  } catch (const std::exception& e) {
    return encode_reply(req.id, control_reply::failure("internal", std::string("the daemon failed to answer: ") + e.what()));
  }
}

/// One request on a thread of its own (spawned detached): handle() may wait for the
/// supervisors, which must never cost a scheduler thread of the endpoint. It counts
/// itself out (not the front: a front killed meanwhile must not strand the count).
caf::behavior worker(caf::event_based_actor* self, control_handler* handler, std::shared_ptr<drain_state> drain) {
  return {[self, handler, drain](ctl_request_atom, const std::string& line) -> std::string {
    self->quit();
    std::string reply = answer(*handler, line);
    finish_request(*drain);
    return reply;
  }};
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

/// The published actor: bounds the size and the number of requests, hands each to a
/// worker and relays its reply; keeps the stream sessions (remote_control_streams.cpp).
/// Never blocks (its locks are held for counting and queueing only).
front_actor::behavior_type front(front_pointer self, control_handler* handler, std::size_t max_bytes,
                                 unsigned max_in_flight, std::shared_ptr<drain_state> drain) {
  self->state.handler = handler;
  self->state.max_bytes = max_bytes;
  self->state.max_in_flight = max_in_flight;
  self->state.drain = std::move(drain);
  self->set_down_handler([self](caf::down_msg& dm) {
    // A client gone: its sessions end (nobody will poll them).
    std::vector<std::uint64_t> gone;
    for (const auto& [id, s] : self->state.sessions)
      if (s.owner == dm.source) gone.push_back(id);
    for (auto id : gone) end_session(self, id);
    if (self->state.peers.erase(dm.source) == 0) return;
    auto& d = *self->state.drain;
    std::lock_guard lock(d.m);
    --d.peers;
    d.cv.notify_all();
  });
  return {
      [self](ctl_request_atom, std::string& line) -> caf::result<std::string> {
        if (auto refused = admit(self, line); !refused.empty()) return refused;
        if (auto decoded = decode_request(line); decoded.request && decoded.request->is_stream)
          return open_session(self, *decoded.request, std::move(line));
        auto promise = self->make_response_promise<std::string>();
        auto w = self->spawn<caf::detached>(worker, self->state.handler, self->state.drain);
        // The worker always answers (handle() is bounded): no timeout of our own to race it.
        self->request(w, caf::infinite, ctl_request_atom_v, std::move(line))
            .then([promise](std::string& reply) mutable { promise.deliver(std::move(reply)); },
                  [self, promise](caf::error& err) mutable {
                    promise.deliver(refusal("internal", self->system().render(err)));
                  });
        return promise;
      },
      [self](ctl_next_atom, std::uint64_t id) -> caf::result<lines> { return next_lines(self, id); },
      [self](ctl_wake_atom, std::uint64_t id) {
        if (from_here(self)) serve_poll(self, id);
      },
      [self](ctl_expire_atom, std::uint64_t seq) {
        if (from_here(self)) expire(self, seq);
      },
      [self](ctl_end_all_atom) {
        if (from_here(self)) end_all(self);
      }};
}

}  // namespace

struct remote_control_server::impl {
  // Declared before the system, which reads the copies at every connection.
  net::tls_snapshot snapshot;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  front_actor actor;
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
      drain->cv.wait_for(drain_lock, request_grace, [this] { return drain->in_flight == 0; });
      // Every stream ends ("shutdown", for its client to read) and the daemon's streams
      // close; what the endpoint did not close (a peer may have killed it) is closed here:
      // none may outlive this call (the daemon goes next).
      if (actor) caf::send_as(actor, actor, ctl_end_all_atom_v);
      drain->cv.wait_for(drain_lock, stream_grace, [this] { return drain->open.empty(); });
      const auto left = drain->open;
      drain->closed_all = true;  // a worker still opening (a front killed) keeps nothing
      drain_lock.unlock();
      for (const auto& slot : left) close_slot(slot, *drain);
      drain_lock.lock();
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
