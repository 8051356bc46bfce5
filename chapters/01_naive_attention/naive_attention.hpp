// Chapter 01: attention with no KV cache.
//
// Nothing is kept between forward calls, so to produce token t+1 the driver
// feeds the whole sequence 0..t again and every layer recomputes K and V for
// all of it: O(t) work per layer per step for the projections, O(t^2) for
// attention, and O(n^2) / O(n^3) over a whole generation.
#pragma once

#include <cstddef>
#include <memory>

#include "common/config.hpp"
#include "engine/kv_strategy.hpp"

namespace kvc {
class ThreadPool;
}

namespace kvc::ch01 {

// EXERCISE (exercises/01_naive_attention/causal_attention.cpp)
// Causal softmax attention of ONE head over ONE sequence of n_tokens, in the
// textbook matrix form:
//   S = Q K^T / sqrt(head_dim)         S: [n_tokens][n_tokens]
//   S[i][j] = -inf for j > i           (token i must not see the future)
//   P = softmax(S) row by row
//   O = P V                            O: [n_tokens][head_dim]
// Row i of q / out starts at q + i * q_stride; row j of k / v at k + j * kv_stride.
void causal_attention_one_head(float* out, const float* q, const float* k, const float* v,
                               int n_tokens, int head_dim, std::size_t q_stride,
                               std::size_t kv_stride);

// With no cache, a batch must carry each sequence's whole history: positions
// 0..n-1 in order, in one run of the batch. Throws kvc::Error otherwise.
void check_whole_history(const Batch& batch);

// The KV strategy of this chapter: keeps nothing, recomputes everything.
class NaiveAttention final : public KVStrategy {
 public:
  NaiveAttention(const ModelConfig& config, ThreadPool* pool);

  std::string name() const override { return "01 naive (recompute)"; }
  bool keeps_history() const override { return false; }
  // Nothing to reserve; checks that every sequence brings its whole history.
  void reserve(const Batch& batch) override { check_whole_history(batch); }
  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override;
  std::size_t kv_bytes_reserved() const override { return 0; }
  void release(int) override {}

 private:
  ModelConfig config_;
  ThreadPool* pool_;
};

// This chapter's strategy for the engine's device: NaiveAttention on the CPU,
// NaiveAttentionCuda (naive_attention_cuda.hpp) on the GPU.
std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device);

}  // namespace kvc::ch01
