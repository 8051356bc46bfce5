// Chapter 02: a contiguous KV cache.
//
// Every sequence gets one slot, pre-allocated for the model's whole context:
//   k_cache, v_cache: [max_seqs][n_layers][max_seq_len][n_kv_heads][head_dim]
// Prefill writes the prompt's K, V in one pass; each decode step appends one
// position and attends over the positions already there, so a step costs O(t)
// instead of chapter 01's recomputation of everything.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "chapters/02_contiguous_kv_cache/attention_kernel.hpp"
#include "common/config.hpp"
#include "common/kv_memory.hpp"
#include "engine/kv_strategy.hpp"

namespace kvc {
class ThreadPool;
}

namespace kvc::ch02 {

// The shape of ONE sequence slot: its k (or v) buffer is
//   [n_layers][max_seq_len][n_kv_heads][head_dim]
struct CacheLayout {
  int n_layers = 0;
  int max_seq_len = 0;
  int n_kv_heads = 0;
  int head_dim = 0;

  int kv_dim() const { return n_kv_heads * head_dim; }
  std::size_t floats_per_slot() const {
    return static_cast<std::size_t>(n_layers) * max_seq_len * kv_dim();
  }
};

// ---- EXERCISES (exercises/02_contiguous_kv_cache/kv_cache_ops.cpp) ----------------

// Index (in floats) of the first element of (layer, pos) inside one slot's buffer.
std::size_t cache_offset(const CacheLayout& layout, int layer, int pos);

// Write one token's k and v rows ([n_kv_heads * head_dim] each) at (layer, pos).
void append_kv(const CacheLayout& layout, float* k_slot, float* v_slot, int layer, int pos,
               const float* k, const float* v);

// Attention output of one token at position `pos` of `layer`, over cache
// positions 0..pos (its own K,V must already be appended).
//   q, out: [n_heads][head_dim]; scores: scratch for at least pos + 1 floats.
void decode_attention(float* out, const float* q, const CacheLayout& layout, const float* k_slot,
                      const float* v_slot, int layer, int pos, int n_heads, float* scores);

// KV-cache bytes one token costs: 2 (K and V) x layers x kv_heads x head_dim x bytes.
std::size_t kv_bytes_per_token(int n_layers, int n_kv_heads, int head_dim,
                               std::size_t bytes_per_element);

// ---- the strategy -------------------------------------------------------------

// How many positions each sequence slot holds. A batch may only continue a
// sequence where it ends: a gap would leave unwritten K,V to attend over.
class SequenceLengths {
 public:
  explicit SequenceLengths(int max_seqs);
  // Checks every token's slot and position, then extends the lengths. Throws
  // kvc::Error, changing nothing, when one does not fit.
  void append(const Batch& batch);
  int length(int seq_id) const { return lengths_.at(seq_id); }
  void release(int seq_id) { lengths_.at(seq_id) = 0; }
  // Forgets the positions from `length` on (at most what the slot holds): the
  // next batch continues there and overwrites them. Throws kvc::Error otherwise.
  void truncate(int seq_id, int length);
  int max_seqs() const { return static_cast<int>(lengths_.size()); }

 private:
  // Throws kvc::Error unless seq_id names one of the slots.
  void check_slot(int seq_id) const;

  std::vector<int> lengths_;  // [max_seqs]
};

class ContiguousKVCache final : public KVStrategy {
 public:
  // Reserves max_seqs slots of the model's full context up front; `kernel`
  // picks the decode attention attend() runs.
  ContiguousKVCache(const ModelConfig& config, int max_seqs, ThreadPool* pool,
                    AttentionKernel kernel = AttentionKernel::kLoop);

  std::string name() const override { return "02 contiguous cache"; }
  bool keeps_history() const override { return true; }
  // Every slot is reserved up front: only checks that the positions continue.
  void reserve(const Batch& batch) override { lengths_.append(batch); }
  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override;
  std::size_t kv_bytes_reserved() const override;
  void release(int seq_id) override;

  // Positions of `seq_id` held in the cache (the bytes actually used).
  int length(int seq_id) const { return lengths_.length(seq_id); }
  // Rolls `seq_id` back to its first `length` positions, as a speculative
  // decoder drops the tokens it rejected (ch02_bench_decode repeats one decode
  // step this way).
  void truncate(int seq_id, int length) { lengths_.truncate(seq_id, length); }
  const CacheLayout& layout() const { return layout_; }

  // The first half of attend(): append the batch's k, v rows of `layer` to
  // their slots (reserve() checked the positions). Later chapters that keep
  // this cache but attend differently (chapter 03) call it directly.
  void store(int layer, const Batch& batch, const float* k, const float* v);
  // One slot's buffers, laid out as CacheLayout says.
  const float* k_slot(int seq_id) const { return &k_cache_[seq_id * layout_.floats_per_slot()]; }
  const float* v_slot(int seq_id) const { return &v_cache_[seq_id * layout_.floats_per_slot()]; }

 private:
  ModelConfig config_;
  CacheLayout layout_;
  ThreadPool* pool_;
  AttentionKernel kernel_;
  KvFloats k_cache_;  // [max_seqs][n_layers][max_seq_len][n_kv_heads][head_dim]
  KvFloats v_cache_;  // same shape
  SequenceLengths lengths_;
};

// This chapter's strategy for the engine's device: ContiguousKVCache on the
// CPU, ContiguousKVCacheCuda (contiguous_kv_cache_cuda.hpp) on the GPU. The
// tuned kernels run on the CPU only: asking for one on the GPU throws kvc::Error.
std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          int max_seqs = 1,
                                          AttentionKernel kernel = AttentionKernel::kLoop);

}  // namespace kvc::ch02
