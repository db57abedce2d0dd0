# Log capture (issue 10): pkit::tool::log_capture and the actor layer's capture hook.
pkit_add_test(NAME log_capture_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/log_capture_test.cpp
  LIBS pkit::tool pkit::actors LABELS tools)
set_tests_properties(log_capture_test PROPERTIES TIMEOUT 120)
pkit_add_test(NAME log_capture_end_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/log_capture_end_test.cpp
  LIBS pkit::tool LABELS tools)
