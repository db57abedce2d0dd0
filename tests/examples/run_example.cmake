# cmake -DPROGRAM=<path> [-DEXPECT=<regex>[;<regex>...]] [-DTIMEOUT=<s>] -P run_example.cmake
#
# Runs PROGRAM (its output is shown as it comes) and fails unless it exits with 0 and its
# combined stdout and stderr match every regular expression of EXPECT.

if(NOT DEFINED PROGRAM)
  message(FATAL_ERROR "run_example.cmake: PROGRAM is not set")
endif()
if(NOT DEFINED TIMEOUT)
  set(TIMEOUT 100)
endif()

execute_process(
  COMMAND "${PROGRAM}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output
  ECHO_OUTPUT_VARIABLE
  ECHO_ERROR_VARIABLE
  TIMEOUT ${TIMEOUT})

if(NOT result STREQUAL "0")
  message(FATAL_ERROR "${PROGRAM}: expected exit status 0, got: ${result}")
endif()

foreach(regex IN LISTS EXPECT)
  if(NOT output MATCHES "${regex}")
    message(FATAL_ERROR "${PROGRAM}: the output does not match: ${regex}")
  endif()
endforeach()
