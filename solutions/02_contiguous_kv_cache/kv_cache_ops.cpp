// Solution: chapter 02, the contiguous KV cache's operations.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"

namespace kvc::ch02 {

std::size_t cache_offset(const CacheLayout& layout, int layer, int pos) {
  // [n_layers][max_seq_len][kv_dim]: a layer is max_seq_len rows, a row is kv_dim floats.
  return (static_cast<std::size_t>(layer) * layout.max_seq_len + pos) * layout.kv_dim();
}

void append_kv(const CacheLayout& layout, float* k_slot, float* v_slot, int layer, int pos,
               const float* k, const float* v) {
  const std::size_t offset = cache_offset(layout, layer, pos);
  std::memcpy(k_slot + offset, k, layout.kv_dim() * sizeof(float));
  std::memcpy(v_slot + offset, v, layout.kv_dim() * sizeof(float));
}

void decode_attention(float* out, const float* q, const CacheLayout& layout, const float* k_slot,
                      const float* v_slot, int layer, int pos, int n_heads, float* scores) {
  // llama2.c's loop: every query head scores all cached positions, then sums
  // their values weighted by the softmax of the scores.
  const int head_dim = layout.head_dim;
  const int kv_mul = n_heads / layout.n_kv_heads;  // query heads per KV head
  const float scale = std::sqrt(static_cast<float>(head_dim));
  for (int h = 0; h < n_heads; ++h) {
    const float* q_head = q + h * head_dim;
    const std::size_t kv_head = static_cast<std::size_t>(h / kv_mul) * head_dim;

    for (int t = 0; t <= pos; ++t) {
      const float* k = k_slot + cache_offset(layout, layer, t) + kv_head;
      float dot = 0.0f;
      for (int d = 0; d < head_dim; ++d) dot += q_head[d] * k[d];
      scores[t] = dot / scale;
    }

    // Softmax over positions 0..pos; subtracting the max keeps exp in range.
    float max_score = scores[0];
    for (int t = 1; t <= pos; ++t) max_score = std::max(max_score, scores[t]);
    float sum = 0.0f;
    for (int t = 0; t <= pos; ++t) {
      scores[t] = std::exp(scores[t] - max_score);
      sum += scores[t];
    }
    for (int t = 0; t <= pos; ++t) scores[t] /= sum;

    float* out_head = out + h * head_dim;
    for (int d = 0; d < head_dim; ++d) out_head[d] = 0.0f;
    for (int t = 0; t <= pos; ++t) {
      const float* v = v_slot + cache_offset(layout, layer, t) + kv_head;
      for (int d = 0; d < head_dim; ++d) out_head[d] += scores[t] * v[d];
    }
  }
}

std::size_t kv_bytes_per_token(int n_layers, int n_kv_heads, int head_dim,
                               std::size_t bytes_per_element) {
  return 2 * static_cast<std::size_t>(n_layers) * n_kv_heads * head_dim * bytes_per_element;
}

}  // namespace kvc::ch02
