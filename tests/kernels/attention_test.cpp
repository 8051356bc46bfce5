#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <vector>

#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"
#include "tests/kernels/test_helpers.hpp"

namespace kvc::cpu {
namespace {

using test::expect_all_close;
using test::expect_bit_identical;
using test::random_floats;

struct AttentionShape {
  int n_heads, n_kv_heads, head_dim;
};

// GQA (2 query heads per KV head), plain multi-head, and multi-query.
const AttentionShape kShapes[] = {{8, 4, 8}, {6, 6, 32}, {8, 1, 64}};

std::vector<double> attention_in_double(const float* q, const float* k_cache, const float* v_cache,
                                        int n_ctx, const AttentionShape& s) {
  return test::decode_attention_in_double(q, k_cache, v_cache, n_ctx, s.n_heads, s.n_kv_heads,
                                          s.head_dim);
}

// llama2.c's run.c attention for one head, transcribed: the rounding the
// project must reproduce bit for bit.
void run_c_attend(float* xb, const float* q, const float* k_cache, const float* v_cache, int n_ctx,
                  int head_size, std::size_t kv_dim, float* att) {
  for (int t = 0; t < n_ctx; t++) {
    const float* k = k_cache + t * kv_dim;
    float score = 0.0f;
    for (int i = 0; i < head_size; i++) score += q[i] * k[i];
    score /= sqrtf(head_size);
    att[t] = score;
  }
  float max_val = att[0];
  for (int t = 1; t < n_ctx; t++) max_val = std::max(max_val, att[t]);
  float sum = 0.0f;
  for (int t = 0; t < n_ctx; t++) {
    att[t] = expf(att[t] - max_val);
    sum += att[t];
  }
  for (int t = 0; t < n_ctx; t++) att[t] /= sum;
  for (int i = 0; i < head_size; i++) xb[i] = 0.0f;
  for (int t = 0; t <= n_ctx - 1; t++) {
    const float* v = v_cache + t * kv_dim;
    for (int i = 0; i < head_size; i++) xb[i] += att[t] * v[i];
  }
}

TEST(AttendOneQuery, MatchesRunCBitForBit) {
  constexpr int kHeadDim = 32;
  constexpr std::size_t kStride = 3 * kHeadDim;  // the head's rows sit inside wider cache rows
  for (int n_ctx : {1, 7, 8, 9, 33}) {
    SCOPED_TRACE(testing::Message() << "n_ctx " << n_ctx);
    const auto q = random_floats(kHeadDim, 1, -2.0f, 2.0f);
    const auto keys = random_floats(n_ctx * kStride, 2, -2.0f, 2.0f);
    const auto values = random_floats(n_ctx * kStride, 3);
    std::vector<float> out(kHeadDim), scores(n_ctx), run_c(kHeadDim), run_c_scores(n_ctx);
    attend_one_query(out.data(), q.data(), keys.data(), values.data(), n_ctx, kHeadDim, kStride,
                     scores.data());
    run_c_attend(run_c.data(), q.data(), keys.data(), values.data(), n_ctx, kHeadDim, kStride,
                 run_c_scores.data());
    expect_bit_identical(out.data(), run_c.data(), kHeadDim);
  }
}

TEST(AttentionDecode, MatchesDoubleReference) {
  for (const AttentionShape& s : kShapes) {
    for (int n_ctx : {1, 13, 37}) {
      SCOPED_TRACE(testing::Message() << s.n_heads << "/" << s.n_kv_heads << " heads x "
                                      << s.head_dim << ", n_ctx " << n_ctx);
      const std::size_t kv_size = std::size_t(n_ctx) * s.n_kv_heads * s.head_dim;
      const auto q = random_floats(std::size_t(s.n_heads) * s.head_dim, 4, -2.0f, 2.0f);
      const auto k_cache = random_floats(kv_size, 5, -2.0f, 2.0f);
      const auto v_cache = random_floats(kv_size, 6);
      std::vector<float> out(std::size_t(s.n_heads) * s.head_dim), scores(n_ctx);
      attention_decode(out.data(), q.data(), k_cache.data(), v_cache.data(), n_ctx, s.n_heads,
                       s.n_kv_heads, s.head_dim, scores.data());
      expect_all_close(out, attention_in_double(q.data(), k_cache.data(), v_cache.data(), n_ctx, s),
                       1e-5, 1e-4);
    }
  }
}

TEST(AttentionPrefillCausal, MatchesDoubleReferenceAndDecode) {
  for (int threads : {0, 1, 2, 3}) {
    const auto pool = threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr;
    for (const AttentionShape& s : kShapes) {
      for (int n : {1, 11}) {
        SCOPED_TRACE(testing::Message() << s.n_heads << "/" << s.n_kv_heads << " heads x "
                                        << s.head_dim << ", n " << n << ", threads " << threads);
        const std::size_t q_dim = std::size_t(s.n_heads) * s.head_dim;
        const std::size_t kv_dim = std::size_t(s.n_kv_heads) * s.head_dim;
        const auto q = random_floats(n * q_dim, 7, -2.0f, 2.0f);
        const auto k = random_floats(n * kv_dim, 8, -2.0f, 2.0f);
        const auto v = random_floats(n * kv_dim, 9);
        std::vector<float> out(n * q_dim);
        attention_prefill_causal(out.data(), q.data(), k.data(), v.data(), n, s.n_heads,
                                 s.n_kv_heads, s.head_dim, pool.get());

        std::vector<float> decoded(q_dim), scores(n);
        for (int i = 0; i < n; ++i) {
          // Token i sees tokens 0..i: the same as decoding it over a cache of i + 1 rows.
          const std::vector<float> out_row(out.begin() + i * q_dim, out.begin() + (i + 1) * q_dim);
          expect_all_close(out_row,
                           attention_in_double(&q[i * q_dim], k.data(), v.data(), i + 1, s), 1e-5,
                           1e-4);
          attention_decode(decoded.data(), &q[i * q_dim], k.data(), v.data(), i + 1, s.n_heads,
                           s.n_kv_heads, s.head_dim, scores.data());
          expect_bit_identical(out_row.data(), decoded.data(), q_dim);
        }
      }
    }
  }
}

}  // namespace
}  // namespace kvc::cpu
