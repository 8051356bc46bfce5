// Quantize on write, on the GPU (chapter 07): n tokens' fp32 K and V rows
// become 8-bit codes plus one fp32 scale per (token, KV head), stored at pool
// rows slots[i] of one layer, in the CPU cache's layout (what
// attention_decode_paged_quant reads):
//   k, v:      [n_tokens][n_kv_heads][head_dim] floats
//   k_codes:   [num_blocks * block_size][n_kv_heads][head_dim] bytes   (v_codes the same)
//   k_scales:  [num_blocks * block_size][n_kv_heads] floats           (v_scales the same)
// The CPU quantizers' arithmetic, so the codes and scales are the same bits:
// scale = max|x| / qmax as an IEEE division (qmax 127 for int8, 448 for
// E4M3); int8 codes rint(x / scale) (ties to even) clamped to [-127, 127];
// FP8 codes __nv_cvt_float_to_fp8(x / scale, __NV_SATFINITE, __NV_E4M3),
// which kernels/cpu/kv_quant.cpp emulates bit for bit. An all-zero row gets
// scale 0 and zero codes.
//
// v1: one warp per (token, KV head, side): a warp-wide max, then each lane
//     quantizes every 32nd value of the row.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "common/kv_dtype.hpp"

namespace kvc::cuda {

// Throws kvc::Error for a format other than int8 or fp8.
void kv_quantize_store(const KvDtype& dtype, unsigned char* k_codes, float* k_scales,
                       unsigned char* v_codes, float* v_scales, const float* k, const float* v,
                       const std::int64_t* slots, int n_tokens, int n_kv_heads, int head_dim,
                       cudaStream_t stream);

}  // namespace kvc::cuda
