// A three-level supervision tree of real programs, with restarts happening.
//
//   top (one_for_one)
//   ├── web      sleep 30
//   └── backend (one_for_all supervisor)
//       ├── db       sleep 30
//       └── workers (rest_for_one supervisor)
//           ├── queue    sleep 30
//           └── worker   sleep 30
//
// Killing `worker` restarts it alone (its supervisor is rest_for_one and it is last);
// killing `db` restarts the whole backend group (one_for_all), workers included. Events
// from every level are printed as they come.

#include "check.hpp"

#include <pkit/actors/error.hpp>
#include <pkit/actors/scheduler.hpp>
#include <pkit/actors/supervisor.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <map>

using namespace pkit::actors;

namespace {

child_spec worker(std::string id) {
  child_spec c;
  c.id = std::move(id);
  c.process.argv = {"sleep", "30"};
  c.shutdown_ms = 2000;
  return c;
}

child_spec nested(std::string id, supervisor_spec spec) {
  child_spec c;
  c.id = std::move(id);
  c.supervisor.push_back(std::move(spec));
  return c;
}

// A supervisor's children, by id.
std::map<std::string, child_info> children(caf::scoped_actor& self, const supervisor_actor& sup) {
  std::map<std::string, child_info> out;
  self->request(sup, std::chrono::seconds(10), which_children_atom_v)
      .receive([&](std::vector<child_info>& all) {
                 for (auto& c : all) out[c.id] = c;
               },
               [](caf::error&) { throw check_failed("which_children failed"); });
  return out;
}

supervisor_actor nested_supervisor(caf::scoped_actor& self, const supervisor_actor& sup,
                                   const std::string& id) {
  return nested_supervisor_of(children(self, sup)[id]);
}

}  // namespace

int main() {
  return run_example("supervision_tree", [] {
    caf::actor_system_config cfg;
    init(cfg);
    use_pkit_scheduler(cfg);
    caf::actor_system system{cfg};
    caf::scoped_actor self{system};

    // [snippet]
    supervisor_spec workers_spec{"workers", {}, {worker("queue"), worker("worker")}};
    workers_spec.flags.strategy = restart_strategy::rest_for_one;
    supervisor_spec backend_spec{"backend", {}, {worker("db"), nested("workers", workers_spec)}};
    backend_spec.flags.strategy = restart_strategy::one_for_all;
    supervisor_spec top{"top", {}, {worker("web"), nested("backend", backend_spec)}};
    top.flags.intensity = 5;

    // Subscribed from the start (a subscribe request sent after the spawn could arrive
    // after the first children's events).
    auto tree = spawn_supervisor(system, top, nullptr, {}, {{caf::actor_cast<caf::actor>(self)}});
    // [/snippet]

    // Print every level's events; wait for the ones that matter.
    auto subscribe = [&](const supervisor_actor& sup) {
      self->request(sup, std::chrono::seconds(10), subscribe_atom_v, caf::actor_cast<caf::actor>(self))
          .receive([](caf::ok_atom) {}, [](caf::error&) { throw check_failed("subscribe failed"); });
    };
    // An event of an earlier run (incarnation) can still be on its way: ask for the run.
    auto wait_for = [&](const std::string& child, event_kind kind, std::uint64_t run = 1) {
      for (bool seen = false; !seen;) {
        self->receive(
            [&](supervisor_event& e) {
              std::printf("  [%s] %s %s, pid %d, run %llu\n", e.supervisor.c_str(), e.child.c_str(),
                          to_string(e.kind).c_str(), e.pid, static_cast<unsigned long long>(e.incarnation));
              seen = e.child == child && e.kind == kind && e.incarnation >= run;
            },
            caf::after(std::chrono::seconds(10)) >> [&] { throw check_failed("no event for " + child); });
      }
    };
    // The initial start is under way; once `backend` is ready the whole tree is.
    wait_for("backend", event_kind::ready);
    auto backend = nested_supervisor(self, tree, "backend");
    auto workers_sup = nested_supervisor(self, backend, "workers");
    subscribe(backend);
    subscribe(workers_sup);

    const auto web0 = children(self, tree)["web"].pid;
    const auto db0 = children(self, backend)["db"].pid;
    const auto queue0 = children(self, workers_sup)["queue"].pid;
    const auto worker0 = children(self, workers_sup)["worker"].pid;
    std::printf("web %d, db %d, queue %d, worker %d\n", web0, db0, queue0, worker0);
    check(web0 > 0 && db0 > 0 && queue0 > 0 && worker0 > 0, "five programs run at three levels");

    std::printf("kill -9 worker (last child of a rest_for_one supervisor)\n");
    ::kill(worker0, SIGKILL);
    wait_for("worker", event_kind::ready, 2);
    auto w = children(self, workers_sup);
    check(w["worker"].pid != worker0 && w["worker"].automatic_restarts == 1, "worker was restarted");
    check(w["queue"].pid == queue0, "queue, before it, was left alone");

    std::printf("kill -9 db (a one_for_all group: db and workers restart together)\n");
    ::kill(db0, SIGKILL);
    wait_for("workers", event_kind::ready, 2);
    auto b = children(self, backend);
    workers_sup = nested_supervisor(self, backend, "workers");
    auto w2 = children(self, workers_sup);
    check(b["db"].pid != db0, "db was restarted");
    check(w2["queue"].pid != queue0 && w2["worker"].pid != w["worker"].pid,
          "the workers supervisor was restarted with its children");
    check(children(self, tree)["web"].pid == web0, "web, under top, was left alone");

    bool stopped = false;
    self->request(tree, std::chrono::seconds(10), stop_atom_v)
        .receive([&](caf::ok_atom) { stopped = true; }, [](caf::error&) {});
    check(stopped, "top answered stop");
    // stop is answered once every process of the tree has exited and been reaped: each pid
    // is gone (errno is read only when kill failed, so it is this call's).
    auto gone = [](pid_t pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; };
    check(gone(web0) && gone(b["db"].pid) && gone(w2["queue"].pid) && gone(w2["worker"].pid),
          "stopping top stopped the tree");
  });
}
