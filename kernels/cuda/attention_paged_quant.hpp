// Decode attention over a quantized paged KV pool on the GPU (chapter 07): the
// contract of attention_decode_paged (attention.hpp) with K and V stored as
// 8-bit codes and one fp32 scale per (token, KV head), the layout of the CPU
// cache (kernels/cpu/attention_paged_quant.hpp, chapters/07_quantization):
//   k_codes:  [num_blocks][block_size][n_kv_heads][head_dim] bytes (v_codes the same)
//   k_scales: [num_blocks][block_size][n_kv_heads] floats          (v_scales the same)
// Formats: NumberFormat::int8 and NumberFormat::fp8_e4m3 (decoded with __nv_fp8_e4m3).
//
// The variants are attention_paged.cu's, run with the int8/fp8 loader of
// kv_loaders.cuh instead of a float one: the same loops, each code turned into
// a float as it is loaded and its row's scale applied once per row (to the
// key's score, to the value's probability).
//   v1: one block per (token, query head), llama2.c's loop through the table:
//       scores in a global workspace row, a block-wide softmax, one thread per
//       output dimension. Any head_dim.
//   v2: one block per (token, KV head) serving the whole GQA group from one
//       read of the codes, 8 codes per 8-byte load, online softmax over tiles
//       (head_dim a multiple of 8, at most 256; codes 16-byte aligned).
//   v3: split-K (flash-decoding): v2's loop over slices of a token's context,
//       then a merge; for few tokens with long contexts.
// The workspace of v1 and v3 holds rows for shape.workspace_tokens() tokens only.
//
// Tests: build/bin/kvc_cuda_tests --gtest_filter='*PagedQuant*'
#pragma once

#include <cstddef>
#include <string>

#include <cuda_runtime_api.h>

#include "common/kv_dtype.hpp"
#include "kernels/cuda/attention.hpp"

namespace kvc::cuda {

constexpr int kPagedQuantDecodeVariants = 3;

// Whether the kernels run `dtype` (int8 or fp8); the reason when not.
bool attention_decode_paged_quant_supports(const KvDtype& dtype, std::string* why);
// Whether `variant` (1..3, or kBestVariant) runs `dtype` at `shape`; the reason when not.
bool attention_decode_paged_quant_supports(int variant, const KvDtype& dtype,
                                           const PagedDecodeShape& shape, std::string* why);

// The variant kBestVariant resolves to for this shape (the same for int8 and fp8: their
// rows have the same bytes). shape.cache_dtype is ignored here and below.
int attention_decode_paged_quant_best_variant(const PagedDecodeShape& shape);

// Bytes of device workspace `variant` needs (as attention_decode_paged_workspace_bytes);
// the overload without a variant is for the best one. 0 for n_tokens == 0.
std::size_t attention_decode_paged_quant_workspace_bytes(int variant,
                                                         const PagedDecodeShape& shape);
std::size_t attention_decode_paged_quant_workspace_bytes(const PagedDecodeShape& shape);

// Arguments as attention_decode_paged's (shape.cache_dtype is ignored: `dtype`
// says what the codes are). Throws kvc::Error for a format or variant it cannot
// run. n_tokens == 0 does nothing. The overload without a variant runs the best one.
void attention_decode_paged_quant(int variant, const KvDtype& dtype, float* out, const float* q,
                                  const unsigned char* k_codes, const float* k_scales,
                                  const unsigned char* v_codes, const float* v_scales,
                                  const int* block_tables, const int* table_rows,
                                  const int* context_lengths, const PagedDecodeShape& shape,
                                  void* workspace, cudaStream_t stream);
void attention_decode_paged_quant(const KvDtype& dtype, float* out, const float* q,
                                  const unsigned char* k_codes, const float* k_scales,
                                  const unsigned char* v_codes, const float* v_scales,
                                  const int* block_tables, const int* table_rows,
                                  const int* context_lengths, const PagedDecodeShape& shape,
                                  void* workspace, cudaStream_t stream);

}  // namespace kvc::cuda
