// process_options::user / group / rlimits: credentials resolved in the parent and set in
// the child (setgroups, setresgid, setresuid), resource limits set before them. The
// cases that change credentials need root and skip themselves otherwise; what the child
// got is read from the child itself (the helper's `ids`) and from /proc/PID/status.

#define BOOST_TEST_MODULE libpkit process credentials and limits
#include "test_support.hpp"

#include <pkit/fork_server.hpp>
#include <pkit/identity.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>

using namespace pkit_test;
using namespace std::chrono_literals;

namespace {

bool root() { return ::geteuid() == 0; }

#define PKIT_REQUIRE_ROOT()                                          \
  do {                                                               \
    if (!root()) {                                                   \
      BOOST_TEST_MESSAGE("skipped: needs root to change credentials"); \
      return;                                                        \
    }                                                                \
  } while (false)

// What the helper's `ids` prints: "RUID EUID SUID RGID EGID SGID G1,G2,...".
std::string ids_of(uid_t uid, gid_t gid, std::vector<gid_t> groups) {
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  std::string s;
  for (auto id : {uid, uid, uid}) s += std::to_string(id) + ' ';
  for (auto id : {gid, gid, gid}) s += std::to_string(id) + ' ';
  if (groups.empty()) s += '-';
  for (std::size_t i = 0; i < groups.size(); ++i) s += (i > 0 ? "," : "") + std::to_string(groups[i]);
  return s + "\n";
}

std::vector<gid_t> group_list(const char* user, gid_t gid) {
  int n = 64;
  std::vector<gid_t> g(64);
  BOOST_TEST_REQUIRE(::getgrouplist(user, gid, g.data(), &n) >= 0);
  g.resize(static_cast<std::size_t>(n));
  return g;
}

// Runs the helper with `args` under `o` and returns its stdout.
std::string output_of(std::vector<std::string> args, pkit::process_options o) {
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command(std::move(args)), o};
  p.start();
  auto out = p.take_stdout_pipe();
  std::string text = read_all(out.get());
  BOOST_TEST(p.join() == 0);
  return text;
}

pkit::process_options as(std::string user, std::string group = "") {
  pkit::process_options o;
  o.user = std::move(user);
  o.group = std::move(group);
  return o;
}

const passwd& nobody() {
  static const passwd pw = [] {
    const passwd* p = ::getpwnam("nobody");
    if (p == nullptr) throw std::runtime_error("no user nobody");
    return *p;
  }();
  return pw;
}

// A fork server started while the program is still single-threaded (before any start
// creates pkit's reaper thread), for the refusal case.
struct server_fixture {
  static inline std::optional<pkit::fork_server> server;
  server_fixture() {
    pkit::fork_server::registry r;
    r.add("exit-0", [](const std::vector<std::string>&) { return 0; });
    server.emplace(pkit::fork_server::start(std::move(r)));
  }
  ~server_fixture() { server.reset(); }
};
BOOST_TEST_GLOBAL_FIXTURE(server_fixture);

}  // namespace

BOOST_AUTO_TEST_CASE(fork_server_targets_refuse_credentials_and_limits_before_any_spawn) {
  auto& server = *server_fixture::server;
  auto refused_at = [&](pkit::process_options o) {
    pkit::process p{server.target("exit-0"), std::move(o)};
    std::error_code ec;
    p.start(ec);
    BOOST_TEST((ec == std::errc::not_supported), ec.message());
    return p.last_failure() ? p.last_failure()->stage : std::string("<none>");
  };
  // Our own ids: resolvable with or without privileges, so the refusal is what fails.
  BOOST_TEST(refused_at(as(std::to_string(::geteuid()))) == "user");
  BOOST_TEST(refused_at(as("", std::to_string(::getegid()))) == "group");
  // Refused before any lookup (one may wait seconds on a name server, for nothing): a
  // user nobody has is refused as unsupported, not looked up as unknown.
  BOOST_TEST(refused_at(as("no-such-user-pkit")) == "user");
  pkit::process_options lim;
  lim.rlimits.push_back({RLIMIT_NOFILE, 64, 64});
  BOOST_TEST(refused_at(lim) == "setrlimit");
  pkit::process_options note;
  note.notify_socket = true;
  BOOST_TEST(refused_at(note) == "notify socket");
  // The same server still runs plain targets.
  pkit::process ok{server.target("exit-0")};
  ok.start(pkit::wait);
  BOOST_TEST(ok.join() == 0);
}

