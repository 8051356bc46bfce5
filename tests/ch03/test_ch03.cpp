// Chapter 03: the head mapping, mean-pooling, and every decode kernel giving
// chapter 02's tokens.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "chapters/03_gqa/gqa_kv_cache.hpp"
#include "common/check.hpp"
#include "common/thread_pool.hpp"
#include "engine/generate.hpp"
#include "kernels/cpu/ops.hpp"
#include "tests/support/bit_identical.hpp"
#include "tests/support/test_support.hpp"
#include "tools/synthetic_model.hpp"

namespace kvc::ch03 {
namespace {

TEST(Ch03KvHeadFor, GroupsAreConsecutive) {
  const std::vector<int> expected = {0, 0, 0, 0, 1, 1, 1, 1};  // 8 query heads, 2 KV heads
  for (int h = 0; h < 8; ++h) EXPECT_EQ(kv_head_for(h, 8, 2), expected[h]) << h;
  for (int h = 0; h < 8; ++h) EXPECT_EQ(kv_head_for(h, 8, 8), h);  // MHA
  for (int h = 0; h < 8; ++h) EXPECT_EQ(kv_head_for(h, 8, 1), 0);  // MQA
}

// The grouped loop gives llama2.c's bits for MHA, GQA and MQA. head_dim 12 has
// an inexact square root, so a different rounding of the scale shows here.
TEST(Ch03GroupedDecodeAttention, BitIdenticalToChapter02Loop) {
  const int n_heads = 8, head_dim = 12;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (int n_kv_heads : {8, 2, 1}) {
    for (int n_ctx : {1, 5, 37}) {
      SCOPED_TRACE(std::to_string(n_kv_heads) + " KV heads, " + std::to_string(n_ctx) +
                   " positions");
      std::vector<float> k(n_ctx * n_kv_heads * head_dim), v(k.size());
      std::vector<float> q(n_heads * head_dim), out(q.size()), expected(q.size());
      for (auto* x : {&k, &v, &q}) {
        for (float& f : *x) f = dist(rng);
      }
      std::vector<float> scores(grouped_decode_scratch_floats(n_ctx, n_heads));
      grouped_decode_attention(out.data(), q.data(), k.data(), v.data(), n_ctx, n_heads, n_kv_heads,
                               head_dim, scores.data());
      cpu::attention_decode(expected.data(), q.data(), k.data(), v.data(), n_ctx, n_heads,
                            n_kv_heads, head_dim, scores.data());
      EXPECT_TRUE(testing::bit_identical(out, expected));
    }
  }
}

TEST(Ch03MeanPool, AveragesConsecutiveHeads) {
  // 4 input heads of head_dim 1 over dim 2: head i has rows {i, 10 i}.
  const std::vector<float> w_in = {0, 0, 1, 10, 2, 20, 3, 30};
  std::vector<float> two(4), one(2), same(8);
  mean_pool_kv_heads(w_in.data(), two.data(), 4, 2, 1, 2);
  EXPECT_EQ(two, (std::vector<float>{0.5f, 5.0f, 2.5f, 25.0f}));
  mean_pool_kv_heads(w_in.data(), one.data(), 4, 1, 1, 2);
  EXPECT_EQ(one, (std::vector<float>{1.5f, 15.0f}));
  mean_pool_kv_heads(w_in.data(), same.data(), 4, 4, 1, 2);
  EXPECT_EQ(same, w_in);
}

TEST(Ch03DecodeKernel, ParsesItsNames) {
  for (auto kernel : {DecodeKernel::kReread, DecodeKernel::kRepeatKv, DecodeKernel::kGrouped,
                      DecodeKernel::kFast}) {
    EXPECT_EQ(parse_decode_kernel(to_string(kernel)), kernel);
  }
  EXPECT_THROW(parse_decode_kernel("turbo"), Error);
}

// Every kernel prints chapter 02's text on the real model, greedy and sampled.
TEST(Ch03GqaKVCache, EveryKernelGivesChapter02Tokens) {
  const auto real = testing::load_real_model();
  const Model& model = real.model;
  const Tokenizer& tokenizer = real.tokenizer;
  ThreadPool pool(2);
  CpuEngine engine(model, &pool);
  for (const GenerationOptions& options :
       {GenerationOptions{"Lily and Tom went to the beach", 200, {0.0f, 0.9f, 1}},
        GenerationOptions{"One day", 256, {1.0f, 0.9f, 42}}}) {
    ch02::ContiguousKVCache baseline(model.config, 1, &pool);
    const auto expected = generate(engine, tokenizer, baseline, options);
    for (auto kernel : {DecodeKernel::kReread, DecodeKernel::kRepeatKv, DecodeKernel::kGrouped,
                        DecodeKernel::kFast}) {
      GqaKVCache kv(model.config, 1, &pool, kernel);
      EXPECT_EQ(generate(engine, tokenizer, kv, options).tokens, expected.tokens)
          << to_string(kernel);
      EXPECT_EQ(kv.kv_bytes_reserved(), baseline.kv_bytes_reserved());
    }
  }
}

}  // namespace
}  // namespace kvc::ch03
