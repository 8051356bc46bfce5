// Attention on the GPU: causal prefill, decode over a contiguous or a paged KV cache, and
// the prefill of a chunk past position 0 over a paged cache.
//
// Each op has numbered variants (the simple correct one first, the fast ones
// beside it) selected by number, so benchmarks line them up and tests check
// every one against the CPU reference. `kBestVariant` (0) picks for the shape;
// the engine should always pass it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <cuda_runtime_api.h>

#include "common/number_format.hpp"

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
  NumberFormat cache_dtype = NumberFormat::fp32;  // fp32, fp16 or bf16
};

// Variants (see attention_decode.cu for the details):
//   v1: one block per (sequence, query head): scores to a global scratch row, softmax,
//       weighted sum of V - llama2.c's loop on the GPU.
//   v2: one block per (sequence, KV head), serving every query head of its group from
//       one read of K and V, with 16-byte vector loads and an online softmax over tiles.
//   v3: split-K ("flash-decoding"): v2's tile loop over one slice of the context per
//       block, so long contexts fill the GPU; a second kernel merges the slices.
constexpr int kDecodeVariants = 3;

// Whether `variant` supports `shape` (v2/v3 need head_dim * value bytes a multiple of 16,
// head_dim/values-per-16-bytes <= 32 and head_dim <= 256); the reason when not.
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

// ---- decode over a paged cache (chapter 04) ---------------------------------------
// attention_decode over one layer's pool of blocks: position t of a sequence lives in
// physical block table[t / block_size], row t % block_size. The metadata is what vLLM's
// and FlashInfer's paged kernels take: a block table per sequence, and per query token
// the table it reads and its context length (the tokens of a prefill chunk share one
// table, each attending to positions 0..pos).
struct PagedDecodeShape {
  int n_tokens = 1;            // query tokens (rows of q and out)
  int block_size = 0;          // positions per block
  int max_blocks_per_seq = 0;  // columns of block_tables
  int n_heads = 0;             // query heads
  int n_kv_heads = 0;          // KV heads (divides n_heads)
  int head_dim = 0;
  // fp32, fp16 or bf16; int8 or fp8 for attention_decode_paged_quant (attention_paged_quant.hpp),
  // which reads the same kernels through its loader.
  NumberFormat cache_dtype = NumberFormat::fp32;
  // NEW (ch05): how many tokens attend (context_lengths[i] > 0), at most n_tokens; -1 (the
  // default) means all of them. The workspace of v1 and v3 holds rows for this many
  // tokens only, so a batch of one decode token beside a long prefill chunk (whose tokens
  // are skipped) does not pay score rows for the chunk. Attending tokens past this count
  // are left as they are: pass the true count.
  int attending_tokens = -1;

  int max_ctx() const { return max_blocks_per_seq * block_size; }  // positions a table holds
  int workspace_tokens() const { return attending_tokens < 0 ? n_tokens : attending_tokens; }
};

// Variants (see attention_paged.cu):
//   v1: one block per (token, query head), llama2.c's loop through the block table,
//       scores in a global workspace row (decode v1 over pages).
//   v2: one block per (token, KV head) serving the whole GQA group: decode v2's tile loop
//       with an online softmax and vector loads, each row found through the table.
//   v3: split-K (flash-decoding) over pages: v2's loop over one slice of a token's
//       context per block, then a merge kernel; for few tokens with long contexts.
constexpr int kPagedDecodeVariants = 3;

// Whether `variant` supports `shape` (v2, v3: decode v2's head_dim rule, in loads of 16
// bytes of fp32/fp16/bf16 or 8 bytes of int8/fp8 codes; no variant reads packed int4);
// the reason when not.
bool attention_decode_paged_supports(int variant, const PagedDecodeShape& shape, std::string* why);

// The variant kBestVariant resolves to for this shape: v1 where v2's head_dim rule fails;
// else v3 when v2's grid would leave the GPU partly idle and the context splits, else v2.
int attention_decode_paged_best_variant(const PagedDecodeShape& shape);

// Bytes of device workspace the variant needs: v1, v3: a row index per token
// (n_tokens ints), then v1: workspace_tokens() * n_heads * max_ctx() scores, v3:
// workspace_tokens() * n_heads * slices * (head_dim + 2) partial results; v2: none.
std::size_t attention_decode_paged_workspace_bytes(int variant, const PagedDecodeShape& shape);

