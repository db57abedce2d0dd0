# The tree file (config part): TOML → tree_config → supervisor_spec, its checks, describe,
# diff, and the built-in default tree (default.toml, embedded at configure time so that
# the file stays the one source of truth).

file(READ ${CMAKE_CURRENT_SOURCE_DIR}/default.toml PKIT_DEFAULT_TREE)
if(PKIT_DEFAULT_TREE MATCHES "\\)pkit_tree\"")
  message(FATAL_ERROR "default.toml must not contain the raw string delimiter )pkit_tree\"")
endif()
configure_file(src/config_default.cpp.in ${CMAKE_CURRENT_BINARY_DIR}/config_default.cpp @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/default.toml)

target_sources(pkit_tool_common PRIVATE
  src/config_values.cpp
  src/config_reader.cpp
  src/config_parse.cpp
  src/config_program.cpp
  src/config_checks.cpp
  src/config_model.cpp
  src/config_map.cpp
  src/config_describe.cpp
  src/config_diff.cpp
  ${CMAKE_CURRENT_BINARY_DIR}/config_default.cpp)

# The [nodes] checks share pkit::net's rule of what is loopback (a node beyond it needs
# TLS); without it (`pkit`), they refuse nodes and control_listen (a reload: restart).
list(APPEND PKIT_TOOL_VARIANT_SOURCES ${CMAKE_CURRENT_LIST_DIR}/src/config_nodes.cpp)
