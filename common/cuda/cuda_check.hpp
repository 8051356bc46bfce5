// Status checks for CUDA runtime and cuBLAS calls.
//
// Every runtime call in the project is wrapped: a failure throws kvc::Error
// naming the call, the error and the source line, so a bad launch or an
// out-of-memory surfaces as a one-line message instead of garbage later on.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include "common/check.hpp"

// KVC_CUDA_CHECK(cudaMalloc(&p, bytes)): throw when the call does not return cudaSuccess.
#define KVC_CUDA_CHECK(call)                                                           \
  do {                                                                                 \
    const cudaError_t kvc_cuda_status = (call);                                        \
    if (kvc_cuda_status != cudaSuccess)                                                \
      KVC_FAIL(#call, " failed: ", cudaGetErrorName(kvc_cuda_status), " (",            \
               cudaGetErrorString(kvc_cuda_status), ") at ", __FILE__, ":", __LINE__); \
  } while (0)

// KVC_CUDA_CHECK_LAUNCH(): after a kernel launch, report a bad configuration at once.
// (Launches are asynchronous; faults inside the kernel surface at the next sync.)
#define KVC_CUDA_CHECK_LAUNCH() KVC_CUDA_CHECK(cudaGetLastError())

// KVC_CUBLAS_CHECK(cublasGemmEx(...)): throw when the call does not return CUBLAS_STATUS_SUCCESS.
#define KVC_CUBLAS_CHECK(call)                                                              \
  do {                                                                                      \
    const cublasStatus_t kvc_cublas_status = (call);                                        \
    if (kvc_cublas_status != CUBLAS_STATUS_SUCCESS)                                         \
      KVC_FAIL(#call, " failed: ", cublasGetStatusName(kvc_cublas_status), " (",            \
               cublasGetStatusString(kvc_cublas_status), ") at ", __FILE__, ":", __LINE__); \
  } while (0)
