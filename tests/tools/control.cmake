# The control channel (helper "control"): server, client and protocol against a fake
# handler (no daemon needed), and `pkit ctl`'s formatting and exit codes.
foreach(_pkit_control_test IN ITEMS control_server_test control_socket_test ctl_command_test)
  pkit_add_test(NAME ${_pkit_control_test}
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/${_pkit_control_test}.cpp
    LIBS pkit_tool Threads::Threads
    LABELS tools)
endforeach()
unset(_pkit_control_test)
