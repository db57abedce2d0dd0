#include <pkit/tool/remote_control_server.hpp>

#include <pkit/tool/remote_control.hpp>
#include <pkit/tool/version.hpp>

#include "remote_stream_queue.hpp"

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
/// answered, the daemon's streams still open, and the clients that asked something and
/// are still connected. A reply is delivered to CAF, which writes it later; ending the
/// system before a client has its reply (`shutdown`: the tree ends at once) would lose
/// it, so stop() waits for the clients to go (bounded) once every reply is out.
struct drain_state {
  std::mutex m;
  std::condition_variable cv;
  unsigned in_flight = 0;
  unsigned streams = 0;
  std::size_t peers = 0;
  bool draining = false;
};

// Streams (remote_control.hpp): pulled by their client, bounded per session.
constexpr std::size_t max_streams = 8;                       // sessions at once
constexpr std::size_t max_queued_bytes = std::size_t{4} << 20;  // per session, as the socket
constexpr std::size_t max_poll_bytes = std::size_t{512} << 10;  // lines in one poll's reply
constexpr auto poll_hold = std::chrono::seconds(1);          // a poll with nothing to take
constexpr auto session_idle = std::chrono::seconds(15);      // no poll for that long: gone
constexpr auto expire_every = std::chrono::milliseconds(250);

using steady = std::chrono::steady_clock;
using lines = std::vector<std::string>;

/// The daemon's stream of one session: stored by the worker that opened it, destroyed by
/// a worker too (destroying it waits for a sink call under way: never on the endpoint's
/// scheduler).
struct stream_slot {
  std::mutex m;
  std::unique_ptr<control_stream> stream;
};

struct stream_session {
  caf::actor_addr owner;  // the client actor that opened it: the only one that may poll
  json id;                // the opening request's id, on every line
  std::shared_ptr<detail::remote_stream_queue> queue;
  std::shared_ptr<stream_slot> slot;
  std::optional<caf::typed_response_promise<lines>> poll;  // a poll waiting for lines
  steady::time_point poll_since{};
  steady::time_point last_poll = steady::now();
};

/// The endpoint's interface: the published one plus its messages to itself.
using front_actor = remote_stream_actor::extend<caf::reacts_to<ctl_wake_atom, std::uint64_t>,
                                                caf::reacts_to<ctl_expire_atom>, caf::reacts_to<ctl_end_all_atom>>;

struct front_state {
  control_handler* handler = nullptr;
  std::size_t max_bytes = 0;
  unsigned max_in_flight = 0;
  std::shared_ptr<drain_state> drain;
  std::set<caf::actor_addr> peers;  // remote senders monitored
  std::map<std::uint64_t, stream_session> sessions;
  std::uint64_t next_session = std::random_device{}() | 1;  // not guessable by position
  bool expiring = false;                                    // a ctl_expire is scheduled
  static inline const char* name = "pkit.remote_control";
};

using front_pointer = front_actor::stateful_pointer<front_state>;

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

template <class Promise>
void done(front_pointer self, Promise& promise, std::string reply) {
  promise.deliver(std::move(reply));
  auto& d = *self->state.drain;
  std::lock_guard lock(d.m);
  --d.in_flight;
  d.cv.notify_all();
}

// -- streams ------------------------------------------------------------------------------

/// Whether the current message is the endpoint's own (its timer, a sink's wake, stop(),
/// all sent as itself): its messages to itself are in the published interface, so a peer
/// could send them. (CAF 0.17.6 lets a connected peer forge a registered local actor as
/// the sender of a routed message: an authenticated controller could end the streams it
/// follows and others' — less than the `shutdown` it may ask for anyway.)
bool from_here(front_pointer self) {
  const auto& sender = self->current_sender();
  return sender && sender->node() == self->node();
}

