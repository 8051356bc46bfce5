// Scoring and summing runs of cache rows for a group of query heads (see attention_rows.hpp).
#include "kernels/cpu/attention_rows.hpp"

#include <cstddef>

namespace kvc::cpu::rows {

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

void score_group(float* scores, std::size_t scores_stride, const float* group_q, int group,
                 const float* keys, int n_rows, int head_dim, std::size_t kv_stride, float scale) {
  // Each block of keys comes from memory once and serves the whole group from L1.
  for (int t = 0; t < n_rows;) {
    const float* key_block = keys + t * kv_stride;
    const bool full_block = t + kKeysAtOnce <= n_rows;
    for (int j = 0; j < group; ++j) {
      float* head_scores = scores + j * scores_stride + t;
      const float* head_q = group_q + std::size_t(j) * head_dim;
      if (full_block) {
        score_keys<kKeysAtOnce>(head_scores, head_q, key_block, head_dim, kv_stride, scale);
      } else {
        score_keys<1>(head_scores, head_q, key_block, head_dim, kv_stride, scale);
      }
    }
    t += full_block ? kKeysAtOnce : 1;
  }
}

void accumulate_group(float* group_out, const float* weights, std::size_t weights_stride, int group,
                      const float* values, int n_rows, int head_dim, std::size_t kv_stride) {
  for (int t = 0; t < n_rows; ++t) {
    const float* value = values + t * kv_stride;
    for (int j = 0; j < group; ++j) {
      float* head_out = group_out + std::size_t(j) * head_dim;
      const float weight = weights[j * weights_stride + t];
      for (int d = 0; d < head_dim; ++d) head_out[d] += weight * value[d];
    }
  }
}

}  // namespace kvc::cpu::rows
