#pragma once

// The controller's side of a remote child in the distribution tests: forwards the reports
// a node's process actor sends (child_started / child_ready / child_exited) to `sink`,
// as a supervisor's relay would, and answers nothing else. A request (pkit node's check
// whether the relay still exists) is held unanswered, so that a controller made silent
// by sending no heartbeats stays silent; the node's check is then bounded by its own
// deadline. Header-only; needs pkit::actors.

#include <pkit/actors/messages.hpp>

#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>

#include <memory>
#include <string>
#include <vector>

namespace pkit_test_common {

inline caf::behavior relay_impl(caf::event_based_actor* self, caf::actor sink) {
  using namespace pkit::actors;
  auto held = std::make_shared<std::vector<caf::response_promise>>();
  return {
      [self, sink](child_started_atom a, std::string& id, std::uint64_t inc, std::int32_t pid) {
        self->send(sink, a, std::move(id), inc, pid);
      },
      [self, sink](child_ready_atom a, std::string& id, std::uint64_t inc, std::int32_t pid) {
        self->send(sink, a, std::move(id), inc, pid);
      },
      [self, sink](child_exited_atom a, std::string& id, std::uint64_t inc, pkit::exit_status st) {
        self->send(sink, a, std::move(id), inc, st);
      },
      [self, held](status_atom) {
        held->push_back(self->make_response_promise());
        return held->back();
      },
  };
}

}  // namespace pkit_test_common
