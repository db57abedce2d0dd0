# FindCAF.cmake -- find the C++ Actor Framework (CAF) as packaged by Debian
# (libcaf-dev 0.17.x), which ships no CMake package of its own.
#
# Imported targets:
#   CAF::core   libcaf_core (requires Threads::Threads)
#   CAF::io     libcaf_io   (requires CAF::core)
#   CAF::openssl libcaf_openssl (requires CAF::io), only when it was found: Debian's
#               libcaf-dev ships its headers, libcaf-openssl0.17 the library
#
# Result variables:
#   CAF_FOUND, CAF_VERSION, CAF_INCLUDE_DIRS, CAF_LIBRARIES
#
# Cache variables (may be set to point at a non-system CAF):
#   CAF_INCLUDE_DIR, CAF_CORE_LIBRARY, CAF_IO_LIBRARY, CAF_OPENSSL_LIBRARY
#
# Hints: CAF_ROOT (standard <Package>_ROOT handling).

find_path(CAF_INCLUDE_DIR
  NAMES caf/config.hpp
  DOC "Directory containing caf/config.hpp")

find_library(CAF_CORE_LIBRARY
  NAMES caf_core
  DOC "Path to libcaf_core")

find_library(CAF_IO_LIBRARY
  NAMES caf_io
  DOC "Path to libcaf_io")

# Optional: only pkit's distribution layer (pkit::net) needs it.
find_library(CAF_OPENSSL_LIBRARY
  NAMES caf_openssl
  DOC "Path to libcaf_openssl")

# caf/config.hpp: "#define CAF_VERSION 1706" means 0.17.6
# (major * 10000 + minor * 100 + patch).
unset(CAF_VERSION)
if(CAF_INCLUDE_DIR AND EXISTS "${CAF_INCLUDE_DIR}/caf/config.hpp")
  file(STRINGS "${CAF_INCLUDE_DIR}/caf/config.hpp" _caf_version_line
    REGEX "^#[ \t]*define[ \t]+CAF_VERSION[ \t]+[0-9]+")
  if(_caf_version_line MATCHES "CAF_VERSION[ \t]+([0-9]+)")
    set(_caf_v ${CMAKE_MATCH_1})
    math(EXPR _caf_major "${_caf_v} / 10000")
    math(EXPR _caf_minor "(${_caf_v} / 100) % 100")
    math(EXPR _caf_patch "${_caf_v} % 100")
    set(CAF_VERSION "${_caf_major}.${_caf_minor}.${_caf_patch}")
    unset(_caf_v)
    unset(_caf_major)
    unset(_caf_minor)
    unset(_caf_patch)
  endif()
  unset(_caf_version_line)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CAF
  REQUIRED_VARS CAF_CORE_LIBRARY CAF_IO_LIBRARY CAF_INCLUDE_DIR
  VERSION_VAR CAF_VERSION)

if(CAF_FOUND)
  set(CAF_INCLUDE_DIRS ${CAF_INCLUDE_DIR})
  set(CAF_LIBRARIES ${CAF_IO_LIBRARY} ${CAF_CORE_LIBRARY})

  if(NOT TARGET Threads::Threads)
    set(THREADS_PREFER_PTHREAD_FLAG ON)
    find_package(Threads REQUIRED)
  endif()

  if(NOT TARGET CAF::core)
    add_library(CAF::core UNKNOWN IMPORTED)
    set_target_properties(CAF::core PROPERTIES
      IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES Threads::Threads)
  endif()

  if(NOT TARGET CAF::io)
    add_library(CAF::io UNKNOWN IMPORTED)
    set_target_properties(CAF::io PROPERTIES
      IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES CAF::core)
  endif()

  if(CAF_OPENSSL_LIBRARY AND EXISTS "${CAF_INCLUDE_DIR}/caf/openssl/manager.hpp"
     AND NOT TARGET CAF::openssl)
    add_library(CAF::openssl UNKNOWN IMPORTED)
    set_target_properties(CAF::openssl PROPERTIES
      IMPORTED_LOCATION "${CAF_OPENSSL_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES CAF::io)
  endif()
endif()

mark_as_advanced(CAF_INCLUDE_DIR CAF_CORE_LIBRARY CAF_IO_LIBRARY CAF_OPENSSL_LIBRARY)
