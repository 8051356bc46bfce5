# kvc_add_executable(NAME SOURCES ... LIBS ...): a program in <build>/bin.
function(kvc_add_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE kvc_project_options ${ARG_LIBS})
endfunction()

# kvc_add_test(NAME SOURCES ... LIBS ... LABEL label [LABEL_TESTS label filter ...]):
# a GoogleTest binary whose tests are registered with ctest under `label`.
# A test carries the label of the highest chapter whose exercises it needs
# (`core` or `kernels` when it needs none), so a learner who has finished
# chapters 01..N runs exactly the tests they can pass:
#   ctest -L '^(core|kernels|ch0[1-N])$'        (scripts/check-exercises.sh N)
# LABEL_TESTS gives the tests a GoogleTest filter selects another label, e.g.
#   LABEL_TESTS core "Ch04BlockAllocator.StartsWithEveryBlockFree:*Parses*"
# and the binary's other tests keep `label`.
function(kvc_add_test name)
  cmake_parse_arguments(ARG "" "LABEL" "SOURCES;LIBS;LABEL_TESTS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE kvc_project_options ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  set(relabelled "")
  set(pairs ${ARG_LABEL_TESTS})
  while(pairs)
    list(POP_FRONT pairs label filter)
    gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST
      WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
      TEST_FILTER "${filter}"
      PROPERTIES LABELS ${label})
    list(APPEND relabelled "${filter}")
  endwhile()
  if(relabelled)
    list(JOIN relabelled ":" negative)
    set(rest_filter TEST_FILTER "*-${negative}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST
    WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
    ${rest_filter}
    PROPERTIES LABELS ${ARG_LABEL})
endfunction()

# kvc_add_benchmark(NAME SOURCES ... LIBS ... LABEL label SMOKE filter): a
# Google Benchmark program in <build>/bin, and a ctest `NAME.smoke` (labels
# `label` and `bench`) that runs the cases `filter` picks, briefly. Timings
# are never checked; the smoke test only keeps every benchmark program running
# (one that throws fails the suite, not the next person who times it). A
# program that exits with kvc_skip_exit_code (common/cuda/device.hpp: the GPU
# benchmarks on a machine without a GPU) counts as skipped.
set(kvc_skip_exit_code 77)
function(kvc_add_benchmark name)
  cmake_parse_arguments(ARG "" "LABEL;SMOKE" "SOURCES;LIBS" ${ARGN})
  kvc_add_executable(${name} SOURCES ${ARG_SOURCES} LIBS ${ARG_LIBS} benchmark::benchmark)
  add_test(NAME ${name}.smoke
    COMMAND ${name} --benchmark_filter=${ARG_SMOKE} --benchmark_min_time=0.001)
  set_tests_properties(${name}.smoke PROPERTIES
    LABELS "${ARG_LABEL};bench" WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
    SKIP_RETURN_CODE ${kvc_skip_exit_code})
endfunction()
