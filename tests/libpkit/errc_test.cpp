// pkit::errc, its error category, and spawn_failure / spawn_error.

#include "test_support.hpp"

#include <pkit/errc.hpp>
#include <pkit/spawn_error.hpp>

#include <set>

namespace {
constexpr pkit::errc all_errcs[] = {
    pkit::errc::not_started,       pkit::errc::already_running,
    pkit::errc::start_timeout,     pkit::errc::died_before_ready,
    pkit::errc::invalid_argument,  pkit::errc::fork_server_unavailable,
    pkit::errc::unknown_target,    pkit::errc::would_deadlock,
    pkit::errc::pool_closed,       pkit::errc::pool_full,
    pkit::errc::not_owner,         pkit::errc::fork_server_timeout,
    pkit::errc::fork_server_protocol, pkit::errc::unknown_user,
    pkit::errc::unknown_group,
};
}  // namespace

BOOST_AUTO_TEST_CASE(the_pkit_category_is_named_pkit) {
  BOOST_TEST(std::string(pkit::pkit_category().name()) == "pkit");
  BOOST_TEST(&pkit::pkit_category() == &pkit::pkit_category());
}

BOOST_AUTO_TEST_CASE(every_errc_has_a_distinct_non_empty_message) {
  std::set<std::string> messages;
  for (pkit::errc e : all_errcs) {
    const std::string m = make_error_code(e).message();
    BOOST_TEST(!m.empty(), static_cast<int>(e));
    messages.insert(m);
  }
  BOOST_TEST(messages.size() == std::size(all_errcs));
}

BOOST_AUTO_TEST_CASE(errc_converts_implicitly_to_an_error_code_of_the_pkit_category) {
  std::error_code ec = pkit::errc::pool_full;
  BOOST_TEST(ec.category() == pkit::pkit_category());
  BOOST_TEST(ec.value() == static_cast<int>(pkit::errc::pool_full));
  BOOST_TEST(ec == pkit::errc::pool_full);
  BOOST_TEST(ec != pkit::errc::pool_closed);
  BOOST_TEST(static_cast<bool>(ec));  // no pkit::errc is zero ("success")
  for (pkit::errc e : all_errcs) BOOST_TEST(static_cast<int>(e) != 0);
}

BOOST_AUTO_TEST_CASE(pkit_codes_do_not_compare_equal_to_system_codes_of_the_same_value) {
  const std::error_code pkit_code = pkit::errc::not_started;  // value 1
  const std::error_code system_code{1, std::system_category()};
  BOOST_TEST(pkit_code != system_code);
  BOOST_TEST(!(pkit_code == std::errc::operation_not_permitted));
}

BOOST_AUTO_TEST_CASE(a_system_error_from_an_errc_carries_it) {
  const std::system_error e{pkit::errc::already_running, "start"};
  BOOST_TEST(e.code() == pkit::errc::already_running);
  BOOST_TEST(std::string(e.what()).find("start") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(spawn_failure_to_string_names_program_stage_and_error) {
  const pkit::spawn_failure f{"/no/such", "exec",
                              std::make_error_code(std::errc::no_such_file_or_directory)};
  BOOST_TEST(f.to_string() == "cannot start '/no/such': exec: No such file or directory");
}

BOOST_AUTO_TEST_CASE(spawn_error_is_a_system_error_with_the_failure) {
  const pkit::spawn_failure f{"prog", "chdir", std::error_code{ENOENT, std::system_category()}};
  const pkit::spawn_error e{f};
  const std::system_error& base = e;
  BOOST_TEST(base.code() == std::errc::no_such_file_or_directory);
  BOOST_TEST(std::string(e.what()) == f.to_string());
  BOOST_TEST(e.failure().program == "prog");
  BOOST_TEST(e.failure().stage == "chdir");

  const pkit::spawn_error pe{{"p", "ready", pkit::errc::start_timeout}};
  BOOST_TEST(pe.code() == pkit::errc::start_timeout);
  BOOST_TEST(std::string(pe.what()).find(make_error_code(pkit::errc::start_timeout).message()) !=
             std::string::npos);
}
