// CPU kernels: the reference every other implementation is tested against.
//
// Layout convention (llama2.c style): a batch of n token rows, each row
// contiguous. Matrices are row-major; weights are stored [d_out][d_in] as in
// the llama2.c checkpoint, so y = x @ W^T.
//
// Determinism contract: every output element is computed with a summation
// order that depends only on the op's inner dimension, never on the number of
// rows, their position in the batch, or the thread count. That is what lets a
// 200-token prefill and 200 one-token decode steps produce bit-identical
// logits, and so identical text.
#pragma once

#include <cstddef>

namespace kvc {
class ThreadPool;
}

namespace kvc::cpu {

// ---- matmul -------------------------------------------------------------------
// out: [n][d_out] = x: [n][d_in] @ w: [d_out][d_in]^T.
// `pool` may be nullptr (single thread).
void matmul(float* out, const float* x, const float* w, int n, int d_in, int d_out,
            ThreadPool* pool);

// The textbook triple loop, accumulating in double: the oracle for tests.
void matmul_reference(float* out, const float* x, const float* w, int n, int d_in, int d_out);

// ---- elementwise / row ops ----------------------------------------------------
// out[i][:] = weight * x[i][:] / sqrt(mean(x[i]^2) + 1e-5), for n rows of `dim`.
void rmsnorm(float* out, const float* x, const float* weight, int n, int dim);

// Rotary embedding in place, llama2.c's pairing (adjacent pairs (2j, 2j+1) of each head).
// q: [n][n_heads * head_dim], k: [n][n_kv_heads * head_dim]; token i is at positions[i].
void rope(float* q, float* k, const int* positions, int n, int n_heads, int n_kv_heads,
          int head_dim);

// One token's heads at `position`, x: [n_heads][head_dim], turned by rope()'s
// angles (the same rounding), or back by them (inverse: the transpose, so
// rope_heads(inverse) after rope() gives x again up to float rounding).
void rope_heads(float* x, int n_heads, int head_dim, int position, bool inverse = false);

// gate[i] = silu(gate[i]) * up[i] for i < size.
void swiglu(float* gate, const float* up, std::size_t size);

// x[i] += y[i] for i < size.
void add_inplace(float* x, const float* y, std::size_t size);

// Numerically stable softmax in place over `size` values.
void softmax(float* x, int size);

// ---- attention ------------------------------------------------------------------
// One query vector against n_ctx keys/values of one head:
//   out[:] = sum_t softmax_t(q . k_t / sqrt(head_dim)) * v_t
// keys/values: n_ctx rows, row t starts at keys + t * kv_stride.
// `scores` is caller-provided scratch of n_ctx floats.
void attend_one_query(float* out, const float* q, const float* keys, const float* values, int n_ctx,
                      int head_dim, std::size_t kv_stride, float* scores);

// Decode attention for one token over a contiguous cache (the ch02 kernel).
//   q:       [n_heads][head_dim]
//   k_cache: [n_ctx][n_kv_heads][head_dim]  (same for v_cache)
//   out:     [n_heads][head_dim]
// Query head h reads KV head h / (n_heads / n_kv_heads).
void attention_decode(float* out, const float* q, const float* k_cache, const float* v_cache,
                      int n_ctx, int n_heads, int n_kv_heads, int head_dim, float* scores);

// Causal prefill attention for n tokens of one sequence at positions 0..n-1
// (token i sees tokens 0..i).
//   q: [n][n_heads][head_dim], k, v: [n][n_kv_heads][head_dim], out like q.
void attention_prefill_causal(float* out, const float* q, const float* k, const float* v, int n,
                              int n_heads, int n_kv_heads, int head_dim, ThreadPool* pool);

// ---- GQA decode (chapter 03) --------------------------------------------------------
// Two more ways to run attention_decode's contract (same q, k_cache, v_cache,
// out layouts, same bits out) when g = n_heads / n_kv_heads query heads share
// each KV head. They differ only in the bytes moved per decode step.

// The framework way (HF transformers' repeat_kv): copy K and V out to one KV
// head per query head, then run plain multi-head attention over the copies.
// Moves about g times the cache's bytes, twice over (the copy, then the read).
//   scratch: attention_decode_repeat_kv_scratch_floats(n_ctx, n_heads, head_dim) floats
//            (expanded K and V, [n_ctx][n_heads][head_dim] each, then n_ctx scores)
void attention_decode_repeat_kv(float* out, const float* q, const float* k_cache,
                                const float* v_cache, int n_ctx, int n_heads, int n_kv_heads,
                                int head_dim, float* scratch);
std::size_t attention_decode_repeat_kv_scratch_floats(int n_ctx, int n_heads, int head_dim);

// The grouped way: each key and value row is read from memory once and serves
// all g query heads of its group, so a step reads the cache's bytes once.
//   scores: attention_decode_grouped_scratch_floats(n_ctx, n_heads, n_kv_heads) floats
//           ([g][n_ctx])
void attention_decode_grouped(float* out, const float* q, const float* k_cache,
                              const float* v_cache, int n_ctx, int n_heads, int n_kv_heads,
                              int head_dim, float* scores);
std::size_t attention_decode_grouped_scratch_floats(int n_ctx, int n_heads, int n_kv_heads);

// ---- paged decode (chapter 04) --------------------------------------------------------
// attention_decode's contract over one layer of a paged KV pool: the cache
// rows are cut into blocks of block_size positions that can sit anywhere in
// the pool, and a block table says where. Same bits out as attention_decode
// on the same rows laid out contiguously.
//   k_pages, v_pages: [num_blocks][block_size][n_kv_heads][head_dim]
//   block_table:      [ceil(n_ctx / block_size)] physical block of each logical block
//   q, out:           [n_heads][head_dim]; the token attends to positions 0..n_ctx-1
//   scratch:          attention_decode_paged_scratch_floats(variant, ...) floats
// Variants (see attention_paged.cpp): 1 = llama2.c's loop through the block table,
// 2 = chapter 03's grouped kernel over pages, 3 = 2 vectorized and split across
// `pool` (attention_fast.cpp), 4 = split-context flash decoding
// (attention_split.cpp). Variant 0 (kBestPagedDecode) picks 3. Variants 1-3
// give the same bits; 4 rounds differently (FMA, vector exp: tested by
// tolerance). Variants 1 and 2 run on the calling thread.
// Throws kvc::Error for an unknown variant, block_size < 1 or (3) head_dim > 256.
constexpr int kBestPagedDecode = 0;
constexpr int kPagedDecodeVariants = 4;
constexpr int kPagedDecodeExactVariants = 3;  // 1..3 give attention_decode's bits
void attention_decode_paged(int variant, float* out, const float* q, const float* k_pages,
                            const float* v_pages, const int* block_table, int n_ctx, int block_size,
                            int n_heads, int n_kv_heads, int head_dim, float* scratch,
                            ThreadPool* pool = nullptr);
std::size_t attention_decode_paged_scratch_floats(int variant, int n_ctx, int n_heads,
                                                  int n_kv_heads);

// ---- decode over a contiguous cache, every variant (chapters 02 and 03) ----------------
// attention_decode's contract (same q, k_cache, v_cache, out layouts), by number,
// so a benchmark or a strategy can pick one:
//   1 = attention_decode: llama2.c's loop, each query head re-reads its KV head
//   2 = attention_decode_repeat_kv: copy K/V out per query head, then 1
//   3 = attention_decode_grouped: each K/V row read once for the group
//   4 = 3 vectorized (AVX2) and split across `pool` (attention_fast.cpp)
//   5 = split-context flash decoding: the context cut across `pool`, online
//       softmax, slices merged (attention_split.cpp)
// Variant 0 (kBestDecode) picks 4. Variants 1-4 give the same bits; 5 rounds
// differently (FMA, a vector exp) and is tested by tolerance. Variants 1-3
// run on the calling thread.
//   scratch: attention_decode_scratch_floats(variant, n_ctx, n_heads, n_kv_heads, head_dim)
// Throws kvc::Error for an unknown variant or (4) head_dim > 256.
constexpr int kBestDecode = 0;
constexpr int kDecodeVariants = 5;
constexpr int kDecodeExactVariants = 4;  // 1..4 give attention_decode's bits
void attention_decode_variant(int variant, float* out, const float* q, const float* k_cache,
                              const float* v_cache, int n_ctx, int n_heads, int n_kv_heads,
                              int head_dim, float* scratch, ThreadPool* pool);
std::size_t attention_decode_scratch_floats(int variant, int n_ctx, int n_heads, int n_kv_heads,
                                            int head_dim);

}  // namespace kvc::cpu
