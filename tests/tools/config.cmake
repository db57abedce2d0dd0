# The tree file (config part): loading, checks (a corpus of bad files in bad/, each with
# its expected errors on its first lines), mapping, describe, diff, the default tree.
pkit_add_test(NAME config_test
  SOURCES config_load_test.cpp config_bad_test.cpp config_diff_test.cpp config_default_run_test.cpp
  LIBS pkit_tool
  LABELS tools)
target_compile_definitions(config_test PRIVATE PKIT_CONFIG_TEST_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
