// Solution: chapter 03, the query-head -> KV-head mapping, grouped decode
// attention and mean-pooling.
#include <cmath>

#include "chapters/03_gqa/gqa_kv_cache.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::ch03 {

int kv_head_for(int query_head, int n_heads, int n_kv_heads) {
  const int group_size = n_heads / n_kv_heads;  // llama2.c's kv_mul
  return query_head / group_size;
}

void grouped_decode_attention(float* out, const float* q, const float* k_rows, const float* v_rows,
                              int n_ctx, int n_heads, int n_kv_heads, int head_dim, float* scores) {
  // scores: [n_heads][n_ctx]. Position t's row (every KV head, adjacent) is read
  // once and serves all n_heads query heads while it is in cache.
  const std::size_t kv_dim = static_cast<std::size_t>(n_kv_heads) * head_dim;
  const float scale = std::sqrt(static_cast<float>(head_dim));
  for (int t = 0; t < n_ctx; ++t) {
    const float* k_row = k_rows + t * kv_dim;
    for (int h = 0; h < n_heads; ++h) {
      const float* q_head = q + h * head_dim;
      const float* k = k_row + kv_head_for(h, n_heads, n_kv_heads) * head_dim;
      float dot = 0.0f;
      for (int d = 0; d < head_dim; ++d) dot += q_head[d] * k[d];
      scores[h * n_ctx + t] = dot / scale;
    }
  }
  for (int h = 0; h < n_heads; ++h) cpu::softmax(scores + h * n_ctx, n_ctx);

  for (int i = 0; i < n_heads * head_dim; ++i) out[i] = 0.0f;
  for (int t = 0; t < n_ctx; ++t) {
    const float* v_row = v_rows + t * kv_dim;
    for (int h = 0; h < n_heads; ++h) {
      const float* v = v_row + kv_head_for(h, n_heads, n_kv_heads) * head_dim;
      const float p = scores[h * n_ctx + t];
      float* out_head = out + h * head_dim;
      for (int d = 0; d < head_dim; ++d) out_head[d] += p * v[d];
    }
  }
}

void mean_pool_kv_heads(const float* w_in, float* w_out, int n_kv_heads_in, int n_kv_heads_out,
                        int head_dim, int dim) {
  const int merged = n_kv_heads_in / n_kv_heads_out;  // input heads per output head
  const std::size_t head_floats = static_cast<std::size_t>(head_dim) * dim;
  for (int out_head = 0; out_head < n_kv_heads_out; ++out_head) {
    float* out = w_out + out_head * head_floats;
    for (std::size_t i = 0; i < head_floats; ++i) {
      float sum = 0.0f;
      for (int m = 0; m < merged; ++m) sum += w_in[(out_head * merged + m) * head_floats + i];
      out[i] = sum / merged;
    }
  }
}

}  // namespace kvc::ch03
