// Device helpers shared by the kernels in this folder: warp and block
// reductions, and reading/writing fp32/fp16/bf16 storage as floats (chapter 07's
// scaled codes are read by the loaders of kv_loaders.cuh).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>

#include "common/check.hpp"
#include "common/number_format.hpp"

namespace kvc::cuda {

constexpr int kWarpSize = 32;

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

__device__ __forceinline__ float warp_max(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

// Reduces `value` over the whole block (blockDim.x a multiple of 32, at most 1024)
// and returns the result to every thread. Contains __syncthreads: call it from all threads.
template <bool kIsMax>
__device__ float block_reduce(float value) {
  __shared__ float warp_results[kWarpSize];
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int n_warps = blockDim.x / kWarpSize;
  value = kIsMax ? warp_max(value) : warp_sum(value);
  __syncthreads();  // warp_results may still be read by a previous call
  if (lane == 0) warp_results[warp] = value;
  __syncthreads();
  value = lane < n_warps ? warp_results[lane] : (kIsMax ? -FLT_MAX : 0.0f);
  return kIsMax ? warp_max(value) : warp_sum(value);
}

__device__ __forceinline__ float block_sum(float value) {
  return block_reduce<false>(value);
}
__device__ __forceinline__ float block_max(float value) {
  return block_reduce<true>(value);
}

// Scalar conversions between storage types and float.
__device__ __forceinline__ float to_float(float value) {
  return value;
}
__device__ __forceinline__ float to_float(__half value) {
  return __half2float(value);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 value) {
  return __bfloat162float(value);
}

template <typename T>
__device__ __forceinline__ T from_float(float value);
template <>
__device__ __forceinline__ float from_float<float>(float value) {
  return value;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float value) {
  return __float2half_rn(value);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float value) {
  return __float2bfloat16_rn(value);
}

// 16 bytes of storage (one 128-bit load) unpacked to floats: 4 fp32 or 8 fp16/bf16 values.
template <typename T>
struct Vec16 {
  static constexpr int kCount = 16 / sizeof(T);
};

template <typename T>
__device__ __forceinline__ void unpack16(const uint4& raw, float (&out)[Vec16<T>::kCount]) {
  const T* values = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < Vec16<T>::kCount; ++i) out[i] = to_float(values[i]);
}

// Calls body.template operator()<T>() with T the C++ type of a float format; throws
// kvc::Error for a scaled one (its codes are read through kv_loaders.cuh).
template <typename Body>
void dispatch_float_format(NumberFormat format, Body&& body) {
  switch (format) {
    case NumberFormat::fp32:
      body.template operator()<float>();
      return;
    case NumberFormat::fp16:
      body.template operator()<__half>();
      return;
    case NumberFormat::bf16:
      body.template operator()<__nv_bfloat16>();
      return;
    default:
      KVC_FAIL(format_name(format), " is not stored as plain values (fp32, fp16 or bf16)");
  }
}

// Blocks of `threads` threads for `count` items, one item per thread; capped, since the
// kernels use grid-stride loops and so cover any count with any grid.
inline unsigned grid_for(std::size_t count, int threads) {
  const std::size_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

}  // namespace kvc::cuda
