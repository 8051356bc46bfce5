// Quantize on write (see kv_quantize.hpp).
//
// Tests: build/bin/kvc_cuda_ch07_tests --gtest_filter='*QuantizedPoolCuda*'
// Compiled, not yet run on a GPU when this was written.
#include <cstdint>

#include <cuda_fp8.h>

#include "common/check.hpp"
#include "common/cuda/cuda_check.hpp"
#include "kernels/cuda/kv_quantize.hpp"

namespace kvc::cuda {
namespace {

constexpr int kWarp = 32;

template <NumberFormat kFormat>
__device__ __forceinline__ unsigned char quantize(float x, float scale) {
  // Division, as the CPU does (not x * (1 / scale), which rounds differently).
  const float scaled = scale > 0.0f ? x / scale : 0.0f;
  if constexpr (kFormat == NumberFormat::int8) {
    const float code = fminf(fmaxf(rintf(scaled), -127.0f), 127.0f);
    return static_cast<unsigned char>(static_cast<std::int8_t>(code));
  } else {
    return __nv_cvt_float_to_fp8(scaled, __NV_SATFINITE, __NV_E4M3);
  }
}

// grid (n_tokens, n_kv_heads, 2: K then V), one warp each.
template <NumberFormat kFormat>
__global__ void __launch_bounds__(kWarp)
    kv_quantize_store_kernel(unsigned char* k_codes, float* k_scales, unsigned char* v_codes,
                             float* v_scales, const float* k, const float* v,
                             const std::int64_t* slots, int n_kv_heads, int head_dim) {
  const int token = blockIdx.x, head = blockIdx.y;
  const bool is_value = blockIdx.z == 1;
  const std::size_t in_row = static_cast<std::size_t>(token) * n_kv_heads + head;
  const float* x = (is_value ? v : k) + in_row * head_dim;
  const std::size_t pool_row = static_cast<std::size_t>(slots[token]) * n_kv_heads + head;
  unsigned char* codes = (is_value ? v_codes : k_codes) + pool_row * head_dim;

  float max_abs = 0.0f;
  for (int d = threadIdx.x; d < head_dim; d += kWarp) max_abs = fmaxf(max_abs, fabsf(x[d]));
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    max_abs = fmaxf(max_abs, __shfl_xor_sync(0xffffffffu, max_abs, offset));
  }
  // The maximum is exact whatever the order, so every lane holds the CPU's scale.
  const float scale = max_abs / (kFormat == NumberFormat::int8 ? 127.0f : 448.0f);
  for (int d = threadIdx.x; d < head_dim; d += kWarp) codes[d] = quantize<kFormat>(x[d], scale);
  if (threadIdx.x == 0) (is_value ? v_scales : k_scales)[pool_row] = scale;
}

}  // namespace

void kv_quantize_store(const KvDtype& dtype, unsigned char* k_codes, float* k_scales,
                       unsigned char* v_codes, float* v_scales, const float* k, const float* v,
                       const std::int64_t* slots, int n_tokens, int n_kv_heads, int head_dim,
                       cudaStream_t stream) {
  KVC_CHECK(dtype.format == NumberFormat::int8 || dtype.format == NumberFormat::fp8_e4m3,
            "cuda::kv_quantize_store: int8 or fp8 only, not ", dtype.name());
  if (n_tokens == 0) return;
  const dim3 grid(n_tokens, n_kv_heads, 2);
  if (dtype.format == NumberFormat::int8) {
    kv_quantize_store_kernel<NumberFormat::int8><<<grid, kWarp, 0, stream>>>(
        k_codes, k_scales, v_codes, v_scales, k, v, slots, n_kv_heads, head_dim);
  } else {
    kv_quantize_store_kernel<NumberFormat::fp8_e4m3><<<grid, kWarp, 0, stream>>>(
        k_codes, k_scales, v_codes, v_scales, k, v, slots, n_kv_heads, head_dim);
  }
  KVC_CUDA_CHECK(cudaGetLastError());
}

}  // namespace kvc::cuda
