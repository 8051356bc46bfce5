// Attention on the GPU: causal prefill and decode over a contiguous KV cache.
//
// Each op has numbered variants (the simple correct one first, the fast ones
// beside it) selected by number, so benchmarks line them up and tests check
// every one against the CPU reference. `kBestVariant` (0) picks for the shape;
// the engine should always pass it.
#pragma once

#include <cstddef>
#include <string>

#include <cuda_runtime_api.h>

#include "common/cuda/dtype.hpp"

namespace kvc::cuda {

constexpr int kBestVariant = 0;

// ---- causal prefill ------------------------------------------------------------
// n tokens of one sequence at positions 0..n-1; token i attends to tokens 0..i.
//   q:   [n][n_heads][head_dim]
//   k,v: [n][n_kv_heads][head_dim]   (the ch02 cache layout, so a cache can be passed)
//   out: [n][n_heads][head_dim]
// Query head h reads KV head h / (n_heads / n_kv_heads). All fp32.
//   v1: one block per (token, head), the scores in shared memory (n up to ~40K tokens).
//   v2: flash-attention style: a block of queries streams K/V tiles through shared
//       memory with an online softmax (head_dim <= 256), any n.
constexpr int kPrefillVariants = 2;
void attention_prefill_causal(int variant, float* out, const float* q, const float* k,
                              const float* v, int n, int n_heads, int n_kv_heads, int head_dim,
                              cudaStream_t stream);

// ---- decode over a contiguous cache ----------------------------------------------
// One new query token per sequence, for a batch of sequences.
struct DecodeShape {
  int batch = 1;       // sequences
  int max_ctx = 0;     // cache rows per sequence
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // KV heads (divides n_heads; fewer = GQA/MQA)
  int head_dim = 0;
  Dtype cache_dtype = Dtype::f32;
};

// Variants (see attention_decode.cu for the details):
//   v1: one block per (sequence, query head): scores to a global scratch row, softmax,
//       weighted sum of V - llama2.c's loop on the GPU.
//   v2: one block per (sequence, KV head), serving every query head of its group from
//       one read of K and V, with 16-byte vector loads and an online softmax over tiles.
//   v3: split-K ("flash-decoding"): v2's tile loop over one slice of the context per
//       block, so long contexts fill the GPU; a second kernel merges the slices.
constexpr int kDecodeVariants = 3;

// Whether `variant` supports `shape` (v2/v3 need head_dim * dtype bytes a multiple of 16
// and head_dim/elements-per-16-bytes <= 32); the reason when not.
bool attention_decode_supports(int variant, const DecodeShape& shape, std::string* why);

// The variant kBestVariant resolves to for this shape.
int attention_decode_best_variant(const DecodeShape& shape);

// Bytes of device workspace the variant needs (v1: scores, v3: partial results).
std::size_t attention_decode_workspace_bytes(int variant, const DecodeShape& shape);

//   out:     [batch][n_heads][head_dim] (fp32)
//   q:       [batch][n_heads][head_dim] (fp32)
//   k_cache: [batch][max_ctx][n_kv_heads][head_dim] in shape.cache_dtype (same for v_cache)
//   lengths: [batch] device ints, 1 <= lengths[b] <= max_ctx: sequence b attends to its
//            cache rows 0..lengths[b]-1 (the new token's k, v already stored)
//   workspace: attention_decode_workspace_bytes(variant, shape) bytes of device memory
void attention_decode(int variant, float* out, const float* q, const void* k_cache,
                      const void* v_cache, const int* lengths, const DecodeShape& shape,
                      void* workspace, cudaStream_t stream);

}  // namespace kvc::cuda
