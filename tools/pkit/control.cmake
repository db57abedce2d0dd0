# The control channel (helper "control"): the Unix-socket server, its protocol, the
# client, and the `pkit ctl` subcommands. Protocol: PROTOCOL.md next to this file.
target_sources(pkit_tool_common PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/signals.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/control_protocol.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/control_socket.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/control_connection.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/control_server.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/control_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/ctl_format.cpp)
# `pkit ctl --host` (PKIT_HAVE_NODE) is pkit-net's.
list(APPEND PKIT_TOOL_VARIANT_SOURCES ${CMAKE_CURRENT_LIST_DIR}/src/ctl_command.cpp)
