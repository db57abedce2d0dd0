#pragma once

// A placement for the supervisor's deterministic tests whose stand-ins (remote workers:
// no process, no network) follow a script: they answer a start or keep it, report ready
// or not, answer a stop or keep it — the message sequences of a process actor, in an order
// the test chooses, on CAF's test_coordinator. Header-only. (mute_placement.hpp is the
// simplest such script: a start is never answered.)

#include <pkit/actors/error.hpp>
#include <pkit/actors/placement.hpp>
#include <pkit/actors/process_actor.hpp>

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/make_message.hpp>
#include <caf/message_id.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sup_test_placement {

namespace pa = pkit::actors;

/// What a stand-in does. Read when a message comes, so a test may change it meanwhile.
struct script {
  enum class on_start {
    ready,          ///< child_started, the pid, then child_ready
    answer,         ///< child_started and the pid; no child_ready
    keep,           ///< nothing: the start stays unanswered
    exit_then_fail, ///< child_started, child_exited, then the error died_before_ready
    node_lost,      ///< the error `ending_error` (node_down: its node was lost while
                    ///< starting), no process; the stand-in then ends with it, as a relay
                    ///< does (placement.hpp)
    started_failed_then_ended  ///< child_started, the error ready_timeout, then the stand-in
                               ///< ends with node_down before any child_exited
  };
  enum class on_stop {
    answer,           ///< exit status SIGTERM
    keep,             ///< nothing: the stop stays unanswered
    ready_then_answer, ///< child_ready (late), then exit status SIGTERM
    exit_then_answer   ///< child_exited (the run ended on its own meanwhile), then SIGTERM
  };
  on_start start = on_start::ready;
  on_stop stop = on_stop::answer;
  std::string node;  ///< when set, each start first tells child_node with it (as a relay)
  int node_lost_starts = -1;  ///< with node_lost: how many starts fail so, then as `ready` (-1: all)
  pa::error ending_error = pa::error::node_down;  ///< with node_lost (shutting_down: as a process
                                                  ///< actor's destructor answers)
};

inline constexpr std::int32_t stand_in_pid = 4242;

/// Its kept promises (never broken: CAF 0.17 does not answer a promise its actor left).
struct kept_promises {
  std::vector<caf::typed_response_promise<std::int32_t>> starts;
  std::vector<caf::typed_response_promise<pkit::exit_status>> stops;
};

inline pa::process_actor::behavior_type scripted_stand_in(pa::process_actor::pointer self,
                                                          std::shared_ptr<script> plan,
                                                          std::shared_ptr<kept_promises> kept,
                                                          pa::process_observer obs) {
  // Reports go to the supervisor with the stand-in as their sender (as a process actor's
  // do: the supervisor takes reports only from its child's actor). A typed actor cannot
  // send() to an untyped one, hence the enqueue.
  const auto tell = [self, obs](auto... xs) {
    caf::actor_cast<caf::abstract_actor*>(obs.actor)
        ->enqueue(caf::strong_actor_ptr{self->ctrl()}, caf::make_message_id(), caf::make_message(xs...),
                  self->context());
  };
  auto runs = std::make_shared<std::uint64_t>(0);  // a process actor numbers its runs from 1
  return {[self, plan, kept, tell, obs, runs](pa::start_atom) -> caf::result<std::int32_t> {
            auto rp = self->make_response_promise<std::int32_t>();
            const std::uint64_t run = ++*runs;
            if (!plan->node.empty()) tell(pa::child_node_atom_v, obs.id, plan->node);
            switch (plan->start) {
              case script::on_start::keep: kept->starts.push_back(rp); return rp;
              case script::on_start::exit_then_fail:
                tell(pa::child_started_atom_v, obs.id, run, stand_in_pid);
                tell(pa::child_exited_atom_v, obs.id, run, pkit::exit_status::exited(1));
                rp.deliver(caf::make_error(pa::error::died_before_ready, obs.id));
                return rp;
              case script::on_start::node_lost:
                if (plan->node_lost_starts == 0) break;
                if (plan->node_lost_starts > 0) --plan->node_lost_starts;
                {
                  auto why = caf::make_error(plan->ending_error, "node '" + plan->node + "' lost while starting");
                  rp.deliver(why);
                  self->quit(std::move(why));
                }
                return rp;
              case script::on_start::started_failed_then_ended:
                tell(pa::child_started_atom_v, obs.id, run, stand_in_pid);
                rp.deliver(caf::make_error(pa::error::ready_timeout, obs.id));
                self->quit(caf::make_error(pa::error::node_down, "node '" + plan->node + "' lost"));
                return rp;
              default: break;
            }
            tell(pa::child_started_atom_v, obs.id, run, stand_in_pid);
            rp.deliver(stand_in_pid);  // the reply first, then child_ready (as a process actor)
            if (plan->start == script::on_start::ready)
              tell(pa::child_ready_atom_v, obs.id, run, stand_in_pid);
            return rp;
          },
          [self, plan, kept, tell, obs, runs](pa::stop_atom) -> caf::result<pkit::exit_status> {
            auto rp = self->make_response_promise<pkit::exit_status>();
            if (plan->stop == script::on_stop::keep) {
              kept->stops.push_back(rp);
              return rp;
            }
            if (plan->stop == script::on_stop::ready_then_answer)
              tell(pa::child_ready_atom_v, obs.id, *runs, stand_in_pid);
            if (plan->stop == script::on_stop::exit_then_answer)
              tell(pa::child_exited_atom_v, obs.id, *runs, pkit::exit_status::exited(3));
            rp.deliver(pkit::exit_status::killed(SIGTERM));
            return rp;
          },
          [](pa::kill_atom) { return pkit::exit_status::killed(SIGKILL); },
          [](pa::signal_atom, std::int32_t) { return caf::ok_atom_v; },
          [](pa::join_atom) { return pkit::exit_status::lost(); },
          [](pa::status_atom) { return pa::process_info{}; }};
}

/// Every worker placed through it gets a scripted stand-in (kept in `spawned`, in order);
/// its start bound is `bound`.
struct scripted_placement : pa::placement {
  explicit scripted_placement(std::chrono::milliseconds b) : bound(b) {}
  std::chrono::milliseconds bound;
  std::shared_ptr<script> plan = std::make_shared<script>();
  std::shared_ptr<kept_promises> kept = std::make_shared<kept_promises>();
  mutable std::vector<caf::actor> spawned;
  pa::process_actor spawn_remote(caf::actor_system& sys, const std::vector<std::string>&, pa::process_spec,
                                 pa::process_observer obs) const override {
    auto h = sys.spawn(scripted_stand_in, plan, kept, std::move(obs));
    spawned.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }
  std::optional<std::chrono::milliseconds> start_bound(const std::vector<std::string>&,
                                                       const pa::process_spec&) const override {
    return bound;
  }
};

}  // namespace sup_test_placement
