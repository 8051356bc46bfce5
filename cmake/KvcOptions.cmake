# kvc_project_options: the compile flags every project target gets (not third-party code).
add_library(kvc_project_options INTERFACE)

# Warnings are errors in our own C++ code.
target_compile_options(kvc_project_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror>)

# No silent a*b+c -> fma(a,b,c) contraction: the CPU reference must round like
# llama2.c's run.c (gcc -O3, no fma), so its sampled text matches byte for byte.
# Kernels that want FMA ask for it explicitly with intrinsics.
target_compile_options(kvc_project_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off>)

# ISA: deliberate, never an accidental -march=native. `auto` probes the build
# machine once; the result is printed at configure time and can be overridden.
set(KVC_CPU_ISA_RESOLVED ${KVC_CPU_ISA})
if(KVC_CPU_ISA STREQUAL "auto")
  set(KVC_CPU_ISA_RESOLVED baseline)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64" AND EXISTS /proc/cpuinfo)
    file(READ /proc/cpuinfo _kvc_cpuinfo)
    if(_kvc_cpuinfo MATCHES " avx2" AND _kvc_cpuinfo MATCHES " fma")
      set(KVC_CPU_ISA_RESOLVED x86-64-v3)
    endif()
  endif()
endif()
# Under `auto`, the int8 KV kernel's file also gets AVX-512 VNNI when the
# build machine has it (kernels/cpu/CMakeLists.txt): the rest stays x86-64-v3.
set(KVC_INT8_AVX512_VNNI OFF)
if(KVC_CPU_ISA STREQUAL "auto" AND KVC_CPU_ISA_RESOLVED STREQUAL "x86-64-v3"
   AND _kvc_cpuinfo MATCHES " avx512_vnni" AND _kvc_cpuinfo MATCHES " avx512bw"
   AND _kvc_cpuinfo MATCHES " avx512vl")
  set(KVC_INT8_AVX512_VNNI ON)
endif()
if(KVC_CPU_ISA_RESOLVED STREQUAL "x86-64-v3")
  target_compile_options(kvc_project_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=x86-64-v3>)
elseif(KVC_CPU_ISA_RESOLVED STREQUAL "native")
  target_compile_options(kvc_project_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
endif()

if(KVC_SANITIZE)
  target_compile_options(kvc_project_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=${KVC_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all>)
  target_link_options(kvc_project_options INTERFACE -fsanitize=${KVC_SANITIZE})
endif()

# Fuzzing: every project object is instrumented for libFuzzer's coverage and
# checked by ASan + UBSan; only the fuzz targets link libFuzzer's main.
if(KVC_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "KVC_FUZZ needs clang: configure with CC=clang CXX=clang++")
  endif()
  target_compile_options(kvc_project_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -g>)
  target_link_options(kvc_project_options INTERFACE -fsanitize=address,undefined)
endif()

target_include_directories(kvc_project_options INTERFACE ${CMAKE_SOURCE_DIR})
target_compile_definitions(kvc_project_options INTERFACE
  KVC_MODELS_DIR="${CMAKE_SOURCE_DIR}/models"
  KVC_REFERENCE_DIR="${CMAKE_SOURCE_DIR}/tests/data/llama2c"
  $<$<BOOL:${KVC_HAVE_CUDA}>:KVC_HAVE_CUDA=1>)
