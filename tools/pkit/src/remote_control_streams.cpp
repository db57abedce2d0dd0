// Stream sessions of remote control (`pkit ctl --host events/tail`): the client pulls the
// lines of a session (remote_control.hpp); here the sessions are opened, served, expired
// and ended. Everything but the sink and the workers runs on the endpoint's actor.

#include "remote_control_front.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <utility>

namespace pkit::tool::detail {

namespace {

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
    std::string reply = stream ? encode_reply(req.id, control_reply::success({{"stream", req.command}, {"session", session}}))
                               : encode_reply(req.id, error.ok ? control_reply::failure("internal", "no stream") : error);
    if (stream) {
      // Stored and counted open in one step under the slot's lock, so that close_slot
      // (which takes the stream under it, then uncounts) sees both or neither. Lock order:
      // slot, then drain; nothing takes them the other way round.
      std::lock_guard lock(slot->m);
      slot->opened = true;
      if (!slot->closed) {
        std::lock_guard drain_lock(drain->m);
        if (!drain->closed_all) {  // else stop() is past closing the open ones
          slot->stream = std::move(stream);
          drain->open.insert(slot);
        }
      }
    }
    // A stream whose session was closed while it opened (the daemon ended it, its client
    // left) is destroyed here, off every lock: destroying it waits for a sink call.
    stream.reset();
    finish_request(*drain);  // after the slot is known: stop() then sees it
    return reply;
  }};
}

/// Closes a session's daemon stream on a thread of its own.
caf::behavior stream_closer(caf::event_based_actor* self, std::shared_ptr<stream_slot> slot,
                            std::shared_ptr<drain_state> drain) {
  close_slot(slot, *drain);
  self->quit();
  return {};
}

void close_stream(front_pointer self, stream_session& s) {
  if (s.slot) self->spawn<caf::detached>(stream_closer, std::exchange(s.slot, nullptr), self->state.drain);
}

void keep_expiring(front_pointer self) {
  auto& st = self->state;
  if (st.expire_seq != 0 || st.sessions.empty()) return;
  st.expire_seq = st.next_session;  // any number that is not 0 and not guessed
  self->delayed_send(self, expire_every, ctl_expire_atom_v, st.expire_seq);
}

std::size_t sessions_of(const front_state& st, const caf::actor_addr& owner) {
  std::size_t n = 0;
  for (const auto& [id, s] : st.sessions) n += s.owner == owner ? 1 : 0;
  return n;
}

}  // namespace

void end_session(front_pointer self, std::uint64_t id) {
  auto it = self->state.sessions.find(id);
  if (it == self->state.sessions.end()) return;
  if (it->second.poll) it->second.poll->deliver(it->second.queue->take(max_poll_bytes));
  close_stream(self, it->second);
  self->state.sessions.erase(it);
}

void serve_poll(front_pointer self, std::uint64_t id) {
  auto it = self->state.sessions.find(id);
  if (it == self->state.sessions.end()) return;
  auto& s = it->second;
  // An ended stream (the daemon's end, an overrun) needs its daemon stream no more.
  if (s.queue->ended()) close_stream(self, s);
  if (!s.poll || !s.queue->ready()) return;
  std::exchange(s.poll, std::nullopt)->deliver(s.queue->take(max_poll_bytes));
  if (s.queue->finished()) end_session(self, id);
}

void expire(front_pointer self, std::uint64_t seq) {
  auto& st = self->state;
  if (seq == 0 || seq != st.expire_seq) return;  // not the chain's own (one chain only)
  st.expire_seq = 0;
  const auto now = steady::now();
  std::vector<std::uint64_t> gone;
  for (auto& [id, s] : st.sessions) {
    if (s.poll && now - s.poll_since >= poll_hold) std::exchange(s.poll, std::nullopt)->deliver(lines{});
    if (s.settled && !s.poll && now - s.last_poll >= session_idle) gone.push_back(id);
  }
  for (auto id : gone) end_session(self, id);
  keep_expiring(self);
}

