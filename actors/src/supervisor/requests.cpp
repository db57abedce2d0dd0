// The supervisor's message handlers for requests (start, terminate, restart, delete ...).

#include "state.hpp"

#include <pkit/actors/error.hpp>

namespace pkit::actors::detail::supervisor {

namespace {

// Whether a request is refused now (only while the supervisor shuts down).
bool refused(const supervisor_state& st) {
  facts f;
  f.shutting_down = st.shutting_down;
  return decide(event::request, f).then == action::refuse;
}

}  // namespace

caf::result<child_info> add_and_start(self_pointer self, child_spec spec, const std::string& before) {
  auto& st = self->state;
  if (refused(st)) return caf::make_error(error::shutting_down, st.spec.name);
  if (auto err = check_child(spec)) return err;
  if (st.find(spec.id) != nullptr) return caf::make_error(error::already_present, spec.id);
  if (!before.empty() && st.find(before) == nullptr)
    return caf::make_error(error::unknown_child, "start_child before '" + before + "': no such child");
  const std::string id = spec.id;
  child c;
  c.spec = std::move(spec);
  st.add(std::move(c), before);
  auto rp = self->make_response_promise<child_info>();
  step s{step::kind::start, id};
  s.done = [self, rp, id](const caf::error& err) mutable {
    auto& st = self->state;
    child* c = st.find(id);
    if (err) {
      // OTP: a child whose start fails is not added. If a process was made it is gone
      // (or going): its actor goes with the spec.
      if (c != nullptr) {
        if (c->failed_run && c->state == child_state::stopping) {
          // A process was made (it never got ready and is being killed): its exit is
          // reported to subscribers before the child goes.
          c->drop_after_exit = true;
        } else if (!st.shutting_down || (!c->proc && !c->sup)) {
          drop_child(self, id);
        }
        // Else the supervisor shuts down during this start (shut_down refuses the step): the
        // run it made — a process, a nested supervisor and its subtree — is stopped by the
        // shutdown plan like any other child's, and stop is answered only once it is gone
        // (OTP: the stop waits for start_child, then terminates that child too). The
        // supervisor exits after that plan: the child goes with it.
      }
      rp.deliver(err);
      return;
    }
    deliver_info(self, rp, id);
  };
  // Requests are served in order: this start joins the last plan only if that is a batch
  // of start_child requests too (then up to start_concurrency of them run at once).
  if (!st.plans.empty() && st.plans.back().failure_mode == on_failure::each) {
    st.plans.back().steps.push_back(std::move(s));
    run_next_step(self);
  } else {
    plan p;
    p.failure_mode = on_failure::each;
    p.steps.push_back(std::move(s));
    schedule(self, std::move(p));
  }
  return rp;
}


caf::result<child_info> start_child(self_pointer self, child_spec spec, const std::string& before) {
  if (self->state.spec.flags.strategy == restart_strategy::simple_one_for_one)
    return caf::make_error(error::wrong_strategy, "simple_one_for_one takes start_child with args");
  return add_and_start(self, std::move(spec), before);
}

caf::result<child_info> start_child_with_args(self_pointer self, const std::vector<std::string>& args) {
  auto& st = self->state;
  if (st.spec.flags.strategy != restart_strategy::simple_one_for_one || !st.template_spec)
    return caf::make_error(error::wrong_strategy, "start_child with args needs simple_one_for_one and a template child");
  child_spec c = *st.template_spec;
  c.id = c.id + "-" + std::to_string(st.next_simple_id++);
  auto& target_args = c.process.argv.empty() ? c.process.args : c.process.argv;
  target_args.insert(target_args.end(), args.begin(), args.end());
  return add_and_start(self, std::move(c));
}

caf::result<caf::ok_atom> terminate_child(self_pointer self, const std::string& id) {
  auto& st = self->state;
  if (refused(st)) return caf::make_error(error::shutting_down, st.spec.name);
  child* c = st.find(id);
  if (c == nullptr) return caf::make_error(error::unknown_child, id);
  c->group = 0;  // a restart pending for it is cancelled
  auto rp = self->make_response_promise<caf::ok_atom>();
  plan p;
  p.steps = {{step::kind::stop, id}};
  p.done = [self, rp, id](const caf::error& err, const std::string&) mutable {
    auto& st = self->state;
    if (err) {
      rp.deliver(err);
      return;
    }
    child* c = st.find(id);
    if (c != nullptr && (c->spec.restart == restart_type::temporary ||
                         st.spec.flags.strategy == restart_strategy::simple_one_for_one))
      drop_child(self, id);
    rp.deliver(caf::ok_atom_v);
  };
  schedule(self, std::move(p));
  return rp;
}

caf::result<child_info> restart_child(self_pointer self, const std::string& id) {
  auto& st = self->state;
  if (refused(st)) return caf::make_error(error::shutting_down, st.spec.name);
  if (st.spec.flags.strategy == restart_strategy::simple_one_for_one)
    return caf::make_error(error::wrong_strategy, "simple_one_for_one: restart_child is not supported (OTP)");
  child* c = st.find(id);
  if (c == nullptr) return caf::make_error(error::unknown_child, id);
  ++c->manual_restarts;
  c->failed_starts = 0;
  c->group = 0;  // this request starts it
  auto rp = self->make_response_promise<child_info>();
  plan p;
  p.failure_mode = on_failure::report;
  p.steps = {{step::kind::stop, id}, {step::kind::start, id}};
  p.done = [self, rp, id](const caf::error& err, const std::string&) mutable {
    if (err) {
      rp.deliver(err);
      return;
    }
    deliver_info(self, rp, id);
  };
  schedule(self, std::move(p));
  return rp;
}

caf::result<caf::ok_atom> delete_child(self_pointer self, const std::string& id) {
  auto& st = self->state;
  // OTP's {error, simple_one_for_one}: its children are deleted when they stop.
  if (st.spec.flags.strategy == restart_strategy::simple_one_for_one)
    return caf::make_error(error::wrong_strategy, "simple_one_for_one: delete_child is not supported (OTP)");
  child* c = st.find(id);
  if (c == nullptr) return caf::make_error(error::unknown_child, id);
  if (decide(c->state, event::delete_request, {}).then == action::refuse)
    return caf::make_error(error::still_running, id);
  drop_child(self, id);
  return caf::ok_atom_v;
}

child_counts count_children(const supervisor_state& st) {
  child_counts n;
  for (const auto& c : st.children) {
    ++n.specs;
    if (c.active()) ++n.active;
    if (c.is_supervisor()) {
      ++n.supervisors;
    } else {
      ++n.workers;
    }
  }
  return n;
}

caf::result<caf::ok_atom> stop(self_pointer self) {
  auto rp = self->make_response_promise<caf::ok_atom>();
  self->state.stop_waiters.push_back(rp);
  shut_down(self, caf::exit_reason::normal);
  return rp;
}

}  // namespace pkit::actors::detail::supervisor
