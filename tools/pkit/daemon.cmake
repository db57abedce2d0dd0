# `pkit run` (the daemon), its event printer and guardian (the executables: CMakeLists.txt).
target_sources(pkit_tool_common PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/daemon.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/daemon_control.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/daemon_logs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/daemon_nodes.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/systemd_notify.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/tree_paths.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/event_printer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/line_writer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/guardian.cpp)
# The links to nodes: made by pkit-net, refused by pkit (daemon_detail.hpp, node_links).
list(APPEND PKIT_TOOL_NET_SOURCES ${CMAKE_CURRENT_LIST_DIR}/src/daemon_net.cpp)
list(APPEND PKIT_TOOL_LOCAL_SOURCES ${CMAKE_CURRENT_LIST_DIR}/src/daemon_no_net.cpp)