//   out:             [n_tokens][n_heads][head_dim] (fp32)
//   q:               [n_tokens][n_heads][head_dim] (fp32)
//   k_pages:         [num_blocks][block_size][n_kv_heads][head_dim] in shape.cache_dtype
//                    (v_pages the same), 16-byte aligned for v2
//   block_tables:    [n_seqs][max_blocks_per_seq] device ints: physical block of each
//                    logical block of each sequence (entries past a sequence's end unread)
//   table_rows:      [n_tokens] device ints: the row of block_tables token i reads
//   context_lengths: [n_tokens] device ints, at most max_ctx(): token i attends to
//                    positions 0..context_lengths[i]-1 (its own k, v already stored).
//                    0 skips the token: its out row is left as it is (a caller computes
//                    those tokens another way, e.g. a prefill from position 0).
//   workspace:       attention_decode_paged_workspace_bytes(variant, shape) bytes
// Throws kvc::Error for pages with scales (int8, fp8: attention_decode_paged_quant).
void attention_decode_paged(int variant, float* out, const float* q, const void* k_pages,
                            const void* v_pages, const int* block_tables, const int* table_rows,
                            const int* context_lengths, const PagedDecodeShape& shape,
                            void* workspace, cudaStream_t stream);

// ---- prefill of a chunk over a paged cache (chapter 05) --------------------------------
// n_tokens query tokens of ONE sequence at positions start .. start + n_tokens - 1, whose
// k, v (with those of every earlier position) are already in the pool (paged_kv_store):
// the suffix after a prefix-cache hit, or any later prefill chunk. Token i attends to
// positions 0 .. start + i, read through the sequence's block table.
struct PagedPrefillShape {
  int n_tokens = 1;    // query tokens: rows of q and out
  int start = 0;       // position of the first one (0: a prefill from the start)
  int block_size = 0;  // positions per block
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // KV heads (divides n_heads)
  int head_dim = 0;
  NumberFormat cache_dtype = NumberFormat::fp32;  // fp32, fp16 or bf16
};

// Variants (see attention_paged_prefill.cu):
//   v1: query tiles (flash-attention style, fp32 on CUDA cores): a block holds 16 query
//       rows (tokens x query heads of one GQA group) and streams K/V tiles of 32
//       positions, found through the table, into shared memory once for all of them,
//       with an online softmax and the causal mask; head_dim <= 256, any cache dtype.
// The per-token alternative is attention_decode_paged with context lengths start+1 ..
// start+n_tokens: it reads the whole context once per query token.
constexpr int kPagedPrefillVariants = 1;

// Whether `variant` supports `shape`; the reason when not.
bool attention_prefill_paged_supports(int variant, const PagedPrefillShape& shape,
                                      std::string* why);

//   out:         [n_tokens][n_heads][head_dim] (fp32)
//   q:           [n_tokens][n_heads][head_dim] (fp32)
//   k_pages:     [num_blocks][block_size][n_kv_heads][head_dim] in shape.cache_dtype
//                (v_pages the same), holding positions 0 .. start + n_tokens - 1
//   block_table: device ints [ceil((start + n_tokens) / block_size)]: the sequence's blocks
void attention_prefill_paged(int variant, float* out, const float* q, const void* k_pages,
                             const void* v_pages, const int* block_table,
                             const PagedPrefillShape& shape, cudaStream_t stream);

// Writes n tokens' k, v rows into one layer's pool, rounding to the cache dtype: token i
// goes to pool row slots[i] = block * block_size + offset.
//   k, v:             [n][n_kv_heads][head_dim] (fp32)
//   k_pages, v_pages: [num_blocks * block_size][n_kv_heads][head_dim] in `cache_dtype`
//   slots:            [n] device int64s (a large pool has more than 2^31 rows)
void paged_kv_store(void* k_pages, void* v_pages, NumberFormat cache_dtype, const float* k,
                    const float* v, const std::int64_t* slots, int n, int n_kv_heads, int head_dim,
                    cudaStream_t stream);

}  // namespace kvc::cuda
