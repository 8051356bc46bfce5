// Chapter 03's two ways to run decode attention when query heads share KV
// heads. Both round exactly like attention_decode (see attention.cpp): each
// score is one in-order sum over head_dim divided by sqrtf(head_dim), the
// softmax is cpu::softmax, and every output sums over t in order. So all three
// kernels produce the same bits and differ only in how many bytes they move.
#include <cmath>
#include <cstddef>
#include <cstring>

#include "kernels/cpu/attention_rows.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::cpu {

std::size_t attention_decode_repeat_kv_scratch_floats(int n_ctx, int n_heads, int head_dim) {
  return 2 * std::size_t(n_ctx) * n_heads * head_dim + n_ctx;
}

void attention_decode_repeat_kv(float* out, const float* q, const float* k_cache,
                                const float* v_cache, int n_ctx, int n_heads, int n_kv_heads,
                                int head_dim, float* scratch) {
  const int group = n_heads / n_kv_heads;  // query heads per KV head
  const std::size_t expanded_floats = std::size_t(n_ctx) * n_heads * head_dim;
  // scratch: expanded_k [n_ctx][n_heads][head_dim], expanded_v likewise, then scores [n_ctx]
  float* expanded_k = scratch;
  float* expanded_v = scratch + expanded_floats;
  float* scores = scratch + 2 * expanded_floats;

  const std::size_t head_bytes = std::size_t(head_dim) * sizeof(float);
  for (int t = 0; t < n_ctx; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      const std::size_t from = (std::size_t(t) * n_kv_heads + h / group) * head_dim;
      const std::size_t to = (std::size_t(t) * n_heads + h) * head_dim;
      std::memcpy(expanded_k + to, k_cache + from, head_bytes);
      std::memcpy(expanded_v + to, v_cache + from, head_bytes);
    }
  }
  // With one KV head per query head this is plain multi-head attention.
  attention_decode(out, q, expanded_k, expanded_v, n_ctx, n_heads, n_heads, head_dim, scores);
}

std::size_t attention_decode_grouped_scratch_floats(int n_ctx, int n_heads, int n_kv_heads) {
  return std::size_t(n_heads / n_kv_heads) * n_ctx;
}

void attention_decode_grouped(float* out, const float* q, const float* k_cache,
                              const float* v_cache, int n_ctx, int n_heads, int n_kv_heads,
                              int head_dim, float* scores) {
  const int group = n_heads / n_kv_heads;  // query heads per KV head
  const std::size_t kv_stride = std::size_t(n_kv_heads) * head_dim;
  const float scale = sqrtf(float(head_dim));

  for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
    // Query heads kv_head * group .. + group - 1 share this KV head; their rows are adjacent.
    //   group_q, group_out: [group][head_dim], scores: [group][n_ctx]
    const float* group_q = q + std::size_t(kv_head) * group * head_dim;
    float* group_out = out + std::size_t(kv_head) * group * head_dim;
    const float* keys = k_cache + std::size_t(kv_head) * head_dim;
    const float* values = v_cache + std::size_t(kv_head) * head_dim;

    rows::score_group(scores, n_ctx, group_q, group, keys, n_ctx, head_dim, kv_stride, scale);
    for (int j = 0; j < group; ++j) softmax(scores + std::size_t(j) * n_ctx, n_ctx);
    for (std::size_t i = 0; i < std::size_t(group) * head_dim; ++i) group_out[i] = 0.0f;
    rows::accumulate_group(group_out, scores, n_ctx, group, values, n_ctx, head_dim, kv_stride);
  }
}

}  // namespace kvc::cpu
