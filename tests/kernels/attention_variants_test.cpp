// Every numbered decode variant over a contiguous cache (ops.hpp,
// attention_decode_variant). Variants 1..kDecodeExactVariants must give
// attention_decode's bits, on any thread count: llama2.c's rounding is the
// project's oracle, and the fast variant is built to keep it (see
// attention_fast.cpp). attention_test.cpp checks attention_decode itself
// against a double-precision reference; the split-context variant, which
// rounds its own way, is checked against that reference by tolerance.
#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "common/check.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"
#include "tests/kernels/test_helpers.hpp"

namespace kvc::cpu {
namespace {

using test::DecodeShape;
using test::expect_all_close;
using test::expect_bit_identical;
using test::random_floats;

// n_ctx 1, around the 8-key blocks and the 32-row value passes, and two big
// caches; head_dim 48, 64, 128 and 20 (a tail after the 8-wide lanes); g = 1,
// 2, 4, 8 and MQA.
std::vector<DecodeShape> decode_shapes() {
  struct Heads {
    int n_heads, n_kv_heads;
  };
  const Heads heads[] = {{2, 2}, {4, 2}, {8, 2}, {16, 2}, {6, 1}};
  std::vector<DecodeShape> shapes;
  for (int n_ctx : {1, 7, 8, 9, 31, 33, 130}) {
    for (const Heads& h : heads) {
      for (int head_dim : {48, 64, 128, 20}) {
        shapes.push_back({h.n_heads, h.n_kv_heads, head_dim, n_ctx});
      }
    }
  }
  // Caches big enough (> 256 KiB) for the fast variant to use its threads.
  shapes.push_back({32, 8, 64, 1000});
  shapes.push_back({8, 1, 128, 777});
  return shapes;
}

TEST(DecodeVariants, EveryVariantOnEveryThreadCountMatchesAttentionDecodeBitForBit) {
  ThreadPool two(2), three(3);
  unsigned seed = 1;
  for (const DecodeShape& s : decode_shapes()) {
    SCOPED_TRACE(testing::Message() << s.n_heads << "/" << s.n_kv_heads << " heads x " << s.head_dim
                                    << ", n_ctx " << s.n_ctx);
    const auto [q_size, q, k_cache, v_cache] =
        test::random_decode_inputs(s.n_heads, s.n_kv_heads, s.head_dim, s.n_ctx, seed);

    std::vector<float> expected(q_size), scores(s.n_ctx);
    attention_decode(expected.data(), q.data(), k_cache.data(), v_cache.data(), s.n_ctx, s.n_heads,
                     s.n_kv_heads, s.head_dim, scores.data());

    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two, &three}) {
      for (int variant = 0; variant <= kDecodeExactVariants; ++variant) {
        SCOPED_TRACE(testing::Message()
                     << "variant " << variant << ", threads " << (pool ? pool->num_threads() : 1));
        auto out = random_floats(q_size, seed++);  // garbage, so a skipped element shows
        std::vector<float> scratch(
            attention_decode_scratch_floats(variant, s.n_ctx, s.n_heads, s.n_kv_heads, s.head_dim));
        attention_decode_variant(variant, out.data(), q.data(), k_cache.data(), v_cache.data(),
                                 s.n_ctx, s.n_heads, s.n_kv_heads, s.head_dim, scratch.data(),
                                 pool);
        expect_bit_identical(out.data(), expected.data(), q_size);
      }
    }
  }
}

TEST(DecodeVariants, SplitContextMatchesDoubleReferenceWithinTolerance) {
  ThreadPool two(2), three(3);
  unsigned seed = 1;
  for (const DecodeShape& s : decode_shapes()) {
    SCOPED_TRACE(testing::Message() << s.n_heads << "/" << s.n_kv_heads << " heads x " << s.head_dim
                                    << ", n_ctx " << s.n_ctx);
    const auto [q_size, q, k_cache, v_cache] =
        test::random_decode_inputs(s.n_heads, s.n_kv_heads, s.head_dim, s.n_ctx, seed);
    const auto expected = test::decode_attention_in_double(
        q.data(), k_cache.data(), v_cache.data(), s.n_ctx, s.n_heads, s.n_kv_heads, s.head_dim);
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two, &three}) {
      SCOPED_TRACE(testing::Message() << "threads " << (pool ? pool->num_threads() : 1));
      auto out = random_floats(q_size, seed++);
      attention_decode_variant(5, out.data(), q.data(), k_cache.data(), v_cache.data(), s.n_ctx,
                               s.n_heads, s.n_kv_heads, s.head_dim, nullptr, pool);
      expect_all_close(out, expected, 2e-5, 2e-4);
    }
  }
}

TEST(DecodeVariants, RejectsUnknownVariants) {
  const std::vector<float> q(8), cache(8);
  std::vector<float> out(8), scratch(8);
  for (int variant : {-1, kDecodeVariants + 1}) {
    EXPECT_THROW(attention_decode_variant(variant, out.data(), q.data(), cache.data(), cache.data(),
                                          1, 1, 1, 8, scratch.data(), nullptr),
                 Error);
    EXPECT_THROW(attention_decode_scratch_floats(variant, 1, 1, 1, 8), Error);
  }
}

}  // namespace
}  // namespace kvc::cpu
