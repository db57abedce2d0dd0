# `pkit run` / `pkit check` end to end: the real binary, real processes and signals.
pkit_add_test(NAME pkit_run_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pkit_run_test.cpp
  LIBS pkit_tool_test_drivers pkit::core
  LABELS tools)
target_compile_definitions(pkit_run_test PRIVATE PKIT_BINARY="$<TARGET_FILE:pkit>")
add_dependencies(pkit_run_test pkit)

pkit_add_test(NAME daemon_event_printer_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/daemon_event_printer_test.cpp
  LIBS pkit_tool
  LABELS tools)

pkit_add_test(NAME daemon_control_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/daemon_control_test.cpp
  LIBS pkit_tool
  LABELS tools)

# `pkit ctl` against a real `pkit run`, and log capture through the real binary.
pkit_add_test(NAME pkit_ctl_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pkit_ctl_test.cpp ${CMAKE_CURRENT_LIST_DIR}/pkit_ctl_io_test.cpp
  LIBS pkit_tool_test_drivers
  LABELS tools)
target_compile_definitions(pkit_ctl_test PRIVATE PKIT_BINARY="$<TARGET_FILE:pkit>")
# GCC 12 with -fsanitize=address reports -Wmaybe-uninitialized inside libstdc++'s
# std::regex (its std::function members), a known false positive of that combination;
# -Werror made the ASan build fail on it. Only this target uses std::regex.
if(PKIT_SANITIZE STREQUAL "address")
  target_compile_options(pkit_ctl_test PRIVATE -Wno-maybe-uninitialized)
endif()
add_dependencies(pkit_ctl_test pkit)

# The guardian's watchdog (a frozen `pkit node` is fenced), with real processes.
pkit_add_test(NAME guardian_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/guardian_test.cpp
  LIBS pkit_tool
  LABELS tools)
