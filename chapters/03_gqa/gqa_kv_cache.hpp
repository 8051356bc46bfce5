// Chapter 03: grouped-query attention.
//
// With n_kv_heads < n_heads, each K/V head is shared by a group of
// g = n_heads / n_kv_heads query heads, and the cache shrinks by g. The cache
// itself is chapter 02's (reused, not copied); what this chapter changes is the
// decode kernel, because sharing only saves *bandwidth* if the kernel reads
// each K/V head once for its whole group:
//   kReread   llama2.c's loop, chapter 02's decode_attention: each query head
//             re-reads its KV head (g reads)
//   kRepeatKv the framework way: copy K/V out to one head per query head, then MHA
//   kGrouped  grouped_decode_attention: each key/value row read once, serving
//             all g query heads
// All three give bit-identical outputs, so the tokens stay chapter 02's.
#pragma once

#include <memory>
#include <string>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"

namespace kvc::ch03 {

// ---- EXERCISES (exercises/03_gqa/gqa_ops.cpp) ---------------------------------------

// The KV head that query head `query_head` reads: the n_heads query heads form
// n_kv_heads consecutive groups of g = n_heads / n_kv_heads.
int kv_head_for(int query_head, int n_heads, int n_kv_heads);

// Decode attention of one token over n_ctx cached positions, grouped: each
// cache row is read once and serves every query head that shares it (query
// head h reads KV head kv_head_for(h, ...)). Same contract and same bits as
// chapter 02's decode_attention; it differs only in the bytes it moves.
//   q, out:         [n_heads][head_dim]
//   k_rows, v_rows: [n_ctx][n_kv_heads][head_dim]  (one layer's positions 0..n_ctx-1)
//   scores:         grouped_decode_scratch_floats(n_ctx, n_heads) floats
void grouped_decode_attention(float* out, const float* q, const float* k_rows, const float* v_rows,
                              int n_ctx, int n_heads, int n_kv_heads, int head_dim, float* scores);
// One score per query head and position: [n_heads][n_ctx].
inline std::size_t grouped_decode_scratch_floats(int n_ctx, int n_heads) {
  return static_cast<std::size_t>(n_ctx) * n_heads;
}

// Mean-pools a K or V projection from n_kv_heads_in heads down to
// n_kv_heads_out (which divides it): output head j is the mean of input heads
// j*r .. j*r + r-1, r = n_kv_heads_in / n_kv_heads_out — the GQA paper's
// initialisation for converting a multi-head checkpoint.
//   w_in:  [n_kv_heads_in  * head_dim][dim]
//   w_out: [n_kv_heads_out * head_dim][dim]
void mean_pool_kv_heads(const float* w_in, float* w_out, int n_kv_heads_in, int n_kv_heads_out,
                        int head_dim, int dim);

// ---- the strategy ---------------------------------------------------------------------

// kFast is not an exercise: the grouped loop vectorized (AVX2) and split across
// the thread pool (kernels/cpu/attention_fast.cpp, cpu::attention_decode_variant 4),
// the engine's kernel at the memory roof. It gives the same bits as the others.
enum class DecodeKernel { kReread, kRepeatKv, kGrouped, kFast };

// "reread" | "repeat" | "grouped" | "fast" <-> DecodeKernel; parsing throws kvc::Error.
DecodeKernel parse_decode_kernel(const std::string& name);
std::string to_string(DecodeKernel kernel);

class GqaKVCache final : public KVStrategy {
 public:
  GqaKVCache(const ModelConfig& config, int max_seqs, ThreadPool* pool, DecodeKernel kernel);

  std::string name() const override { return "03 gqa (" + to_string(kernel_) + ")"; }
  bool keeps_history() const override { return true; }
  void reserve(const Batch& batch) override { cache_.reserve(batch); }
  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override;
  std::size_t kv_bytes_reserved() const override { return cache_.kv_bytes_reserved(); }
  void release(int seq_id) override { cache_.release(seq_id); }

 private:
  ModelConfig config_;
  ThreadPool* pool_;
  DecodeKernel kernel_;
  ch02::ContiguousKVCache cache_;  // storage and bookkeeping: chapter 02's
};

// This chapter's strategy for the engine's device. On the GPU the kernels are
// the decode variants of kernels/cuda/attention_decode.cu: reread is v1 (one
// block per query head), grouped is the best of v2/v3; repeat exists on the CPU only.
std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          DecodeKernel kernel = DecodeKernel::kGrouped,
                                          int max_seqs = 1);

}  // namespace kvc::ch03
