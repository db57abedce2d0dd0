# Log capture (issue 10): children's output to size-rotated files, and live listeners.
target_sources(pkit_tool_common PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/src/log_capture.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/log_listeners.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/rotating_line_sink.cpp)
