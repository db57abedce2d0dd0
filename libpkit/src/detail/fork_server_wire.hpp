#pragma once

// The fork server's wire format and the socket helpers both of its ends use. Private to
// libpkit: the parent and the server are the same binary, so the format needs no
// versioning — but every field that comes off a socket is checked before it is used
// (a length before anything is allocated for it, an id against the request in flight).
//
// Two SOCK_SEQPACKET socket pairs, one record per message:
//   control: requests (parent → server) and their replies (server → parent);
//   events:  exit reports (server → parent), read by the reaper thread.

#include <pkit/unique_fd.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <system_error>
#include <vector>

namespace pkit::detail::wire {

constexpr std::size_t max_message = 256 * 1024;
constexpr std::size_t max_fds = 3 + 256;

enum class op : std::uint32_t {
  spawn = 1,         // fork a target; reply: ok with the child's pidfd (+ status pipe)
  abandon = 2,       // the parent cannot use child `child`: kill and reap it; no reply
  signal_group = 3,  // signal the group led by child `child` while it is unreaped; no reply
};

// flags of a spawn request
constexpr std::uint32_t flag_ready = 1, flag_group = 2, flag_pdeathsig = 4,
                        flag_kill_group_at_exit = 8;
// flags of a signal_group request
constexpr std::uint32_t flag_and_at_exit = 1;

struct request_header {
  std::uint64_t id;     // the request's id (abandon: the id of the spawn it abandons)
  std::uint32_t op;     // wire::op
  std::uint32_t flags;  // flag_*
  std::uint64_t child;  // signal_group: the spawn id of the leader
  std::int32_t signo;   // signal_group
  std::int32_t stdio_index[3];  // spawn: index into the passed fds, or -1
  std::uint32_t pass_count;     // spawn: followed by pass_count int32 targets
  std::uint32_t name_len;       // then the name
  std::uint32_t arg_count;      // then each argument as uint32 length + bytes
  std::uint32_t reserved;
};

enum class reply_kind : std::int32_t { ok = 0, errno_value = 1, errc_value = 2 };

// The stage of an errno reply: a child_stage, or one of these.
constexpr std::int32_t stage_fork = -1;   // the server's fork() failed
constexpr std::int32_t stage_reply = -2;  // the child was made, the reply could not be sent

struct reply {
  std::uint64_t id;      // the request's id
  std::int32_t kind;     // reply_kind
  std::int32_t value;    // errno or pkit::errc
  std::int32_t stage;
  std::int32_t pid;      // the child (ok; stage_reply: the child that was killed and reaped)
  std::int32_t fd_count; // descriptors attached: pidfd (+ status pipe) for an ok spawn
  std::int32_t reserved;
};

enum class event_kind : std::int32_t {
  exited = 1,  // code/status: waitid's si_code/si_status
  lost = 2,    // the child ended but its status could not be collected
};

struct event {
  std::uint64_t id;
  std::int32_t kind;  // event_kind
  std::int32_t code;
  std::int32_t status;
  std::int32_t reserved;
};

using clock = std::chrono::steady_clock;

void append(std::string& out, const void* p, std::size_t n);

/// Sends one record with `fds` attached. `deadline` null: blocking. Returns 0, or the
/// errno (ETIMEDOUT when the deadline passed before the socket took the record; a
/// SEQPACKET record is sent whole or not at all).
int send_record(int sock, std::string_view data, const int* fds, std::size_t nfds,
                const clock::time_point* deadline);

struct received {
  ssize_t size = 0;        // bytes; 0 on EOF; -1 on error (error set)
  int error = 0;           // errno; ETIMEDOUT when the deadline passed
  bool truncated = false;  // the record or its descriptors did not fit (MSG_TRUNC/CTRUNC)
  std::vector<unique_fd> fds;  // close-on-exec, owned
};

/// Receives one record into `buf` (its size is the most that is accepted). `deadline`
/// null: blocking.
received receive_record(int sock, std::vector<char>& buf, const clock::time_point* deadline);

/// Checks a reply of `r.size` bytes to request `expected`: the size, the id, the kind, the
/// value and the descriptors. Returns fork_server_protocol for anything malformed, or
/// an empty code. `stale` is set (and the reply must be dropped) for a well-formed
/// reply to an earlier request the parent gave up on.
std::error_code check_reply(const received& r, const reply& rep, std::uint64_t expected,
                            bool want_fds, bool& stale);

}  // namespace pkit::detail::wire
