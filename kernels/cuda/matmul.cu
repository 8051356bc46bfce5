// y = x @ W^T with cublasGemmEx, fp32 accumulation.
//
// cuBLAS is column-major. A row-major [rows][cols] matrix is the same bytes as a
// column-major [cols][rows] one, so the row-major product out = x @ W^T reads,
// in cuBLAS's terms, as the column-major product out^T = W @ x^T:
//   out^T: d_out x n (ld d_out), W: op(T) of the column-major d_in x d_out
//   matrix (ld d_in), x^T: d_in x n (ld d_in).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cublas_v2.h>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/matmul.hpp"

namespace kvc::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void convert_kernel(T* out, const float* in, std::size_t size) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < size;
       i += std::size_t{gridDim.x} * blockDim.x)
    out[i] = from_float<T>(in[i]);
}

cudaDataType_t cuda_data_type(NumberFormat dtype) {
  switch (dtype) {
    case NumberFormat::fp32:
      return CUDA_R_32F;
    case NumberFormat::fp16:
      return CUDA_R_16F;
    case NumberFormat::bf16:
      return CUDA_R_16BF;
    default:
      KVC_FAIL("cuda::matmul: weights are fp32, fp16 or bf16, not ", format_name(dtype));
  }
}

}  // namespace

CublasHandle::CublasHandle() {
  KVC_CUBLAS_CHECK(cublasCreate(&handle_));
}

CublasHandle::~CublasHandle() {
  cublasDestroy(handle_);
}

std::size_t matmul_scratch_bytes(NumberFormat w_dtype, int n, int d_in) {
  return w_dtype == NumberFormat::fp32 ? 0 : std::size_t(n) * d_in * float_format_bytes(w_dtype);
}

void matmul(cublasHandle_t cublas, float* out, const float* x, const void* w, NumberFormat w_dtype,
            int n, int d_in, int d_out, void* x_scratch, cudaStream_t stream) {
  KVC_CHECK(n >= 0 && d_in > 0 && d_out > 0, "cuda::matmul: bad shape n=", n, " d_in=", d_in,
            " d_out=", d_out);
  if (n == 0) return;
  const void* x_as_w_dtype = x;
  if (w_dtype != NumberFormat::fp32) {
    KVC_CHECK(x_scratch != nullptr, "cuda::matmul: ", format_name(w_dtype),
              " weights need x_scratch of ", matmul_scratch_bytes(w_dtype, n, d_in), " bytes");
    const std::size_t size = std::size_t(n) * d_in;
    dispatch_float_format(w_dtype, [&]<typename T>() {
      convert_kernel<T>
          <<<grid_for(size, kThreads), kThreads, 0, stream>>>(static_cast<T*>(x_scratch), x, size);
    });
    KVC_CUDA_CHECK_LAUNCH();
    x_as_w_dtype = x_scratch;
  }
  const float alpha = 1.0f;
  const float beta = 0.0f;
  const cudaDataType_t w_type = cuda_data_type(w_dtype);
  KVC_CUBLAS_CHECK(cublasSetStream(cublas, stream));
  KVC_CUBLAS_CHECK(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, d_out, n, d_in, &alpha, w, w_type,
                                d_in, x_as_w_dtype, w_type, d_in, &beta, out, CUDA_R_32F, d_out,
                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace kvc::cuda
