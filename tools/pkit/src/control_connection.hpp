#pragma once

// Internal to pkit_tool: one client connection of the control server. The event-loop
// thread owns the socket and the input side; the output queue and the stream are shared
// with the worker threads and the handler's sinks, under `m`.

#include <pkit/tool/control_handler.hpp>
#include <pkit/unique_fd.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace pkit::tool::detail {

struct connection {
  // --- event-loop thread only ---
  unique_fd fd;
  std::string in;            ///< received bytes not yet framed into requests
  bool busy = false;         ///< a request is with a worker: the next waits (replies stay in order)
  bool streaming = false;    ///< a stream is open: the connection takes no more requests
  bool peer_eof = false;     ///< the client shut down its writing side
  bool closed = false;       ///< removed from the loop; late wake-ups are ignored
  unsigned epoll_events = 0; ///< the interest currently registered

  // --- shared, under m ---
  enum class stream_phase { none, opening, open };
  std::mutex m;
  std::deque<std::string> out;        ///< lines to send, front first
  std::size_t out_offset = 0;         ///< bytes of out.front() already sent
  std::size_t out_bytes = 0;          ///< total unsent bytes
  std::deque<std::string> pending;    ///< items a stream produced before its ok reply was queued
  std::size_t pending_bytes = 0;
  stream_phase phase = stream_phase::none;
  std::unique_ptr<control_stream> stream;
  nlohmann::json stream_id;           ///< the id of the request that opened `stream`
  bool request_done = false;          ///< a worker finished the request (the loop clears `busy`)
  bool overflow = false;              ///< the queue outgrew its bound: drop the client
  bool close_after_flush = false;     ///< send what is queued, then close
  bool gone = false;                  ///< closed by the loop: sinks answer false, workers skip

  // --- any thread ---
  std::atomic<bool> scheduled{false}; ///< already on the loop's wake-up list

  /// Queues `line` (caller holds m); past `limit` unsent bytes the client is to be dropped.
  void enqueue_locked(std::string line, std::size_t limit);

  /// A stream's item or end line, from a sink (takes m). While the stream is opening
  /// the line waits in `pending` (its ok reply goes first). Returns whether the stream
  /// may go on: false when the client is gone, overflowing, or this was the end.
  bool queue_stream_line(std::string line, bool is_end, std::size_t limit);

  /// Sends what the socket takes now (caller holds m; loop thread: it owns fd). Returns
  /// false when the client is broken.
  bool flush_locked();
};

}  // namespace pkit::tool::detail