/// Opens the daemon's stream for one session: a worker, as handle() is one.
caf::behavior stream_opener(caf::event_based_actor* self, control_handler* handler, std::shared_ptr<stream_slot> slot,
                            std::shared_ptr<drain_state> drain, control_handler::sink to, std::uint64_t session) {
  return {[self, handler, slot, drain, to, session](ctl_request_atom, const std::string& line) -> std::string {
    self->quit();
    const control_request req = *decode_request(line).request;  // checked by the front
    control_reply error = control_reply::failure("internal", "the daemon could not open the stream");
    std::unique_ptr<control_stream> stream;
    try {
      stream = handler->open_stream(req.command, req.args, to, error);
    } catch (const std::exception& e) {
      error = control_reply::failure("internal", std::string("the daemon failed to open the stream: ") + e.what());
    }
    if (!stream) return encode_reply(req.id, error.ok ? control_reply::failure("internal", "no stream") : error);
    {
      std::lock_guard lock(drain->m);
      ++drain->streams;
    }
    std::lock_guard lock(slot->m);
    slot->stream = std::move(stream);
    return encode_reply(req.id, control_reply::success({{"stream", req.command}, {"session", session}}));
  }};
}

/// Destroys a session's daemon stream (if it was opened) on a thread of its own.
caf::behavior stream_closer(caf::event_based_actor* self, std::shared_ptr<stream_slot> slot,
                            std::shared_ptr<drain_state> drain) {
  std::unique_ptr<control_stream> stream;
  {
    std::lock_guard lock(slot->m);
    stream = std::move(slot->stream);
  }
  if (stream) {
    stream.reset();  // after this, its sink is never called again
    std::lock_guard lock(drain->m);
    --drain->streams;
    drain->cv.notify_all();
  }
  self->quit();
  return {};
}

void close_stream(front_pointer self, stream_session& s) {
  if (s.slot) self->spawn<caf::detached>(stream_closer, std::exchange(s.slot, nullptr), self->state.drain);
}

/// Ends session `id`: its waiting poll gets what is queued, its stream is closed.
void end_session(front_pointer self, std::uint64_t id) {
  auto it = self->state.sessions.find(id);
  if (it == self->state.sessions.end()) return;
  if (it->second.poll) it->second.poll->deliver(it->second.queue->take(max_poll_bytes));
  close_stream(self, it->second);
  self->state.sessions.erase(it);
}

/// Answers session `id`'s waiting poll if lines are queued; ends the session once its end
/// line is out.
void serve_poll(front_pointer self, std::uint64_t id) {
  auto it = self->state.sessions.find(id);
  if (it == self->state.sessions.end() || !it->second.poll || !it->second.queue->ready()) return;
  std::exchange(it->second.poll, std::nullopt)->deliver(it->second.queue->take(max_poll_bytes));
  if (it->second.queue->finished()) end_session(self, id);
}

void keep_expiring(front_pointer self) {
  if (self->state.expiring || self->state.sessions.empty()) return;
  self->state.expiring = true;
  self->delayed_send(self, expire_every, ctl_expire_atom_v);
}

/// Polls held long enough get nothing; sessions nobody polls any more end.
void expire(front_pointer self) {
  self->state.expiring = false;
  const auto now = steady::now();
  std::vector<std::uint64_t> gone;
  for (auto& [id, s] : self->state.sessions) {
    if (s.poll && now - s.poll_since >= poll_hold) std::exchange(s.poll, std::nullopt)->deliver(lines{});
    if (!s.poll && now - s.last_poll >= session_idle) gone.push_back(id);
  }
  for (auto id : gone) end_session(self, id);
  keep_expiring(self);
}

