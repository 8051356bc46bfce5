// Loaders: how the decode loops (decode_attention.cuh) read one side (K or V)
// of a KV cache, one per storage format. A format adds a loader, not a kernel.
//
// The loops address rows by index: row r holds the head_dim values of one
// (position, KV head), and the kernel's row locator says which r position t
// is (contiguous: (seq * max_ctx + t) * n_kv_heads + kv_head; paged: the slot
// from the block table times n_kv_heads + kv_head). A loader turns row r into
// floats:
//   Raw                      one vector load: uint4 (16 bytes) or uint2 (8 bytes)
//   kVec                     values per load
//   scale(r)                 the row's scale: 1 for a float format
//   value(r, d, head_dim)    value d of row r, before the scale
//   load(r, d0, head_dim)    the Raw of row r from value d0 (rows aligned to sizeof(Raw))
//   unpack(raw, out)         that Raw as kVec floats, before the scale
// A row's numbers are scale(r) * value: the loops apply the scale once per row
// (to the key's score, to the value's probability), never per value, and for a
// float format the multiplication by 1 is exact, so those results keep their bits.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstddef>
#include <cstdint>

#include "common/check.hpp"
#include "common/number_format.hpp"
#include "kernels/cuda/device_math.cuh"

namespace kvc::cuda {

// One side of a cache as a kernel receives it: its values (or codes), and one fp32
// scale per row (null for a float format).
struct CacheSide {
  const void* values = nullptr;
  const float* scales = nullptr;
};

// fp32, fp16 or bf16 values: the numbers themselves, 16 bytes a load.
template <typename T>
struct FloatRows {
  using Raw = uint4;
  static constexpr int kVec = Vec16<T>::kCount;
  const T* values;

  __host__ __device__ explicit FloatRows(const CacheSide& side)
      : values(static_cast<const T*>(side.values)) {}
  __device__ __forceinline__ float scale(std::size_t /*row*/) const { return 1.0f; }
  __device__ __forceinline__ float value(std::size_t row, int d, int head_dim) const {
    return to_float(values[row * head_dim + d]);
  }
  __device__ __forceinline__ Raw load(std::size_t row, int d0, int head_dim) const {
    return *reinterpret_cast<const Raw*>(values + row * head_dim + d0);
  }
  __device__ __forceinline__ static void unpack(const Raw& raw, float (&out)[kVec]) {
    unpack16<T>(raw, out);
  }
};

// Chapter 07's 8-bit codes with one fp32 scale per (token, KV head) row: int8
// (value = code * scale) or FP8 E4M3 (value = __nv_fp8_e4m3(code) * scale).
// 8 codes (8 bytes) a load: the same 8 values per lane as fp16, so the loops keep
// fp16's registers (16 codes a lane would spill them with 8 query heads per block),
// and rows of any multiple of 8 codes (stories260K's head_dim of 8) take v2.
template <NumberFormat kFormat>
struct ScaledByteRows {
  static_assert(kFormat == NumberFormat::int8 || kFormat == NumberFormat::fp8_e4m3);
  using Raw = uint2;
  static constexpr int kVec = 8;
  const unsigned char* codes;
  const float* scales;

  __host__ __device__ explicit ScaledByteRows(const CacheSide& side)
      : codes(static_cast<const unsigned char*>(side.values)), scales(side.scales) {}
  __device__ __forceinline__ static float decode(unsigned char code) {
    if constexpr (kFormat == NumberFormat::int8) {
      return static_cast<float>(static_cast<std::int8_t>(code));
    } else {
      __nv_fp8_e4m3 fp8;
      fp8.__x = code;
      return static_cast<float>(fp8);
    }
  }
  __device__ __forceinline__ float scale(std::size_t row) const { return scales[row]; }
  __device__ __forceinline__ float value(std::size_t row, int d, int head_dim) const {
    return decode(codes[row * head_dim + d]);
  }
  __device__ __forceinline__ Raw load(std::size_t row, int d0, int head_dim) const {
    return *reinterpret_cast<const Raw*>(codes + row * head_dim + d0);
  }
  __device__ __forceinline__ static void unpack(const Raw& raw, float (&out)[kVec]) {
    if constexpr (kFormat == NumberFormat::int8) {
      const auto* bytes = reinterpret_cast<const std::int8_t*>(&raw);
#pragma unroll
      for (int i = 0; i < kVec; ++i) out[i] = static_cast<float>(bytes[i]);
    } else {
      // Two codes at a time: the fp8x2 conversion is one instruction on sm_89+.
      const auto* pairs = reinterpret_cast<const __nv_fp8x2_e4m3*>(&raw);
#pragma unroll
      for (int i = 0; i < kVec / 2; ++i) {
        const float2 two = static_cast<float2>(pairs[i]);
        out[2 * i] = two.x;
        out[2 * i + 1] = two.y;
      }
    }
  }
};

// Calls body.template operator()<Rows>() with the loader of `format`: a float
// format's, or with kScaled also int8's and fp8's (instantiated only where asked,
// so a kernel file that reads floats only does not compile the scaled loops).
template <bool kScaled, typename Body>
void dispatch_rows(NumberFormat format, Body&& body) {
  switch (format) {
    case NumberFormat::fp32:
      return body.template operator()<FloatRows<float>>();
    case NumberFormat::fp16:
      return body.template operator()<FloatRows<__half>>();
    case NumberFormat::bf16:
      return body.template operator()<FloatRows<__nv_bfloat16>>();
    case NumberFormat::int8:
      if constexpr (kScaled) return body.template operator()<ScaledByteRows<NumberFormat::int8>>();
      break;
    case NumberFormat::fp8_e4m3:
      if constexpr (kScaled) {
        return body.template operator()<ScaledByteRows<NumberFormat::fp8_e4m3>>();
      }
      break;
    case NumberFormat::int4:
      break;
  }
  KVC_FAIL("no CUDA decode loader reads ", format_name(format), " here");
}

// Bytes of one load of the loader of `format` (0 where none reads it: int4).
inline int load_bytes(NumberFormat format) {
  if (format == NumberFormat::int4) return 0;
  int bytes = 0;
  dispatch_rows<true>(
      format, [&]<typename Rows>() { bytes = static_cast<int>(sizeof(typename Rows::Raw)); });
  return bytes;
}

}  // namespace kvc::cuda
