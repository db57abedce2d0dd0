# `pkit run` (the daemon), its event printer and guardian, and the `pkit` executable.
target_sources(pkit_tool PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/daemon.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/daemon_control.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/daemon_logs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/daemon_nodes.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/systemd_notify.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/tree_paths.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/event_printer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/line_writer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/guardian.cpp)
target_link_libraries(pkit_tool PRIVATE fmt::fmt)

add_executable(pkit ${CMAKE_CURRENT_LIST_DIR}/main.cpp)
target_link_libraries(pkit PRIVATE pkit_tool pkit_warnings CLI11::CLI11)
install(TARGETS pkit RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_CURRENT_LIST_DIR}/pkit.service DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/pkit/examples)
