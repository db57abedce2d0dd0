// Process actors: one actor per OS process, driven by typed messages.
//
// A process actor is started, asked for its status, told to stop, and joined; errors come
// back as caf::errors of the "pkit" category. Callable targets run through a fork
// server, started before the actor system (whose worker threads must never be forked).

#include "check.hpp"

#include <pkit/actors/error.hpp>
#include <pkit/actors/process_actor.hpp>
#include <pkit/actors/scheduler.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <csignal>
#include <cstdio>

int main() {
  return run_example("actor_process", [] {
    // [snippet]
    // Before any thread exists: the fork server, for C++ targets.
    pkit::fork_server::registry targets;
    targets.add("add", [](const std::vector<std::string>& args) {
      return std::stoi(args.at(0)) + std::stoi(args.at(1));
    });
    auto server = pkit::fork_server::start(std::move(targets));

    caf::actor_system_config cfg;
    pkit::actors::init(cfg);                // every pkit message type and the error category
    pkit::actors::use_pkit_scheduler(cfg);  // optional: pkit's scheduler (see the README)
    caf::actor_system system{cfg};
    caf::scoped_actor self{system};
    using namespace pkit::actors;

    process_spec sleeper;
    sleeper.argv = {"sleep", "30"};
    auto p = spawn_process(system, sleeper);
    std::int32_t pid = 0;
    self->request(p, std::chrono::seconds(10), start_atom_v)
        .receive([&](std::int32_t started) { pid = started; },
                 [&](caf::error& err) { std::printf("start: %s\n", system.render(err).c_str()); });
    self->request(p, std::chrono::seconds(10), status_atom_v)
        .receive([&](process_info& info) {
                   std::printf("%s is %s, pid %d, run %llu\n", info.name.c_str(),
                               to_string(info.state).c_str(), info.pid,
                               static_cast<unsigned long long>(info.incarnation));
                 },
                 [](caf::error&) {});
    pkit::exit_status stopped;
    self->request(p, std::chrono::seconds(10), stop_atom_v)
        .receive([&](pkit::exit_status s) { stopped = s; }, [](caf::error&) {});
    std::printf("stopped: %s\n", stopped.to_string().c_str());

    process_spec sum;
    sum.target = "add";
    sum.args = {"2", "3"};
    auto q = spawn_process(system, sum, &server);
    self->request(q, std::chrono::seconds(10), start_atom_v).receive([](std::int32_t) {}, [](caf::error&) {});
    int code = -1;
    self->request(q, std::chrono::seconds(10), join_atom_v)
        .receive([&](pkit::exit_status s) { code = s.exit_code(); }, [](caf::error&) {});
    std::printf("add(2, 3) exited with %d\n", code);

    process_spec missing;
    missing.argv = {"/no/such/program"};
    std::string failure;
    self->request(spawn_process(system, missing), std::chrono::seconds(10), start_atom_v)
        .receive([](std::int32_t) {}, [&](caf::error& err) { failure = system.render(err); });
    std::printf("%s\n", failure.c_str());
    // [/snippet]
    check(pid > 0, "start replied with the pid");
    check(stopped == pkit::exit_status::killed(SIGTERM), "stop replied with the SIGTERM death");
    check(code == 5, "the fork-server target's exit code came back through join");
    check(failure.find("start_failed") != std::string::npos && failure.find("exec") != std::string::npos,
          "a missing program is a start_failed error naming the exec stage");
  });
}
