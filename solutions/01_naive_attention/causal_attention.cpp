// Solution: chapter 01, causal attention of one head (matrix form).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "chapters/01_naive_attention/naive_attention.hpp"

namespace kvc::ch01 {

void causal_attention_one_head(float* out, const float* q, const float* k, const float* v,
                               int n_tokens, int head_dim, std::size_t q_stride,
                               std::size_t kv_stride) {
  const std::size_t n = n_tokens;
  const float scale = std::sqrt(static_cast<float>(head_dim));

  // S = Q K^T / sqrt(d), with the future masked out: an n x n matrix, which
  // is exactly the O(n^2) memory and work a KV cache cannot remove.
  std::vector<float> scores(n * n, -std::numeric_limits<float>::infinity());
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j <= i; ++j) {
      float dot = 0.0f;
      for (int d = 0; d < head_dim; ++d) dot += q[i * q_stride + d] * k[j * kv_stride + d];
      scores[i * n + j] = dot / scale;
    }
  }

  // P = softmax(S), row by row; subtracting the row max keeps expf in range.
  for (std::size_t i = 0; i < n; ++i) {
    float* row = &scores[i * n];
    float max_score = row[0];
    for (std::size_t j = 1; j <= i; ++j) max_score = std::max(max_score, row[j]);
    float sum = 0.0f;
    for (std::size_t j = 0; j < n; ++j) {
      row[j] = std::exp(row[j] - max_score);  // exp(-inf) = 0: masked entries vanish
      sum += row[j];
    }
    for (std::size_t j = 0; j < n; ++j) row[j] /= sum;
  }

  // O = P V.
  for (std::size_t i = 0; i < n; ++i) {
    float* o = out + i * q_stride;
    for (int d = 0; d < head_dim; ++d) o[d] = 0.0f;
    for (std::size_t j = 0; j <= i; ++j) {
      const float p = scores[i * n + j];
      for (int d = 0; d < head_dim; ++d) o[d] += p * v[j * kv_stride + d];
    }
  }
}

}  // namespace kvc::ch01
