# The control channel (helper "control"): server, client and protocol against a fake
# handler (no daemon needed), and `pkit ctl`'s formatting and exit codes.
foreach(_pkit_control_test IN ITEMS control_server_test control_socket_test ctl_command_test)
  pkit_add_test(NAME ${_pkit_control_test}
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/${_pkit_control_test}.cpp
    LIBS pkit_tool Threads::Threads
    LABELS tools)
endforeach()
unset(_pkit_control_test)

# `pkit ctl --host` against a real `pkit run` with [pkit] control_listen (TLS with
# make-certs.sh's certificates); only when pkit::net (CAF's OpenSSL module) is built.
if(TARGET pkit::net)
  pkit_add_test(NAME pkit_ctl_host_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/pkit_ctl_host_test.cpp
    LIBS pkit_tool_test_drivers pkit::net
    LABELS tools)
  target_compile_definitions(pkit_ctl_host_test PRIVATE PKIT_BINARY="$<TARGET_FILE:pkit>"
    PKIT_MAKE_CERTS="${PROJECT_SOURCE_DIR}/tools/make-certs.sh")
  add_dependencies(pkit_ctl_host_test pkit)
endif()
if(TARGET pkit::net)
  # The remote control endpoint and client alone, in one process (plain loopback).
  pkit_add_test(NAME remote_control_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/remote_control_test.cpp
    LIBS pkit_tool Threads::Threads
    LABELS tools)
endif()
