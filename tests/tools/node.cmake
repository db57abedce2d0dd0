# `pkit node` end to end: the real binary as a separate process, a controller in the test
# process over plain BASP on 127.0.0.1 (and TLS with make-certs.sh's certificates).
if(NOT TARGET pkit::net)
  return()
endif()
pkit_add_test(NAME pkit_node_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pkit_node_test.cpp ${CMAKE_CURRENT_LIST_DIR}/pkit_node_tls_test.cpp
  LIBS pkit_tool_test_drivers pkit::net
  LABELS tools)
target_compile_definitions(pkit_node_test PRIVATE PKIT_BINARY="$<TARGET_FILE:pkit>"
  PKIT_MAKE_CERTS="${PROJECT_SOURCE_DIR}/tools/make-certs.sh")
add_dependencies(pkit_node_test pkit)

# The allow-list file alone (pkit_tool's reader, no process).
pkit_add_test(NAME node_allow_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/node_allow_test.cpp
  LIBS pkit_tool
  LABELS tools)

# The node's watchdog feeder alone, on an actor system of the test's, its feeds recorded:
# they fall behind once the network thread or every worker is held.
pkit_add_test(NAME watchdog_feeder_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/watchdog_feeder_test.cpp
  LIBS pkit_tool
  LABELS tools)

# `pkit run` with programs on two real `pkit node` processes: placement, node_down,
# failover, the node column, links refused.
pkit_add_test(NAME pkit_run_nodes_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pkit_run_nodes_test.cpp
  LIBS pkit_tool_test_drivers
  LABELS tools)
target_compile_definitions(pkit_run_nodes_test PRIVATE PKIT_BINARY="$<TARGET_FILE:pkit>")
add_dependencies(pkit_run_nodes_test pkit)

# A node lost with its connection open (SIGSTOP; a partition through a network namespace
# and a veth pair, skipped where namespaces cannot be made): node_down within the bound,
# failover, the lost node stops its child; the detection, failover and double-run times.
pkit_add_test(NAME pkit_run_partition_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pkit_run_partition_test.cpp
  LIBS pkit_tool_test_drivers
  LABELS tools)
target_compile_definitions(pkit_run_partition_test PRIVATE PKIT_BINARY="$<TARGET_FILE:pkit>"
  PKIT_MAKE_CERTS="${PROJECT_SOURCE_DIR}/tools/make-certs.sh")
add_dependencies(pkit_run_partition_test pkit)

# Hostile sockets against a real `pkit node` (plain and TLS ports): garbage, plaintext to
# TLS, a 4 GiB payload_len under an address-space limit; a real `pkit run` served after;
# a controller forging child reports (nothing killed, the node serves on).
pkit_add_test(NAME pkit_node_hostile_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pkit_node_hostile_test.cpp ${CMAKE_CURRENT_LIST_DIR}/pkit_node_forged_test.cpp
  LIBS pkit_tool_test_drivers pkit::net
  LABELS tools)
target_compile_definitions(pkit_node_hostile_test PRIVATE PKIT_BINARY="$<TARGET_FILE:pkit>"
  PKIT_MAKE_CERTS="${PROJECT_SOURCE_DIR}/tools/make-certs.sh")
# Under ASan the 4 GiB case confines the node with ASan's allocation cap, not RLIMIT_AS.
if(PKIT_SANITIZE STREQUAL "address")
  target_compile_definitions(pkit_node_hostile_test PRIVATE PKIT_TEST_ASAN=1)
endif()
add_dependencies(pkit_node_hostile_test pkit)

# `pkit` (no network code) and `pkit-net` (the network commands), end to end.
pkit_add_test(NAME pkit_binaries_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pkit_binaries_test.cpp
  LIBS pkit_tool_test_drivers
  LABELS tools)
target_compile_definitions(pkit_binaries_test PRIVATE PKIT_BINARY="$<TARGET_FILE:pkit>"
  PKIT_NET_INSTALLED="${CMAKE_INSTALL_FULL_LIBEXECDIR}/pkit/pkit-net")
add_dependencies(pkit_binaries_test pkit)
