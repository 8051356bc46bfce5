// Chapter 03's decode kernels: the repeat-K/V and grouped kernels must give
// attention_decode's bits exactly (so chapter 03's tokens equal chapter 02's),
// and all three must be right, checked against a double-precision reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/cpu/ops.hpp"
#include "tests/kernels/test_helpers.hpp"

namespace kvc::cpu {
namespace {

using test::DecodeShape;
using test::expect_all_close;
using test::expect_bit_identical;
using test::random_floats;

// g = 1, 2, 4, 8 and all query heads (MQA), each at head_dim 8, 64 and 128
// and n_ctx 1, odd, and more than a thousand rows.
std::vector<DecodeShape> decode_shapes() {
  struct Heads {
    int n_heads, n_kv_heads;
  };
  const Heads heads[] = {{3, 3}, {6, 3}, {8, 2}, {16, 2}, {12, 1}};
  std::vector<DecodeShape> shapes;
  for (const Heads& h : heads) {
    for (int head_dim : {8, 64, 128}) {
      for (int n_ctx : {1, 37, 1031}) shapes.push_back({h.n_heads, h.n_kv_heads, head_dim, n_ctx});
    }
  }
  return shapes;
}

// Exact softmax-weighted sums in double. Query head h's KV head is found by
// counting groups, independently of the kernels' h / g.
//   q: [n_heads][head_dim], k_cache/v_cache: [n_ctx][n_kv_heads][head_dim]
std::vector<double> decode_in_double(const float* q, const float* k_cache, const float* v_cache,
                                     const DecodeShape& s) {
  const int dim = s.head_dim;
  std::vector<double> out(std::size_t(s.n_heads) * dim, 0.0);
  for (int h = 0; h < s.n_heads; ++h) {
    const int kv_head = h * s.n_kv_heads / s.n_heads;
    const auto cached = [&](const float* cache, int t, int d) {
      return double(cache[(std::size_t(t) * s.n_kv_heads + kv_head) * dim + d]);
    };
    std::vector<double> weights(s.n_ctx);
    for (int t = 0; t < s.n_ctx; ++t) {
      double dot = 0.0;
      for (int d = 0; d < dim; ++d) dot += q[h * dim + d] * cached(k_cache, t, d);
      weights[t] = dot / std::sqrt(double(dim));
    }
    const double max_weight = *std::max_element(weights.begin(), weights.end());
    double total = 0.0;
    for (double& weight : weights) total += (weight = std::exp(weight - max_weight));
    for (int t = 0; t < s.n_ctx; ++t) {
      for (int d = 0; d < dim; ++d) out[h * dim + d] += weights[t] / total * cached(v_cache, t, d);
    }
  }
  return out;
}

TEST(GqaDecode, GroupedAndRepeatMatchAttentionDecodeBitForBitAndDouble) {
  unsigned seed = 1;
  for (const DecodeShape& s : decode_shapes()) {
    SCOPED_TRACE(testing::Message() << s.n_heads << "/" << s.n_kv_heads << " heads x " << s.head_dim
                                    << ", n_ctx " << s.n_ctx);
    const auto [q_size, q, k_cache, v_cache] =
        test::random_decode_inputs(s.n_heads, s.n_kv_heads, s.head_dim, s.n_ctx, seed);

    // Outputs start as different garbage so a kernel that skips an element is caught.
    auto re_read = random_floats(q_size, seed++);
    auto repeat = random_floats(q_size, seed++);
    auto grouped = random_floats(q_size, seed++);
    std::vector<float> scores(s.n_ctx);
    std::vector<float> repeat_scratch(
        attention_decode_repeat_kv_scratch_floats(s.n_ctx, s.n_heads, s.head_dim));
    std::vector<float> grouped_scores(
        attention_decode_grouped_scratch_floats(s.n_ctx, s.n_heads, s.n_kv_heads));

    attention_decode(re_read.data(), q.data(), k_cache.data(), v_cache.data(), s.n_ctx, s.n_heads,
                     s.n_kv_heads, s.head_dim, scores.data());
    attention_decode_repeat_kv(repeat.data(), q.data(), k_cache.data(), v_cache.data(), s.n_ctx,
                               s.n_heads, s.n_kv_heads, s.head_dim, repeat_scratch.data());
    attention_decode_grouped(grouped.data(), q.data(), k_cache.data(), v_cache.data(), s.n_ctx,
                             s.n_heads, s.n_kv_heads, s.head_dim, grouped_scores.data());

    expect_bit_identical(repeat.data(), re_read.data(), q_size);
    expect_bit_identical(grouped.data(), re_read.data(), q_size);
    const std::vector<double> expected =
        decode_in_double(q.data(), k_cache.data(), v_cache.data(), s);
    expect_all_close(re_read, expected, 1e-5, 1e-4);
    expect_all_close(grouped, expected, 1e-5, 1e-4);
  }
}

}  // namespace
}  // namespace kvc::cpu