caf::result<std::string> open_session(front_pointer self, const control_request& req, std::string line) {
  auto& st = self->state;
  // Before the promise: making it takes the sender out of the current message.
  const auto owner = caf::actor_cast<caf::actor_addr>(self->current_sender());
  std::string refused;
  if (!owner)
    refused = refusal("bad_request", "a stream needs a sender to pull it");
  else if (st.sessions.size() >= max_streams)
    refused = encode_reply(req.id, control_reply::failure("busy", std::to_string(max_streams) +
                                                                       " streams are followed over the network already"));
  else if (sessions_of(st, owner) >= max_streams_per_client)
    refused = encode_reply(req.id, control_reply::failure("busy", "this client follows " +
                                                                       std::to_string(max_streams_per_client) +
                                                                       " streams already"));
  if (!refused.empty()) {
    finish_request(*st.drain);
    return refused;
  }
  auto promise = self->make_response_promise<std::string>();
  const std::uint64_t id = st.next_session++;
  stream_session s;
  s.owner = owner;
  s.id = req.id;
  s.queue = std::make_shared<remote_stream_queue>(max_queued_bytes);
  s.slot = std::make_shared<stream_slot>();
  // The sink runs on the daemon's threads: it queues, and wakes the endpoint only when a
  // poll waits or the stream ended (weakly: a sink must not keep the endpoint alive).
  control_handler::sink to = [queue = s.queue, me = caf::actor_cast<caf::actor_addr>(self), id,
                              rid = req.id](const json& item) {
    const bool end = item.is_null();
    const auto r = queue->push(end ? encode_end(rid, "ended") : encode_item(rid, item), end, encode_end(rid, "overrun"));
    if (r.wake)
      if (auto front = caf::actor_cast<caf::actor>(me)) caf::send_as(front, front, ctl_wake_atom_v, id);
    return r.go_on;
  };
  auto slot = s.slot;
  auto w = self->spawn<caf::detached>(stream_opener, st.handler, slot, st.drain, std::move(to), id);
  st.sessions.emplace(id, std::move(s));
  keep_expiring(self);
  // Settled once the opener answered. A session that ended meanwhile (its client gone, the
  // daemon's early end, the endpoint's shutdown) had its slot closed by end_session/serve_poll: a stream stored
  // after that was destroyed by the opener itself (stream_slot).
  auto settle = [self, id, slot] {
    auto it = self->state.sessions.find(id);
    if (it == self->state.sessions.end()) return;
    it->second.settled = true;
    it->second.last_poll = steady::now();
    bool opened = false;
    {
      std::lock_guard lock(slot->m);
      opened = slot->opened;  // not whether it still holds it: an early end closes it
    }
    if (!opened) end_session(self, id);  // refused: nothing to follow
    else serve_poll(self, id);           // what came while it opened (an end too)
  };
  self->request(w, caf::infinite, ctl_request_atom_v, std::move(line))
      .then(
          [promise, settle](std::string& reply) mutable {
            settle();
            promise.deliver(std::move(reply));
          },
          [self, promise, settle](caf::error& err) mutable {
            settle();
            promise.deliver(refusal("internal", self->system().render(err)));
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
  s.queue->await_lines();
  auto promise = self->make_response_promise<lines>();
  s.poll = promise;
  s.poll_since = s.last_poll;
  const bool raced = s.queue->ready();
  keep_expiring(self);
  // A line may have come between the look and the wait: its wake-up was not asked for.
  // (serve_poll may end the session: `s` is not used after it.)
  if (raced) serve_poll(self, id);
  return promise;
}

void end_all(front_pointer self) {
  for (auto& [id, s] : self->state.sessions) {
    s.queue->push(encode_end(s.id, "shutdown"), true, encode_end(s.id, "shutdown"));
    close_stream(self, s);
  }
  std::vector<std::uint64_t> ids;
  for (const auto& [id, s] : self->state.sessions) ids.push_back(id);
  for (auto id : ids) serve_poll(self, id);
}

}  // namespace pkit::tool::detail