BOOST_AUTO_TEST_SUITE(credentials)

BOOST_AUTO_TEST_CASE(a_program_runs_as_nobody_with_its_groups) {
  PKIT_REQUIRE_ROOT();
  const auto& pw = nobody();
  BOOST_TEST(output_of({"ids"}, as("nobody")) == ids_of(pw.pw_uid, pw.pw_gid, group_list("nobody", pw.pw_gid)));
  BOOST_TEST(output_of({"ids"}, as(std::to_string(pw.pw_uid))) ==
             ids_of(pw.pw_uid, pw.pw_gid, group_list("nobody", pw.pw_gid)));
}

BOOST_AUTO_TEST_CASE(proc_status_shows_the_childs_credentials) {
  PKIT_REQUIRE_ROOT();
  const auto& pw = nobody();
  pkit::process p{child_command({"pause"}), as("nobody")};
  const pid_t pid = p.start(pkit::wait);
  const std::string status = read_text_file("/proc/" + std::to_string(pid) + "/status");
  const std::string u = std::to_string(pw.pw_uid), g = std::to_string(pw.pw_gid);
  BOOST_TEST(status_field(status, "Uid:") == u + "\t" + u + "\t" + u + "\t" + u);
  BOOST_TEST(status_field(status, "Gid:") == g + "\t" + g + "\t" + g + "\t" + g);
  std::string groups;  // "65534" or "27 65534" (the kernel's "Groups:\t27 65534 ")
  for (gid_t id : group_list("nobody", pw.pw_gid)) groups += (groups.empty() ? "" : " ") + std::to_string(id);
  std::string shown = status_field(status, "Groups:");
  shown.erase(shown.find_last_not_of(' ') + 1);
  BOOST_TEST(shown == groups);
  BOOST_TEST(status_field(status, "CapEff:") == "0000000000000000");
  p.kill();
  p.join();
}

BOOST_AUTO_TEST_CASE(a_group_given_with_the_user_is_the_primary_one) {
  PKIT_REQUIRE_ROOT();
  const auto& pw = nobody();
  BOOST_TEST(output_of({"ids"}, as("nobody", "0")) == ids_of(pw.pw_uid, 0, group_list("nobody", 0)));
}

BOOST_AUTO_TEST_CASE(a_group_alone_sets_the_gid_and_only_that_group) {
  PKIT_REQUIRE_ROOT();
  BOOST_TEST(output_of({"ids"}, as("", "54321")) == ids_of(0, 54321, {54321}));
}

BOOST_AUTO_TEST_CASE(a_uid_without_a_passwd_entry_needs_a_group) {
  PKIT_REQUIRE_ROOT();
  BOOST_TEST_REQUIRE(::getpwuid(54321) == nullptr);
  BOOST_TEST(output_of({"ids"}, as("54321", "54321")) == ids_of(54321, 54321, {54321}));
  pkit::process p{child_command({"ids"}), as("54321")};
  std::error_code ec;
  BOOST_TEST(p.start(ec) == -1);
  BOOST_TEST((ec == pkit::errc::unknown_user));
  BOOST_TEST(p.last_failure()->stage == "user");
}

BOOST_AUTO_TEST_CASE(the_parent_death_signal_survives_the_change_of_user) {
  PKIT_REQUIRE_ROOT();
  // A credential change clears PR_SET_PDEATHSIG: it must be set after it.
  BOOST_TEST(output_of({"pdeathsig"}, as("nobody")) == "9\n");
}

