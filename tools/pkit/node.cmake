# `pkit node` (issue 11): the node agent published for controllers elsewhere, its front
# and the allow-list file. Only when pkit::net is built (CAF's OpenSSL module, OpenSSL 3).
# In pkit-net only (CMakeLists.txt adds them to pkit_tool when pkit::net is built).
list(APPEND PKIT_TOOL_NET_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/src/node_allow.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/node_front.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/node_command.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/watchdog_feeder.cpp
  # Remote control (`[pkit] control_listen`, `pkit ctl --host`): the same control
  # protocol carried by one published actor over mutual TLS.
  ${CMAKE_CURRENT_LIST_DIR}/src/remote_control_server.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/remote_control_streams.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/remote_stream_queue.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/remote_control_client.cpp)
