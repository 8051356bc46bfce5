// Helpers shared by the kernel tests: seeded random inputs and an llm.c-style
// closeness check that reports only the first few mismatches.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

namespace kvc::test {

inline std::vector<float> random_floats(std::size_t size, unsigned seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(size);
  for (float& value : values) value = dist(rng);
  return values;
}

// Expects |actual[i] - expected[i]| <= tol + |expected[i]| * eps for every i.
inline void expect_all_close(const std::vector<float>& actual, const std::vector<double>& expected,
                             double tol, double eps) {
  ASSERT_EQ(actual.size(), expected.size());
  constexpr int kMaxReported = 5;
  int mismatches = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double allowed = tol + std::abs(expected[i]) * eps;
    if (!(std::abs(actual[i] - expected[i]) <= allowed)) {
      if (mismatches < kMaxReported) {
        ADD_FAILURE() << "index " << i << ": got " << actual[i] << ", expected " << expected[i]
                      << " (allowed error " << allowed << ")";
      }
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << actual.size() << " values";
}

// Expects the two buffers to hold the same bits (not just close values).
inline void expect_bit_identical(const float* actual, const float* expected, std::size_t size) {
  constexpr int kMaxReported = 5;
  int mismatches = 0;
  for (std::size_t i = 0; i < size; ++i) {
    if (std::memcmp(&actual[i], &expected[i], sizeof(float)) != 0) {
      if (mismatches < kMaxReported) {
        ADD_FAILURE() << "index " << i << ": got " << actual[i] << ", expected " << expected[i];
      }
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << size << " values differ in their bits";
}

// One decode step's shape: n_heads query heads over n_ctx cached positions of
// n_kv_heads KV heads, head_dim each.
struct DecodeShape {
  int n_heads, n_kv_heads, head_dim, n_ctx;
};

// Seeded inputs for one decode step (seed advances by 3):
//   q: [n_heads][head_dim] in [-2, 2); k_cache: [n_ctx][n_kv_heads][head_dim]
//   in [-2, 2); v_cache like k_cache in [-1, 1). q_size = n_heads * head_dim.
struct DecodeStepInputs {
  std::size_t q_size;
  std::vector<float> q, k_cache, v_cache;
};
inline DecodeStepInputs random_decode_inputs(int n_heads, int n_kv_heads, int head_dim, int n_ctx,
                                             unsigned& seed) {
  const std::size_t q_size = std::size_t(n_heads) * head_dim;
  const std::size_t kv_size = std::size_t(n_ctx) * n_kv_heads * head_dim;
  DecodeStepInputs inputs{q_size, random_floats(q_size, seed, -2.0f, 2.0f),
                          random_floats(kv_size, seed + 1, -2.0f, 2.0f),
                          random_floats(kv_size, seed + 2)};
  seed += 3;
  return inputs;
}

// Decode attention from its definition, in double: one query of every head
// against the first n_ctx rows of the cache; query head h reads KV head
// h / (n_heads / n_kv_heads).
//   q: [n_heads][head_dim], k_cache/v_cache: [>= n_ctx][n_kv_heads][head_dim]
inline std::vector<double> decode_attention_in_double(const float* q, const float* k_cache,
                                                      const float* v_cache, int n_ctx, int n_heads,
                                                      int n_kv_heads, int head_dim) {
  const int group = n_heads / n_kv_heads;
  const std::size_t kv_stride = std::size_t(n_kv_heads) * head_dim;
  std::vector<double> out(std::size_t(n_heads) * head_dim, 0.0);
  for (int h = 0; h < n_heads; ++h) {
    const std::size_t kv_offset = std::size_t(h / group) * head_dim;
    std::vector<double> scores(n_ctx);
    for (int t = 0; t < n_ctx; ++t) {
      double dot = 0.0;
      for (int d = 0; d < head_dim; ++d) {
        dot += double(q[h * head_dim + d]) * k_cache[t * kv_stride + kv_offset + d];
      }
      scores[t] = dot / std::sqrt(double(head_dim));
    }
    const double max_score = *std::max_element(scores.begin(), scores.end());
    double sum = 0.0;
    for (double& score : scores) sum += (score = std::exp(score - max_score));
    for (int t = 0; t < n_ctx; ++t) {
      for (int d = 0; d < head_dim; ++d) {
        out[h * head_dim + d] += scores[t] / sum * v_cache[t * kv_stride + kv_offset + d];
      }
    }
  }
  return out;
}

}  // namespace kvc::test
