#pragma once

// How BOOST_TEST prints pkit's value types and the actor layer's enums in a failed check.

#include <pkit/actors/error.hpp>
#include <pkit/actors/messages.hpp>
#include <pkit/exit_status.hpp>

#include <ostream>

namespace pkit {
inline std::ostream& boost_test_print_type(std::ostream& os, const exit_status& s) {
  return os << '"' << s.to_string() << '"';
}
}  // namespace pkit

namespace pkit::actors {
inline std::ostream& boost_test_print_type(std::ostream& os, process_state s) { return os << to_string(s); }
inline std::ostream& boost_test_print_type(std::ostream& os, error e) {
  return os << "pkit::actors::error::" << to_string(e);
}
inline std::ostream& boost_test_print_type(std::ostream& os, restart_strategy s) { return os << to_string(s); }
inline std::ostream& boost_test_print_type(std::ostream& os, restart_type t) { return os << to_string(t); }
inline std::ostream& boost_test_print_type(std::ostream& os, auto_shutdown a) { return os << to_string(a); }
inline std::ostream& boost_test_print_type(std::ostream& os, child_state s) { return os << to_string(s); }
inline std::ostream& boost_test_print_type(std::ostream& os, event_kind k) { return os << to_string(k); }
}  // namespace pkit::actors
