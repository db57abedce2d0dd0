#pragma once

// Where the purpose-built helper program (tests/helper/pkit_test_child) is, for every
// suite that spawns it.

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace pkit_test_common {

/// Path of pkit_test_child: $PKIT_TEST_CHILD (set by CTest), else the path baked in at
/// build time (PKIT_TEST_CHILD_DEFAULT) so the test binaries also run by hand.
inline std::string child_path() {
  if (const char* p = std::getenv("PKIT_TEST_CHILD"); p != nullptr && *p != '\0') return p;
#ifdef PKIT_TEST_CHILD_DEFAULT
  return PKIT_TEST_CHILD_DEFAULT;
#else
  throw std::runtime_error("PKIT_TEST_CHILD is not set");
#endif
}

}  // namespace pkit_test_common
