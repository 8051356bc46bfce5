// Matrix multiply through cuBLAS: the projections of the forward pass.
//
// Weights live on the device in fp32, fp16 or bf16 (chosen by --weights-dtype,
// converted once on upload with kvc::cuda::upload_as). The product always
// accumulates in fp32 (CUBLAS_COMPUTE_32F: no TF32 shortcut). cuBLAS multiplies
// matching input types only, so for fp16/bf16 weights the activations are
// first rounded to the weight dtype into `x_scratch`.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include "common/number_format.hpp"

namespace kvc::cuda {

// An owned cuBLAS handle: create one per engine (per stream), reuse it for every call.
class CublasHandle {
 public:
  CublasHandle();
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

// out: [n][d_out] = x: [n][d_in] @ w: [d_out][d_in]^T, row-major as on the CPU.
// w is stored in `w_dtype`; x and out are fp32.
// x_scratch: n * d_in elements of w_dtype (matmul_scratch_bytes); unused for fp32 weights.
void matmul(cublasHandle_t cublas, float* out, const float* x, const void* w, NumberFormat w_dtype,
            int n, int d_in, int d_out, void* x_scratch, cudaStream_t stream);

// Bytes of x_scratch that matmul needs for n rows of d_in (0 for fp32 weights).
std::size_t matmul_scratch_bytes(NumberFormat w_dtype, int n, int d_in);

}  // namespace kvc::cuda
