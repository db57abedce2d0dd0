#pragma once

// The endpoint of remote control (remote_control_server.cpp) and its stream sessions
// (remote_control_streams.cpp): the published actor's state and the parts both files use.
// Internal to pkit_tool.

#include <pkit/tool/control_handler.hpp>
#include <pkit/tool/control_protocol.hpp>
#include <pkit/tool/remote_control.hpp>

#include "remote_stream_queue.hpp"

#include <caf/actor_addr.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace pkit::tool::detail {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using lines = std::vector<std::string>;

/// The daemon's stream of one session: stored by the worker that opened it, destroyed off
/// the endpoint's scheduler (destroying it waits for a sink call under way) by a worker or
/// by stop().
///
/// The daemon may end a stream before the worker has stored it (its sink may run before
/// open_stream returns): the endpoint then closes the slot early. So whether the stream
/// opened is a fact of its own (`opened`, never cleared), not whether the slot still holds
/// it; and a slot closed before its stream is stored makes the worker destroy the stream
/// (`closed`). Both under `m`.
struct stream_slot {
  std::mutex m;
  std::unique_ptr<control_stream> stream;
  bool opened = false;  // the daemon opened it (settles the session: served, not refused)
  bool closed = false;  // close_slot ran: a stream stored later is destroyed at once
};

/// What stop() waits for, shared by the front actor, its workers and the server: the
/// requests being answered (counted down by the workers themselves, so that a front
/// killed by a peer's exit message cannot strand the count), the daemon's streams still
/// open (stop() closes what is left itself), and the clients that asked something and are
/// still connected. A reply is delivered to CAF, which writes it later; ending the system
/// before a client has its reply (`shutdown`: the tree ends at once) would lose it, so
/// stop() waits for the clients to go (bounded) once every reply is out.
struct drain_state {
  std::mutex m;
  std::condition_variable cv;
  unsigned in_flight = 0;
  std::set<std::shared_ptr<stream_slot>> open;  // slots holding a daemon stream
  std::size_t peers = 0;
  bool draining = false;
  bool closed_all = false;  // stop() closed what was open: a stream opened later is not kept
};

/// A request is answered (or refused after admit): one fewer in flight.
void finish_request(drain_state& d);

/// Destroys the daemon stream `slot` holds, if it still holds one, and marks it closed (a
/// stream stored after this is destroyed by its opener). Any thread but the endpoint's
/// scheduler; never under `d.m`.
void close_slot(const std::shared_ptr<stream_slot>& slot, drain_state& d);

// Streams (remote_control.hpp): pulled by their client, bounded per session.
constexpr std::size_t max_streams = 8;                          // sessions at once
constexpr std::size_t max_streams_per_client = 4;               // of one client actor
constexpr std::size_t max_queued_bytes = std::size_t{4} << 20;  // per session, as the socket
constexpr std::size_t max_poll_bytes = std::size_t{512} << 10;  // lines in one poll's reply
constexpr auto poll_hold = std::chrono::seconds(1);             // a poll with nothing to take
constexpr auto session_idle = std::chrono::seconds(15);         // no poll for that long: gone
constexpr auto expire_every = std::chrono::milliseconds(250);

struct stream_session {
  caf::actor_addr owner;  // the client actor that opened it: the only one that may poll
  json id;                // the opening request's id, on every line
  std::shared_ptr<remote_stream_queue> queue;
  std::shared_ptr<stream_slot> slot;  // null once its daemon stream is being closed
  std::optional<caf::typed_response_promise<lines>> poll;  // a poll waiting for lines
  steady::time_point poll_since{};
  // Idle from when its opening settled: its client cannot poll before it has the reply,
  // and the daemon may take long to open (open_stream waits for the control lock).
  steady::time_point last_poll = steady::now();
  bool settled = false;  // the opener answered; never expired before
};

/// The endpoint's interface: the published one plus its messages to itself (ignored from
/// anyone else, see from_here).
using front_actor = remote_stream_actor::extend<caf::reacts_to<ctl_wake_atom, std::uint64_t>,
                                                caf::reacts_to<ctl_expire_atom, std::uint64_t>,
                                                caf::reacts_to<ctl_end_all_atom>>;

struct front_state {
  control_handler* handler = nullptr;
  std::size_t max_bytes = 0;
  unsigned max_in_flight = 0;
  std::shared_ptr<drain_state> drain;
  std::set<caf::actor_addr> peers;  // remote senders monitored
  std::map<std::uint64_t, stream_session> sessions;
  std::uint64_t next_session = std::random_device{}() | 1;  // not guessable by position
  std::uint64_t expire_seq = 0;  // the scheduled ctl_expire's number; 0: none scheduled
  static inline const char* name = "pkit.remote_control";
};

using front_pointer = front_actor::stateful_pointer<front_state>;

/// An error reply line without a request id.
std::string refusal(std::string code, std::string message);

/// Whether the current message is the endpoint's own (its timer, a sink's wake, stop(),
/// all sent as itself).
bool from_here(front_pointer self);

// -- stream sessions (remote_control_streams.cpp) -------------------------------------------

/// A stream request admitted (admit() counted it): opens a session for its sender.
caf::result<std::string> open_session(front_pointer self, const control_request& req, std::string line);
/// (ctl_next_atom, id) from its owner: queued lines now, or within poll_hold.
caf::result<lines> next_lines(front_pointer self, std::uint64_t id);
/// A sink's wake-up: answers a waiting poll of session `id`.
void serve_poll(front_pointer self, std::uint64_t id);
/// The periodic look (number `seq`) at held polls and idle sessions.
void expire(front_pointer self, std::uint64_t seq);
/// pkit run stops: every stream ends with "shutdown"; the daemon's streams are closed.
void end_all(front_pointer self);
/// Ends session `id` (its waiting poll gets what is queued; its stream is closed).
void end_session(front_pointer self, std::uint64_t id);

}  // namespace pkit::tool::detail