caf::result<std::string> open_session(front_pointer self, const control_request& req, std::string line) {
  auto& st = self->state;
  // Before the promise: making it takes the sender out of the current message.
  const auto owner = caf::actor_cast<caf::actor_addr>(self->current_sender());
  auto promise = self->make_response_promise<std::string>();
  if (st.sessions.size() >= max_streams) {
    done(self, promise, encode_reply(req.id, control_reply::failure(
                                                 "busy", std::to_string(max_streams) +
                                                             " streams are followed over the network already")));
    return promise;
  }
  const std::uint64_t id = st.next_session++;
  stream_session s;
  s.owner = owner;
  s.id = req.id;
  s.queue = std::make_shared<detail::remote_stream_queue>(max_queued_bytes);
  s.slot = std::make_shared<stream_slot>();
  // The sink runs on the daemon's threads: it queues and wakes the endpoint (weakly: a
  // sink must not keep the endpoint alive).
  control_handler::sink to = [queue = s.queue, me = caf::actor_cast<caf::actor_addr>(self), id,
                              rid = req.id](const json& item) {
    const bool end = item.is_null();
    const bool go_on = queue->push(end ? encode_end(rid, "ended") : encode_item(rid, item), end, encode_end(rid, "overrun"));
    if (auto front = caf::actor_cast<caf::actor>(me)) caf::send_as(front, front, ctl_wake_atom_v, id);
    return go_on;
  };
  auto slot = s.slot;
  auto w = self->spawn<caf::detached>(stream_opener, st.handler, slot, st.drain, std::move(to), id);
  st.sessions.emplace(id, std::move(s));
  keep_expiring(self);
  // The session may have ended while its stream opened (its client gone): then the
  // stream the opener stored is closed here, or it would never be.
  auto settle = [self, id, slot] {
    auto it = self->state.sessions.find(id);
    bool opened = false;
    {
      std::lock_guard lock(slot->m);
      opened = slot->stream != nullptr;
    }
    if (it == self->state.sessions.end()) self->spawn<caf::detached>(stream_closer, slot, self->state.drain);
    else if (!opened) end_session(self, id);  // refused: nothing to follow
  };
  self->request(w, caf::infinite, ctl_request_atom_v, std::move(line))
      .then(
          [self, promise, settle](std::string& reply) mutable {
            settle();
            done(self, promise, std::move(reply));
          },
          [self, promise, settle](caf::error& err) mutable {
            settle();
            done(self, promise, refusal("internal", self->system().render(err)));
          });
  return promise;
}

caf::result<lines> next_lines(front_pointer self, std::uint64_t id) {
  auto it = self->state.sessions.find(id);
  if (it == self->state.sessions.end() ||
      it->second.owner != caf::actor_cast<caf::actor_addr>(self->current_sender()))
    return lines{encode_end(nullptr, "unknown_session")};
  auto& s = it->second;
  s.last_poll = steady::now();
  if (s.poll) std::exchange(s.poll, std::nullopt)->deliver(lines{});  // one poll at a time
  if (s.queue->ready()) {
    auto out = s.queue->take(max_poll_bytes);
    if (s.queue->finished()) end_session(self, id);
    return out;
  }
  s.poll = self->make_response_promise<lines>();
  s.poll_since = s.last_poll;
  keep_expiring(self);
  return *s.poll;
}

/// pkit run stops: every stream ends with "shutdown" (its client reads that), and the
/// daemon's streams are closed now.
void end_all(front_pointer self) {
  for (auto& [id, s] : self->state.sessions) {
    s.queue->push(encode_end(s.id, "shutdown"), true, encode_end(s.id, "shutdown"));
    close_stream(self, s);
  }
  std::vector<std::uint64_t> ids;
  for (const auto& [id, s] : self->state.sessions) ids.push_back(id);
  for (auto id : ids) serve_poll(self, id);
}

// -- the published actor --------------------------------------------------------------------

/// The published actor: bounds the size and the number of requests, hands each to a
/// worker and relays its reply; keeps the stream sessions. Never blocks (its locks are
/// held for counting and queueing only).
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
        auto w = self->spawn<caf::detached>(worker, self->state.handler);
        // The worker always answers (handle() is bounded): no timeout of our own to race it.
        self->request(w, caf::infinite, ctl_request_atom_v, std::move(line))
            .then([self, promise](std::string& reply) mutable { done(self, promise, std::move(reply)); },
                  [self, promise](caf::error& err) mutable {
                    done(self, promise, refusal("internal", self->system().render(err)));
                  });
        return promise;
      },
      [self](ctl_next_atom, std::uint64_t id) -> caf::result<lines> { return next_lines(self, id); },
      [self](ctl_wake_atom, std::uint64_t id) {
        if (from_here(self)) serve_poll(self, id);
      },
      [self](ctl_expire_atom) {
        if (from_here(self)) expire(self);
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
      drain->cv.wait(drain_lock, [this] { return drain->in_flight == 0; });
      // Every stream ends ("shutdown") and the daemon's streams close: none may outlive
      // this call (the daemon goes next). Closing one waits for a sink call at most.
      if (actor) caf::send_as(actor, actor, ctl_end_all_atom_v);
      drain->cv.wait(drain_lock, [this] { return drain->streams == 0; });
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
