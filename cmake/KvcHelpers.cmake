# kvc_add_executable(NAME SOURCES ... LIBS ...): a program in <build>/bin.
function(kvc_add_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE kvc_project_options ${ARG_LIBS})
endfunction()

# kvc_add_test(NAME SOURCES ... LIBS ... LABELS ...): a GoogleTest binary whose
# tests are registered with ctest under LABELS (run one chapter: ctest -L ch02).
function(kvc_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE kvc_project_options ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  # Escape the list separators so several labels survive the trip through the generated ctest file.
  string(REPLACE ";" "\\;" labels "${ARG_LABELS}")
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST
    WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
    PROPERTIES LABELS "${labels}")
endfunction()
