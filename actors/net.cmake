# pkit::net — distribution over CAF's BASP with mutual TLS (issue 11): TLS file checks,
# the listen policy, the node agent's allow-list. Included by actors/CMakeLists.txt.
#
# Built only with the actor layer and when CAF's OpenSSL module and libssl are found.
# Not part of pkit::actors' link interface and not installed yet: the installed package
# (tests/package) stays core + actors until the distribution layer's API settles.
find_package(OpenSSL 3)
if(NOT TARGET CAF::openssl OR NOT TARGET OpenSSL::SSL)
  message(STATUS "pkit: pkit::net not built (needs libcaf_openssl and OpenSSL 3: libcaf-dev, libssl-dev)")
  return()
endif()

add_library(pkit_net
  src/net/allow_list.cpp
  src/net/child_guard.cpp
  src/net/error.cpp
  src/net/link_timing.cpp
  src/net/link_setup.cpp
  src/net/listen_policy.cpp
  src/net/node_agent.cpp
  src/net/node_directory.cpp
  src/net/tcp_probe.cpp
  src/net/placement_observer.cpp
  src/net/remote_process.cpp
  src/net/tls_files.cpp
  src/net/tls_snapshot.cpp
)
add_library(pkit::net ALIAS pkit_net)
set_target_properties(pkit_net PROPERTIES EXPORT_NAME net OUTPUT_NAME pkit_net)
target_compile_features(pkit_net PUBLIC cxx_std_20)
target_include_directories(pkit_net
  PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
target_link_libraries(pkit_net
  PUBLIC pkit::actors CAF::openssl
  PRIVATE OpenSSL::SSL OpenSSL::Crypto $<BUILD_INTERFACE:pkit_warnings>)
# The agent's hello reports the node's release.
target_compile_definitions(pkit_net PRIVATE PKIT_VERSION="${PROJECT_VERSION}")
target_sources(pkit_net PRIVATE src/net/tls_file_checks.cpp)
