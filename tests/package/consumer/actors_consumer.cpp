// Uses the installed pkit::actors: a process actor runs a real program; its exit status
// comes back through join.
#include <pkit/actors/process_actor.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <chrono>
#include <cstdio>

int main() {
  caf::actor_system_config cfg;
  pkit::actors::init(cfg);
  caf::actor_system system{cfg};
  caf::scoped_actor self{system};
  using namespace pkit::actors;

  process_spec spec;
  spec.argv = {"/bin/sh", "-c", "exit 7"};
  auto p = spawn_process(system, spec);
  bool started = false;
  self->request(p, std::chrono::seconds(10), start_atom_v)
      .receive([&](std::int32_t pid) { started = pid > 0; },
               [&](caf::error& err) { std::printf("start: %s\n", system.render(err).c_str()); });
  pkit::exit_status status;
  self->request(p, std::chrono::seconds(10), join_atom_v)
      .receive([&](pkit::exit_status s) { status = s; },
               [&](caf::error& err) { std::printf("join: %s\n", system.render(err).c_str()); });
  const bool ok = started && status == pkit::exit_status::exited(7);
  std::printf("process actor: %s; pkit actors consumer: %s\n", status.to_string().c_str(),
              ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
