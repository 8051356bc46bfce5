// Chapter 03's two ways to run decode attention when query heads share KV
// heads. Both round exactly like attention_decode (see attention.cpp): each
// score is one in-order sum over head_dim divided by sqrtf(head_dim), the
// softmax is cpu::softmax, and every output sums over t in order. So all three
// kernels produce the same bits and differ only in how many bytes they move.
#include <cmath>
#include <cstddef>
#include <cstring>

#include "kernels/cpu/ops.hpp"

namespace kvc::cpu {

namespace {

// Keys scored per pass: eight rows (4 KiB at head_dim 128) stay in L1 while
// every query head of the group is scored against them.
constexpr int kKeysAtOnce = 8;

// scores[j] = q . key_j / scale for the kKeys key rows starting at `keys`
// (row j at keys + j * kv_stride): kKeys independent in-order sums.
template <int kKeys>
void score_keys(float* scores, const float* q, const float* keys, int head_dim,
                std::size_t kv_stride, float scale) {
  float sums[kKeys] = {};
  for (int d = 0; d < head_dim; ++d) {
    for (int j = 0; j < kKeys; ++j) sums[j] += q[d] * keys[j * kv_stride + d];
  }
  for (int j = 0; j < kKeys; ++j) scores[j] = sums[j] / scale;
}

}  // namespace

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

    // Each block of keys comes from memory once and serves the whole group from L1.
    for (int t = 0; t < n_ctx;) {
      const float* key_block = keys + t * kv_stride;
      const bool full_block = t + kKeysAtOnce <= n_ctx;
      for (int j = 0; j < group; ++j) {
        float* head_scores = scores + std::size_t(j) * n_ctx + t;
        const float* head_q = group_q + std::size_t(j) * head_dim;
        if (full_block) {
          score_keys<kKeysAtOnce>(head_scores, head_q, key_block, head_dim, kv_stride, scale);
        } else {
          score_keys<1>(head_scores, head_q, key_block, head_dim, kv_stride, scale);
        }
      }
      t += full_block ? kKeysAtOnce : 1;
    }

    for (int j = 0; j < group; ++j) softmax(scores + std::size_t(j) * n_ctx, n_ctx);

    for (std::size_t i = 0; i < std::size_t(group) * head_dim; ++i) group_out[i] = 0.0f;
    // Each value row likewise: read once, accumulated into every output of the group.
    for (int t = 0; t < n_ctx; ++t) {
      const float* value = values + t * kv_stride;
      for (int j = 0; j < group; ++j) {
        float* head_out = group_out + std::size_t(j) * head_dim;
        const float weight = scores[std::size_t(j) * n_ctx + t];
        for (int d = 0; d < head_dim; ++d) head_out[d] += weight * value[d];
      }
    }
  }
}

}  // namespace kvc::cpu
