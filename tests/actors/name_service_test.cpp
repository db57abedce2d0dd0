// The start of a program run as another user or group looks its credentials up through
// the name service in pkit's own process (libpkit/src/detail/credentials.hpp). Behind
// NSS may be LDAP or sssd, whose lookups wait on a server for seconds: that wait must not
// hold a CAF worker (review 17b L2). The binary stands in for such a name service: it
// defines getpwnam_r (the executable's definition comes first in symbol lookup, for the
// static libpkit linked into it as for the C library), and a lookup of `held_user` waits
// until the test lets it go, then answers as "nobody" would. Its own executable: every
// lookup of the program goes through that definition.

#define BOOST_TEST_MODULE actors_name_service_test
#include "actor_test_support.hpp"

#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>

#include <dlfcn.h>
#include <pwd.h>

namespace {

using namespace pkit_actor_test;
using pkit::actors::process_state;

constexpr const char* held_user = "pkit-test-held";

/// The held lookups' gate: `entered` once one waits, `open` lets every one go.
struct lookup_gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool entered = false;
  bool open = false;

  bool wait_entered(std::chrono::milliseconds within) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, within, [this] { return entered; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      open = true;
    }
    changed.notify_all();
  }
};

lookup_gate& gate() {
  static lookup_gate g;
  return g;
}

/// Opens the gate however the case ends: a failed check must not leave a launcher (or,
/// before the fix, the only worker) waiting for ever.
struct gate_opener {
  ~gate_opener() { gate().release(); }
};

using getpwnam_r_fn = int (*)(const char*, passwd*, char*, std::size_t, passwd**);

getpwnam_r_fn real_getpwnam_r() {
  static const getpwnam_r_fn real = [] {
    void* sym = ::dlsym(RTLD_NEXT, "getpwnam_r");
    getpwnam_r_fn fn = nullptr;
    std::memcpy(&fn, &sym, sizeof fn);  // an object pointer to a function pointer, portably
    return fn;
  }();
  return real;
}

/// The uid line's real uid of /proc/PID/status, or -1.
long real_uid_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Uid:", 0) == 0) return std::stol(line.substr(4));
  return -1;
}

/// An actor system with one scheduler thread: an actor that blocks its worker blocks
/// every other actor.
struct one_worker_config : caf::actor_system_config {
  one_worker_config() {
    pa::init(*this);
    set("scheduler.max-threads", 1);
  }
};

}  // namespace

extern "C" int getpwnam_r(const char* name, passwd* pwd, char* buf, std::size_t size, passwd** result) {
  if (std::strcmp(name, held_user) == 0) {  // glibc declares name nonnull
    auto& g = gate();
    std::unique_lock<std::mutex> lock(g.mutex);
    g.entered = true;
    g.changed.notify_all();
    g.changed.wait(lock, [&] { return g.open; });
    name = "nobody";
  }
  return real_getpwnam_r()(name, pwd, buf, size, result);
}

// Before the fix the lookup ran in the start's handler, on the only worker: the other
// actor's status, and the starting actor's own, timed out until the lookup returned.
BOOST_AUTO_TEST_CASE(a_start_waiting_on_the_name_service_holds_no_worker) {
  one_worker_config cfg;
  caf::actor_system sys{cfg};
  BOOST_TEST_REQUIRE(sys.scheduler().num_workers() == 1u);
  caf::scoped_actor me{sys};
  auto spec = child_spec({"pause"});
  spec.user = held_user;
  auto starting = pa::spawn_process(sys, spec);
  auto other = pa::spawn_process(sys, child_spec({"pause"}));
  actor_stopper stop_starting{starting, caf::exit_reason::kill};
  actor_stopper stop_other{other, caf::exit_reason::kill};
  std::optional<std::int32_t> pid;
  std::optional<caf::error> refused;
  {
    gate_opener opener;
    auto pending = me->request(starting, 60s, pa::start_atom_v);
    BOOST_TEST_REQUIRE(gate().wait_entered(event_timeout), "the start did not look its user up");
    bool answered_self = false, answered_other = false;
    me->request(starting, 3s, pa::status_atom_v)
        .receive([&](const pa::process_info& i) { answered_self = i.state == process_state::starting && i.pid == 0; },
                 [&](caf::error&) {});
    me->request(other, 3s, pa::status_atom_v)
        .receive([&](const pa::process_info&) { answered_other = true; }, [&](caf::error&) {});
    gate().release();
    BOOST_TEST(answered_self, "the starting actor did not answer status during its lookup");
    BOOST_TEST(answered_other, "another actor did not answer status during a lookup");
    pending.receive([&](std::int32_t p) { pid = p; }, [&](caf::error& e) { refused = e; });
  }
  const passwd* nobody = ::getpwnam("nobody");
  BOOST_TEST_REQUIRE(nobody != nullptr);
  if (::geteuid() != 0) {
    // Without the privilege to switch users the start fails — after the lookup all the same.
    BOOST_TEST_REQUIRE(refused.has_value(), "a start as another user succeeded without privilege");
    BOOST_TEST((*refused == pa::error::start_failed), sys.render(*refused));
    return;
  }
  BOOST_TEST_REQUIRE(pid.has_value(), "the start failed: " << (refused ? sys.render(*refused) : ""));
  // The lookup's answer is the one the child runs with.
  BOOST_TEST(real_uid_of(*pid) == static_cast<long>(nobody->pw_uid));
  me->request(starting, event_timeout, pa::kill_atom_v).receive([](pkit::exit_status) {}, [](caf::error&) {});
  BOOST_TEST(gone_within(*pid));
}
