# kvc_add_executable(NAME SOURCES ... LIBS ...): a program in <build>/bin.
function(kvc_add_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE kvc_project_options ${ARG_LIBS})
endfunction()

# kvc_add_test(NAME SOURCES ... LIBS ... LABEL label): a GoogleTest binary whose
# tests are registered with ctest under `label` (run one chapter: ctest -L ch02).
# `ctest -L` takes a regular expression, so a suite shared by several chapters
# uses one label naming them all, e.g. "ch01-ch02".
function(kvc_add_test name)
  cmake_parse_arguments(ARG "" "LABEL" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE kvc_project_options ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST
    WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
    PROPERTIES LABELS ${ARG_LABEL})
endfunction()
