// The supervisor actor (spawn_supervisor): its initial start and its behaviour. The parts
// are in actors/src/supervisor/: the rules (rules.hpp: child state × event → action), the
// child registry and events (registry.cpp), the plan executor (plan.cpp) and its steps
// (steps.cpp), exits, restarts and shutdown (restarts.cpp), and the message handlers
// (requests.cpp, reports.cpp).

#include <pkit/actors/supervisor.hpp>

#include <pkit/actors/error.hpp>

#include "send_from.hpp"
#include "supervisor/state.hpp"
#include "supervisor_names.hpp"
#include "timer_relay.hpp"

#include <caf/actor_cast.hpp>
#include <caf/system_messages.hpp>

#include <utility>

namespace pkit::actors {
namespace {

using namespace detail::supervisor;
using detail::private_supervisor_actor;
using detail::restart_timer;

// OTP's {local, Name}: registered before any child starts, removed when the supervisor
// ends (however it ends), if the name is still ours. The name does not keep the
// supervisor alive (supervisor_names.hpp: not CAF's registry, which holds actors strongly).
caf::error register_name(self_pointer self) {
  const std::string& name = self->state.spec.flags.registered_name;
  if (!detail::register_supervisor_name(self->system(), name, self->address()))
    return caf::make_error(error::already_present, "registered_name '" + name + "' is taken");
  self->attach_functor([system = &self->system(), name, me = self->address()] {
    detail::unregister_supervisor_name(*system, name, me);
  });
  return caf::none;
}

// The end of the initial start: OTP's init failure, or child_ready to the parent.
void boot_done(self_pointer self, const caf::error& err, const std::string& failed) {
  auto& st = self->state;
  if (err) {
    shut_down(self, caf::make_error(error::start_failed, st.spec.name + ": child " + failed +
                                                            " failed to start: " + self->system().render(err)));
    return;
  }
  st.started = true;
  // With us as the sender: the parent accepts it only from the supervisor it spawned.
  detail::send_from(self, caf::actor_cast<caf::actor>(st.parent), child_ready_atom_v, st.parent_id,
                    std::uint64_t{1}, std::int32_t{0});
}

// Takes the spec and options; starts every child in order, each after the previous is
// ready (or quits at once with the error of a malformed spec).
void init(self_pointer self, supervisor_spec spec, supervisor_options options) {
  auto& st = self->state;
  for (auto& s : options.subscribers)
    if (s.who) subscribe(self, std::move(s.who), s.kinds, s.whole_tree);
  process_observer& observer = options.observer;
  st.server = options.server;
  st.place = options.place;
  st.parent = observer.actor.address();
  st.parent_id = std::move(observer.id);
  observer.actor = nullptr;
  st.timers = detail::make_timer_relay(self->system());
  // OTP's init checks the child specs (check_childspecs) before starting any.
  caf::error invalid = check_supervisor_spec(spec);
  std::vector<child_spec> initial = std::move(spec.children);
  st.spec = std::move(spec);
  if (st.spec.name.empty()) st.spec.name = "supervisor";
  // Children report through anon messages and monitors; ~supervisor_state ends them with us.
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  self->set_exit_handler([self](caf::exit_msg& em) { on_exit(self, em); });
  plan boot;
  boot.failure_mode = on_failure::fail_supervisor;
  if (!invalid && st.spec.flags.strategy == restart_strategy::simple_one_for_one) {
    // OTP: one child spec, a template for the children start_child makes; none at start.
    st.template_spec = std::move(initial.front());
    initial.clear();
  }
  if (!invalid) {
    for (auto& c : initial) {
      boot.steps.push_back({step::kind::start, c.id});
      child ch;
      ch.spec = std::move(c);
      st.add(std::move(ch));
    }
  }
  boot.done = [self](const caf::error& err, const std::string& failed) { boot_done(self, err, failed); };
  if (!invalid && !st.spec.flags.registered_name.empty()) invalid = register_name(self);
  if (invalid) {
    st.clear();
    self->quit(invalid);  // a malformed spec: the supervisor never starts
  } else {
    schedule(self, std::move(boot));
  }
}

private_supervisor_actor::behavior_type supervisor_impl(self_pointer self, supervisor_spec spec,
                                                        supervisor_options options) {
  init(self, std::move(spec), std::move(options));
  return {
      [self](start_child_atom, child_spec spec) { return start_child(self, std::move(spec)); },
      [self](start_child_atom, child_spec spec, std::string before) {
        return start_child(self, std::move(spec), before);
      },
      [self](start_child_atom, std::vector<std::string> args) { return start_child_with_args(self, args); },
      [self](terminate_child_atom, std::string id) { return terminate_child(self, id); },
      [self](restart_child_atom, std::string id) { return restart_child(self, id); },
      [self](delete_child_atom, std::string id) { return delete_child(self, id); },
      [self](which_children_atom) {
        std::vector<child_info> out;
        for (const auto& c : self->state.children) out.push_back(info_of(c));
        return out;
      },
      [self](get_childspec_atom, const std::string& id) -> caf::result<child_spec> {
        if (const child* c = self->state.find(id)) return c->spec;
        return caf::make_error(error::unknown_child, id);
      },
      [self](count_children_atom) { return count_children(self->state); },
      [self](subscribe_atom, caf::actor subscriber) {
        subscribe(self, std::move(subscriber), all_events);
        return caf::ok_atom_v;
      },
      [self](subscribe_atom, caf::actor subscriber, event_mask kinds) {
        subscribe(self, std::move(subscriber), kinds);
        return caf::ok_atom_v;
      },
      [self](unsubscribe_atom, caf::actor subscriber) {
        unsubscribe(self, subscriber.address());
        // Its monitor goes too, unless it is also one of our children (monitored as such).
        if (self->state.by_actor.count(subscriber.address()) == 0) self->demonitor(subscriber);
        return caf::ok_atom_v;
      },
      [self](stop_atom) { return stop(self); },
      [self](child_node_atom, std::string id, std::string node) { on_child_node(self, id, std::move(node)); },
      [self](child_started_atom, std::string id, std::uint64_t inc, std::int32_t pid) {
        on_child_started(self, id, inc, pid);
      },
      [self](child_ready_atom, std::string id, std::uint64_t inc, std::int32_t pid) {
        on_child_ready(self, id, inc, pid);
      },
      [self](child_exited_atom, std::string id, std::uint64_t inc, exit_status status) {
        on_child_exited(self, id, inc, status);
      },
      [self](const restart_timer& timer) { on_timer(self, timer); },
  };
}

}  // namespace

supervisor_actor spawn_supervisor(caf::actor_system& system, supervisor_spec spec,
                                  const fork_server* server, process_observer observer,
                                  std::vector<event_subscriber> subscribers) {
  // Converted to the public interface: the private protocol stays in pkit's sources.
  supervisor_options options;
  options.server = server;
  options.observer = std::move(observer);
  options.subscribers = std::move(subscribers);
  return spawn_supervisor(system, std::move(spec), std::move(options));
}

supervisor_actor spawn_supervisor(caf::actor_system& system, supervisor_spec spec, supervisor_options options) {
  private_supervisor_actor handle = system.spawn(supervisor_impl, std::move(spec), std::move(options));
  return handle;
}

// The flag says which interface the handle has (the supervisor set both).
process_actor worker_of(const child_info& info) {
  return info.is_supervisor ? process_actor{} : caf::actor_cast<process_actor>(info.handle);
}

supervisor_actor nested_supervisor_of(const child_info& info) {
  return info.is_supervisor ? caf::actor_cast<supervisor_actor>(info.handle) : supervisor_actor{};
}

}  // namespace pkit::actors
