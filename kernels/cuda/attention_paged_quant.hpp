// Decode attention over a quantized paged KV pool on the GPU (chapter 07): the
// contract of attention_decode_paged (attention.hpp) with K and V stored as
// 8-bit codes and one fp32 scale per (token, KV head), the layout of the CPU
// cache (kernels/cpu/attention_paged_quant.hpp, chapters/07_quantization):
//   k_codes:  [num_blocks][block_size][n_kv_heads][head_dim] bytes (v_codes the same)
//   k_scales: [num_blocks][block_size][n_kv_heads] floats          (v_scales the same)
// Formats: KvFormat::int8 and KvFormat::fp8_e4m3 (decoded with __nv_fp8_e4m3).
//
// v1: one block per (token, query head), the loop of attention_paged.cu's v1
//     with each code dequantized as it is loaded (code * scale): scores in a
//     global workspace row, a block-wide softmax, one thread per output dim.
#pragma once

#include <cstddef>

#include <cuda_runtime_api.h>

#include "common/kv_dtype.hpp"
#include "kernels/cuda/attention.hpp"

namespace kvc::cuda {

// Whether the kernel runs `dtype` (int8 or fp8); the reason when not.
bool attention_decode_paged_quant_supports(const KvDtype& dtype, std::string* why);

// Bytes of device workspace: n_tokens * n_heads * max_ctx() scores.
std::size_t attention_decode_paged_quant_workspace_bytes(const PagedDecodeShape& shape);

// Arguments as attention_decode_paged's (shape.cache_dtype is ignored: `dtype`
// says what the codes are). Throws kvc::Error for a format it cannot run.
void attention_decode_paged_quant(const KvDtype& dtype, float* out, const float* q,
                                  const unsigned char* k_codes, const float* k_scales,
                                  const unsigned char* v_codes, const float* v_scales,
                                  const int* block_tables, const int* table_rows,
                                  const int* context_lengths, const PagedDecodeShape& shape,
                                  void* workspace, cudaStream_t stream);

}  // namespace kvc::cuda
