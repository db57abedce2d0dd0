#pragma once

// A process actor's lookup of the user and group its program runs as, on the launcher's
// name_service lane (launcher.hpp), and the rule that bounds it: one lookup in flight per
// actor. A start whose lookup outlived it (stopped, past its deadline) leaves that lookup
// running in the name service; the actor's next start adopts it instead of posting
// another. Before, a crash-looping child whose name service hangs (LDAP, sssd) posted one
// lookup per restart, each holding a lane thread until the name service gave up, and with
// the lane's four threads held every other user start of the program queued behind them.

#include "launcher.hpp"

#include <pkit/identity.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace pkit::actors::detail {

class lookup_job : public std::enable_shared_from_this<lookup_job> {
public:
  /// Sends launch `launch`'s result to its actor (a launcher thread calls it, through
  /// launcher::report_until_made: it may throw for want of memory, and is called again).
  using report_fn = std::function<void(std::uint64_t launch, const identity& who)>;

  /// The lookup of `user` and `group` for launch `launch`: `current` — the actor's last
  /// one — when it is still in flight for the same names (its result then goes to this
  /// launch), else a new one posted to the name_service lane. Called on the actor's
  /// thread; `report` must outlive the job. Throws what launcher::post throws (then
  /// nothing was posted), std::bad_alloc.
  static std::shared_ptr<lookup_job> look_up(const std::shared_ptr<lookup_job>& current, std::uint64_t launch,
                                             const std::string& user, const std::string& group, report_fn report);

  /// Set to tell the job its launch no longer wants the result (a stop, the deadline, the
  /// actor gone): a job not yet begun does not look up; one under way reports nothing.
  /// Cleared again when a later launch adopts the job.
  cancel_flag cancelled() { return {shared_from_this(), &cancelled_}; }

  lookup_job(std::uint64_t launch, std::string user, std::string group) noexcept
      : user_(std::move(user)), group_(std::move(group)), launch_(launch) {}

private:
  void run(const report_fn& report) noexcept;
  bool adopt(std::uint64_t launch, const std::string& user, const std::string& group) noexcept;

  const std::string user_;
  const std::string group_;
  // The handshake between the job (done_, then reads cancelled_ and launch_) and an
  // adopting actor (writes launch_ and cancelled_, then reads done_): sequentially
  // consistent, so either the actor sees done_ (and posts a job of its own) or the job
  // sees the adoption (and reports to the new launch). Both at once only duplicates a
  // report, which the actor takes once (the launch number).
  std::atomic<bool> done_{false};
  std::atomic<bool> cancelled_{false};
  std::atomic<std::uint64_t> launch_;
};

}  // namespace pkit::actors::detail
