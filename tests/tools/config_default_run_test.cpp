// The built-in default tree really runs on this machine (only /bin/sh and coreutils):
// every initial child gets ready, and the worker crashes and is restarted with the
// promised backoff. It takes the worker's 2-4 s of life: the one slow case of the suite.

#include <pkit/tool/config.hpp>

#include <pkit/actors/supervisor.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>

#include <boost/test/unit_test.hpp>

#include "actor_stopper.hpp"

#include <chrono>
#include <filesystem>

using namespace std::chrono_literals;
namespace pa = pkit::actors;

BOOST_AUTO_TEST_SUITE(config_default_run)

BOOST_AUTO_TEST_CASE(the_default_tree_gets_ready_and_restarts_its_worker_with_backoff) {
  auto loaded = pkit::tool::load_string(pkit::tool::default_tree_text(), "<built-in default>",
                                        std::filesystem::current_path());
  BOOST_TEST_REQUIRE(loaded.errors.empty());
  caf::actor_system_config cfg;
  pa::init(cfg);
  caf::actor_system system{cfg};
  caf::scoped_actor self{system};
  caf::scoped_actor events{system};
  auto sup = pa::start_supervisor(system, pkit::tool::to_supervisor_spec(*loaded.tree), 10s, nullptr,
                                  {{caf::actor_cast<caf::actor>(events), pa::mask_of({pa::event_kind::exited, pa::event_kind::restarting}), true}});
  BOOST_TEST_REQUIRE(static_cast<bool>(sup), (sup ? std::string() : system.render(sup.error())));
  // Ends it however the case ends: a failed REQUIRE below must not leave it restarting
  // its worker, or the system's destructor would wait for it for ever.
  pkit_test_common::actor_stopper stop_sup{*sup};

  // The worker lives 2-4 s, then exits 3: the first restart waits the backoff's 500ms
  // (+/- 10% jitter).
  std::optional<pa::supervisor_event> exit;
  std::optional<pa::supervisor_event> restart;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!restart && std::chrono::steady_clock::now() < deadline)
    events->receive(
        [&](pa::supervisor_event& e) {
          if (e.child != "worker") return;
          if (e.kind == pa::event_kind::exited && !exit) exit = e;
          if (e.kind == pa::event_kind::restarting) restart = e;
        },
        caf::after(1s) >> [] {});
  BOOST_TEST_REQUIRE(restart.has_value(), "the worker was never restarted");
  BOOST_TEST(restart->supervisor == "pkit");
  BOOST_TEST(restart->delay_ms >= 450);
  BOOST_TEST(restart->delay_ms <= 550);
  BOOST_TEST_REQUIRE(exit.has_value());
  BOOST_TEST(exit->status.code() == 3);

  bool stopped = false;
  self->request(*sup, 10s, pa::stop_atom_v)
      .receive([&](caf::ok_atom) { stopped = true; },
               [&](caf::error& e) { BOOST_TEST_MESSAGE("stop: " << system.render(e)); });
  BOOST_TEST(stopped);
}

BOOST_AUTO_TEST_SUITE_END()
