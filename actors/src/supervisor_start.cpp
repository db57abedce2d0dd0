// OTP's start_link (a start that returns once the children are up, or the init failure)
// and whereis for registered supervisors.

#include <pkit/actors/supervisor.hpp>

#include <pkit/actors/error.hpp>

#include "supervisor_names.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_registry.hpp>
#include <caf/after.hpp>
#include <caf/atom.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/sec.hpp>
#include <caf/system_messages.hpp>

namespace pkit::actors {

caf::expected<supervisor_actor> start_supervisor(caf::actor_system& system, supervisor_spec spec,
                                                 std::chrono::milliseconds timeout, const fork_server* server,
                                                 std::vector<event_subscriber> subscribers) {
  supervisor_options options;
  options.server = server;
  options.subscribers = std::move(subscribers);
  return start_supervisor(system, std::move(spec), timeout, std::move(options));
}

caf::expected<supervisor_actor> start_supervisor(caf::actor_system& system, supervisor_spec spec,
                                                 std::chrono::milliseconds timeout, supervisor_options options) {
  // The waiter is the supervisor's parent for the start: the supervisor tells it
  // child_ready once its initial start is complete; its monitor tells an init failure.
  // It keeps no handle on the supervisor after this call (the parent is kept by address).
  caf::scoped_actor waiter{system};
  options.observer = process_observer{caf::actor_cast<caf::actor>(waiter), "start_supervisor"};
  auto sup = spawn_supervisor(system, std::move(spec), std::move(options));
  waiter->monitor(sup);
  bool ready = false;
  caf::error failure;
  waiter->receive(
      [&](child_ready_atom, std::string&, std::uint64_t, std::int32_t) { ready = true; },
      [&](caf::down_msg& dm) {
        failure = dm.reason ? std::move(dm.reason)
                            : caf::make_error(error::start_failed, "the supervisor ended during its start");
      },
      caf::after(timeout) >> [&] {
        // OTP's start_link with a timeout: the supervisor is killed (its children with it).
        caf::anon_send_exit(sup, caf::exit_reason::kill);
        failure = caf::make_error(caf::sec::request_timeout);
      });
  waiter->demonitor(sup.address());
  if (!ready) return failure;
  return sup;
}

supervisor_actor whereis_supervisor(caf::actor_system& system, const std::string& name) {
  if (name.empty() || name.size() > 10) return {};
  // From a weak address: the name does not keep the supervisor alive (supervisor_names.hpp).
  return caf::actor_cast<supervisor_actor>(detail::registered_supervisor(system, name));
}

}  // namespace pkit::actors