BOOST_AUTO_TEST_CASE(a_callable_runs_as_the_user_too) {
  PKIT_REQUIRE_ROOT();
  const uid_t uid = nobody().pw_uid;
  pkit::process p{[uid] { return ::getuid() == uid && ::geteuid() == uid && ::getgid() == nobody().pw_gid ? 0 : 1; },
                  as("nobody")};
  p.start(pkit::wait);
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(unknown_users_and_groups_fail_the_start_before_any_spawn) {
  const auto children = children_of_self();
  std::error_code ec;
  pkit::process a{child_command({"exit", "0"}), as("no-such-user-pkit")};
  BOOST_TEST(a.start(ec) == -1);
  BOOST_TEST((ec == pkit::errc::unknown_user));
  BOOST_TEST(a.last_failure()->stage == "user");
  BOOST_CHECK_EXCEPTION(a.start(), pkit::spawn_error, has_code(pkit::errc::unknown_user));

  pkit::process b{child_command({"exit", "0"}), as("", "no-such-group-pkit")};
  b.start(ec);
  BOOST_TEST((ec == pkit::errc::unknown_group));
  BOOST_TEST(b.last_failure()->stage == "group");
  BOOST_TEST(children_of_self() == children);
}

// getpwnam/getgrnam would look a NUL-cut name up: "root\0x" would be root. Refused at
// the stage of the field, before any lookup or spawn.
BOOST_AUTO_TEST_CASE(a_user_or_group_with_a_nul_byte_is_refused) {
  const auto children = children_of_self();
  std::error_code ec;
  auto opts = as(std::string("root\0x", 6));
  temp_dir dir;
  opts.out = pkit::stdio::file(dir.file("out.txt"));  // refused before it is created
  pkit::process a{child_command({"exit", "0"}), opts};
  a.start(ec);
  BOOST_TEST((ec == pkit::errc::invalid_argument), ec.message());
  BOOST_TEST_REQUIRE(a.last_failure().has_value());
  BOOST_TEST(a.last_failure()->stage == "user");
  BOOST_TEST(!std::filesystem::exists(dir.file("out.txt")));
  pkit::process b{child_command({"exit", "0"}), as("", std::string("root\0x", 6))};
  b.start(ec);
  BOOST_TEST((ec == pkit::errc::invalid_argument), ec.message());
  BOOST_TEST_REQUIRE(b.last_failure().has_value());
  BOOST_TEST(b.last_failure()->stage == "group");
  BOOST_TEST(children_of_self() == children);
}

// identity::lookup made elsewhere (an actor's worker must not wait on NSS), then
// start(identity): the child runs with the looked-up ids, the start itself looks nothing up.
BOOST_AUTO_TEST_CASE(a_start_with_a_looked_up_identity_runs_with_it) {
  PKIT_REQUIRE_ROOT();
  const auto& pw = nobody();
  const pkit::identity who = pkit::identity::lookup("nobody", "");
  BOOST_TEST_REQUIRE(!who.error(), who.error().message());
  BOOST_TEST(who.changes());
  BOOST_TEST(who.uid() == pw.pw_uid);
  BOOST_TEST(who.gid() == pw.pw_gid);
  pkit::process_options o = as("nobody");
  o.out = pkit::stdio::pipe();
  pkit::process p{child_command({"ids"}), o};
  p.start(who);
  auto out = p.take_stdout_pipe();
  BOOST_TEST(read_all(out.get()) == ids_of(pw.pw_uid, pw.pw_gid, group_list("nobody", pw.pw_gid)));
  BOOST_TEST(p.join() == 0);
}

// Asking for who we are needs no privilege: the same case for any user.
BOOST_AUTO_TEST_CASE(a_looked_up_identity_of_ourselves_starts_without_privilege) {
  const std::string me = std::to_string(::geteuid());
  const std::string my_group = std::to_string(::getegid());
  const pkit::identity who = pkit::identity::lookup(me, my_group);
  BOOST_TEST_REQUIRE(!who.error(), who.error().message());
  pkit::process p{child_command({"exit", "3"}), as(me, my_group)};
  BOOST_TEST(p.start(who) > 0);
  BOOST_TEST(p.join() == 3);
}

BOOST_AUTO_TEST_CASE(a_failed_lookup_fails_the_start_with_its_error_and_stage_and_spawns_nothing) {
  const auto children = children_of_self();
  const pkit::identity nobody_such = pkit::identity::lookup("no-such-user-pkit", "");
  BOOST_TEST((nobody_such.error() == pkit::errc::unknown_user));
  BOOST_TEST(std::string(nobody_such.stage()) == "user");
  pkit::process a{child_command({"exit", "0"}), as("no-such-user-pkit")};
  std::error_code ec;
  BOOST_TEST(a.start(nobody_such, ec) == -1);
  BOOST_TEST((ec == pkit::errc::unknown_user));
  BOOST_TEST(a.last_failure()->stage == "user");
  BOOST_CHECK_EXCEPTION(a.start(nobody_such), pkit::spawn_error, has_code(pkit::errc::unknown_user));

  const pkit::identity no_group = pkit::identity::lookup("", "no-such-group-pkit");
  pkit::process b{child_command({"exit", "0"}), as("", "no-such-group-pkit")};
  b.start(no_group, ec);
  BOOST_TEST((ec == pkit::errc::unknown_group));
  BOOST_TEST(b.last_failure()->stage == "group");
  BOOST_TEST(children_of_self() == children);
}

// An identity stands for the lookup of the process's own names only: another user's ids
// must not slip into a start (a stale or mixed-up lookup).
BOOST_AUTO_TEST_CASE(an_identity_of_other_names_is_refused_before_any_spawn) {
  const auto children = children_of_self();
  const std::string me = std::to_string(::geteuid());
  const pkit::identity mine = pkit::identity::lookup(me, "");
  pkit::process other{child_command({"exit", "0"}), as("nobody")};
  std::error_code ec;
  BOOST_TEST(other.start(mine, ec) == -1);
  BOOST_TEST((ec == pkit::errc::invalid_argument), ec.message());
  BOOST_TEST(other.last_failure()->stage == "validate");
  pkit::process plain{child_command({"exit", "0"})};
  BOOST_TEST(plain.start(mine, ec) == -1);
  BOOST_TEST((ec == pkit::errc::invalid_argument), ec.message());
  // The identity of no names fits a process without user and group.
  BOOST_TEST(plain.start(pkit::identity{}, ec) > 0, ec.message());
  BOOST_TEST(plain.join() == 0);
  BOOST_TEST(children_of_self() == children);
}

BOOST_AUTO_TEST_CASE(an_unprivileged_parent_cannot_ask_for_root_but_may_ask_for_itself) {
  PKIT_REQUIRE_ROOT();  // to become unprivileged in a forked copy
  const std::string verdict = verdict_of_forked_copy([] {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
      return std::string("setresuid failed");
    pkit::process p{child_command({"exit", "0"}), as("root")};
    std::error_code ec;
    p.start(ec);
    if (ec != std::errc::operation_not_permitted) return "root: " + ec.message();
    if (p.last_failure()->stage != "user") return "stage " + p.last_failure()->stage;
    pkit::process q{child_command({"exit", "0"}), as("nobody", "nogroup")};
    (void)q;  // resolving "nobody" as nobody is a no-op; starting needs a reaper (not in TSan's copy)
    return std::string("ok");
  });
  BOOST_TEST(verdict == "ok");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rlimits)

BOOST_AUTO_TEST_CASE(a_program_gets_its_rlimits) {
  pkit::process_options o;
  o.rlimits.push_back({RLIMIT_NOFILE, 64, 128});
  BOOST_TEST(output_of({"rlimit", "nofile"}, o) == "64 128\n");
}

BOOST_AUTO_TEST_CASE(options_rlimits_apply_after_the_commands_own) {
  pkit::process_options o;
  o.rlimits.push_back({RLIMIT_NOFILE, 32, 64});
  o.out = pkit::stdio::pipe();
  auto cmd = child_command({"rlimit", "nofile"});
  cmd.limits.push_back({RLIMIT_NOFILE, 100, 200});
  cmd.limits.push_back({RLIMIT_CORE, 0, 0});
  pkit::process p{cmd, o};
  p.start();
  auto out = p.take_stdout_pipe();
  BOOST_TEST(read_all(out.get()) == "32 64\n");
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(a_callable_gets_its_rlimits) {
  pkit::process_options o;
  o.rlimits.push_back({RLIMIT_NOFILE, 50, 60});
  pkit::process p{[] {
                    rlimit l{};
                    return ::getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur == 50 && l.rlim_max == 60 ? 0 : 1;
                  },
                  o};
  p.start(pkit::wait);
  BOOST_TEST(p.join() == 0);
}

BOOST_AUTO_TEST_CASE(a_soft_limit_over_the_hard_one_fails_the_start) {
  pkit::process_options o;
  o.rlimits.push_back({RLIMIT_NOFILE, 128, 64});
  pkit::process p{child_command({"exit", "0"}), o};
  std::error_code ec;
  BOOST_TEST(p.start(ec) == -1);
  BOOST_TEST((ec == pkit::errc::invalid_argument));
  BOOST_TEST(p.last_failure()->stage == "setrlimit");
}

BOOST_AUTO_TEST_CASE(a_limit_the_child_cannot_set_fails_at_stage_setrlimit) {
  rlimit cur{};
  ::getrlimit(RLIMIT_NOFILE, &cur);
  if (cur.rlim_max == RLIM_INFINITY || root()) {
    // Root may raise it: ask for more than the kernel's nr_open instead.
    cur.rlim_max = 1u << 30;
  }
  pkit::process_options o;
  o.rlimits.push_back({RLIMIT_NOFILE, cur.rlim_max + 1, cur.rlim_max + 1});
  pkit::process p{child_command({"exit", "0"}), o};
  std::error_code ec;
  BOOST_TEST(p.start(ec) == -1);
  BOOST_TEST((ec == std::errc::operation_not_permitted || ec == std::errc::invalid_argument), ec.message());
  BOOST_TEST(p.last_failure()->stage == "setrlimit");
}

// The reaper is made by the first start; when that fails (no descriptor left for its
// epoll), the start fails with the reason and leaves the process as it was: the next
// start, with descriptors again, works. (It stayed 'starting': every later start got
// already_running and the destructor waited for ever.) In a forked copy, where no reaper
// exists yet; not under TSan, which refuses the reaper thread in such a copy.
BOOST_AUTO_TEST_CASE(a_first_start_that_cannot_make_the_reaper_fails_cleanly_and_the_next_works) {
#if defined(__SANITIZE_THREAD__)
  BOOST_TEST_MESSAGE("skipped under ThreadSanitizer (threads in a forked copy)");
  return;
#endif
  const std::string verdict = verdict_of_forked_copy([] {
    rlimit old{};
    ::getrlimit(RLIMIT_NOFILE, &old);
    const int next_fd = ::dup(0);  // the lowest free descriptor: the limit makes it the last
    ::close(next_fd);
    rlimit low = old;
    low.rlim_cur = static_cast<rlim_t>(next_fd);
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) return std::string("setrlimit failed");
    pkit::process p{child_command({"exit", "3"})};
    std::error_code ec;
    p.start(ec);
    ::setrlimit(RLIMIT_NOFILE, &old);
    if (!ec) return std::string("started without a descriptor for the reaper");
    if (ec != std::errc::too_many_files_open) return "first start: " + ec.message();
    p.start(ec);
    if (ec) return "second start: " + ec.message();
    const auto code = p.join();
    return code == 3 ? std::string("ok") : "exit " + std::to_string(code);
  });
  BOOST_TEST(verdict == "ok");
}

BOOST_AUTO_TEST_SUITE_END()
