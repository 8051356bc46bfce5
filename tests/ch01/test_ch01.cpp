// Chapter 01: the learner's causal attention against independent references.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "chapters/01_naive_attention/naive_attention.hpp"
#include "kernels/cpu/ops.hpp"
#include "tests/support/bit_identical.hpp"

namespace kvc::ch01 {
namespace {

std::vector<float> random_vector(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Textbook attention in double precision, one query row at a time.
std::vector<double> reference(const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, int n, int d) {
  std::vector<double> out(static_cast<std::size_t>(n) * d, 0.0);
  for (int i = 0; i < n; ++i) {
    std::vector<double> weights(i + 1);
    double max_score = -1e300, sum = 0;
    for (int j = 0; j <= i; ++j) {
      double dot = 0;
      for (int x = 0; x < d; ++x) dot += double(q[i * d + x]) * k[j * d + x];
      weights[j] = dot / std::sqrt(double(d));
      max_score = std::max(max_score, weights[j]);
    }
    for (double& w : weights) sum += (w = std::exp(w - max_score));
    for (int j = 0; j <= i; ++j) {
      for (int x = 0; x < d; ++x) out[i * d + x] += weights[j] / sum * v[j * d + x];
    }
  }
  return out;
}

TEST(Ch01CausalAttention, MatchesDoublePrecisionReference) {
  std::mt19937 rng(1);
  for (int n : {1, 2, 7, 33}) {
    for (int d : {4, 8, 64}) {
      const auto q = random_vector(n * d, rng), k = random_vector(n * d, rng),
                 v = random_vector(n * d, rng);
      std::vector<float> out(n * d);
      causal_attention_one_head(out.data(), q.data(), k.data(), v.data(), n, d, d, d);
      const auto expected = reference(q, k, v, n, d);
      for (int i = 0; i < n * d; ++i) {
        ASSERT_NEAR(out[i], expected[i], 1e-5 + 1e-5 * std::fabs(expected[i]))
            << "n=" << n << " d=" << d << " element " << i;
      }
    }
  }
}

TEST(Ch01CausalAttention, FirstTokenSeesOnlyItself) {
  const std::vector<float> q = {1, 0, 0, 1}, k = {1, 0, 0, 1}, v = {3, -3, 5, 7};
  std::vector<float> out(4);
  causal_attention_one_head(out.data(), q.data(), k.data(), v.data(), 2, 2, 2, 2);
  EXPECT_FLOAT_EQ(out[0], 3.0f);
  EXPECT_FLOAT_EQ(out[1], -3.0f);
}

// Bit-identical to the kernel the cached chapters use, with the head strides of
// a real batch: that is why chapter 01 and 02 print the same text. head_dim 48
// has an inexact square root, and x * (1 / sqrtf(48)) differs from
// x / sqrtf(48) for about 40% of scores, so that rounding fails here.
TEST(Ch01CausalAttention, BitIdenticalToCpuPrefillKernelWithStrides) {
  std::mt19937 rng(2);
  const int n = 19, n_heads = 4, n_kv_heads = 2, d = 48;
  const int q_stride = n_heads * d, kv_stride = n_kv_heads * d;
  const auto q = random_vector(n * q_stride, rng), k = random_vector(n * kv_stride, rng),
             v = random_vector(n * kv_stride, rng);
  std::vector<float> expected(n * q_stride), out(n * q_stride);
  cpu::attention_prefill_causal(expected.data(), q.data(), k.data(), v.data(), n, n_heads,
                                n_kv_heads, d, nullptr);
  for (int h = 0; h < n_heads; ++h) {
    const int kv_head = h / (n_heads / n_kv_heads);
    causal_attention_one_head(out.data() + h * d, q.data() + h * d, k.data() + kv_head * d,
                              v.data() + kv_head * d, n, d, q_stride, kv_stride);
  }
  EXPECT_TRUE(testing::bit_identical(out, expected));
}

}  // namespace
}  // namespace kvc::ch01
