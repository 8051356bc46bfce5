// Chapter 02: the learner's cache operations and the ContiguousKVCache strategy.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "common/check.hpp"
#include "common/thread_pool.hpp"
#include "engine/generate.hpp"
#include "kernels/cpu/ops.hpp"
#include "tests/support/bit_identical.hpp"
#include "tests/support/test_support.hpp"

namespace kvc::ch02 {
namespace {

const CacheLayout kLayout{/*n_layers=*/3, /*max_seq_len=*/10, /*n_kv_heads=*/2, /*head_dim=*/4};

TEST(Ch02CacheOffset, RowMajorLayerThenPosition) {
  EXPECT_EQ(cache_offset(kLayout, 0, 0), 0u);
  EXPECT_EQ(cache_offset(kLayout, 0, 1), 8u);    // one position = kv_dim = 2 * 4 floats
  EXPECT_EQ(cache_offset(kLayout, 1, 0), 80u);   // one layer = 10 positions
  EXPECT_EQ(cache_offset(kLayout, 2, 9), 232u);  // the last row of the slot
  EXPECT_EQ(cache_offset(kLayout, 2, 9) + kLayout.kv_dim(), kLayout.floats_per_slot());
}

TEST(Ch02AppendKv, WritesExactlyOneRowOfEach) {
  std::vector<float> k_slot(kLayout.floats_per_slot(), -1.0f), v_slot(k_slot);
  std::vector<float> k(8), v(8);
  for (int i = 0; i < 8; ++i) {
    k[i] = float(i);
    v[i] = float(100 + i);
  }
  append_kv(kLayout, k_slot.data(), v_slot.data(), /*layer=*/1, /*pos=*/3, k.data(), v.data());
  for (std::size_t i = 0; i < k_slot.size(); ++i) {
    const bool in_row = i >= 80 + 24 && i < 80 + 32;
    EXPECT_EQ(k_slot[i], in_row ? float(i - 104) : -1.0f) << i;
    EXPECT_EQ(v_slot[i], in_row ? float(100 + i - 104) : -1.0f) << i;
  }
}

// decode_attention against the kernel on the same rows laid out on their own.
// head_dim 12 has an inexact square root (so 1/sqrtf rounding fails), query
// heads share KV heads (so the head mapping is checked), and every row past
// `pos` is NaN (so reading one position too many poisons the output).
TEST(Ch02DecodeAttention, BitIdenticalToKernelOverPositionsZeroToPos) {
  const CacheLayout layout{/*n_layers=*/3, /*max_seq_len=*/10, /*n_kv_heads=*/2, /*head_dim=*/12};
  const int n_heads = 4, kv_dim = layout.kv_dim();
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (int layer = 0; layer < layout.n_layers; ++layer) {
    for (int pos : {0, 1, 6, layout.max_seq_len - 1}) {
      SCOPED_TRACE("layer " + std::to_string(layer) + ", pos " + std::to_string(pos));
      std::vector<float> k_slot(layout.floats_per_slot(), std::nanf(""));
      std::vector<float> v_slot(k_slot);
      std::vector<float> k_rows((pos + 1) * kv_dim), v_rows(k_rows.size());  // [pos + 1][kv_dim]
      for (int t = 0; t <= pos; ++t) {
        const std::size_t row = (static_cast<std::size_t>(layer) * layout.max_seq_len + t) * kv_dim;
        for (int i = 0; i < kv_dim; ++i) {
          k_rows[t * kv_dim + i] = k_slot[row + i] = dist(rng);
          v_rows[t * kv_dim + i] = v_slot[row + i] = dist(rng);
        }
      }
      std::vector<float> q(n_heads * layout.head_dim), out(q.size()), expected(q.size());
      std::vector<float> scores(layout.max_seq_len);
      for (float& x : q) x = dist(rng);
      decode_attention(out.data(), q.data(), layout, k_slot.data(), v_slot.data(), layer, pos,
                       n_heads, scores.data());
      cpu::attention_decode(expected.data(), q.data(), k_rows.data(), v_rows.data(), pos + 1,
                            n_heads, layout.n_kv_heads, layout.head_dim, scores.data());
      EXPECT_TRUE(testing::bit_identical(out, expected));
    }
  }
}

TEST(Ch02KvBytes, PublishedModels) {
  EXPECT_EQ(kv_bytes_per_token(32, 32, 128, 2), 524288u);  // Llama-2-7B, fp16
  EXPECT_EQ(kv_bytes_per_token(80, 8, 128, 2), 327680u);   // Llama-2-70B, fp16, GQA
  EXPECT_EQ(kv_bytes_per_token(5, 4, 8, 4), 1280u);        // stories260K, fp32
}

ModelConfig small_config() {
  ModelConfig c;
  c.dim = 16;
  c.hidden_dim = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 32;
  c.seq_len = 12;
  return c;
}

TEST(Ch02ContiguousKVCache, ReservesTheWholeContextUpFront) {
  const ModelConfig c = small_config();
  ContiguousKVCache cache(c, /*max_seqs=*/3, nullptr);
  // 2 (K,V) x 2 layers x 12 positions x kv_dim 8 x 4 bytes x 3 slots
  EXPECT_EQ(cache.kv_bytes_reserved(), 2u * 2 * 12 * 8 * 4 * 3);
  EXPECT_EQ(cache.length(0), 0);
}

TEST(Ch02ContiguousKVCache, TracksLengthsAndRejectsGapsAndUnknownSlots) {
  const ModelConfig c = small_config();
  ContiguousKVCache cache(c, /*max_seqs=*/2, nullptr);
  std::vector<float> q(3 * c.dim, 0.5f), kv(3 * c.kv_dim(), 0.25f), out(3 * c.dim);
  Batch batch;
  for (int p = 0; p < 3; ++p) batch.add(1, /*seq_id=*/1, p, false);
  cache.reserve(batch);
  for (int layer = 0; layer < c.n_layers; ++layer) {
    cache.attend(layer, batch, q.data(), kv.data(), kv.data(), out.data());
  }
  EXPECT_EQ(cache.length(1), 3);
  EXPECT_EQ(cache.length(0), 0);

  // A bad batch is refused whole: the good token before the bad one is not kept either.
  Batch gap;
  gap.add(1, 0, 0, false);
  gap.add(1, 1, 5, true);  // positions 3 and 4 were never written
  EXPECT_THROW(cache.reserve(gap), Error);
  Batch rewrite;
  rewrite.add(1, 1, 2, true);  // position 2 is held already
  EXPECT_THROW(cache.reserve(rewrite), Error);
  Batch unknown;
  unknown.add(1, 2, 0, true);
  EXPECT_THROW(cache.reserve(unknown), Error);
  EXPECT_EQ(cache.length(0), 0);
  EXPECT_EQ(cache.length(1), 3);

  cache.release(1);
  EXPECT_EQ(cache.length(1), 0);
}

TEST(Ch02ContiguousKVCache, TruncateRollsBackAndTheNextBatchContinuesThere) {
  const ModelConfig c = small_config();
  ContiguousKVCache cache(c, /*max_seqs=*/2, nullptr);
  Batch prompt;
  for (int p = 0; p < 4; ++p) prompt.add(1, 0, p, p == 3);
  cache.reserve(prompt);

  cache.truncate(0, 2);
  EXPECT_EQ(cache.length(0), 2);
  Batch stale;
  stale.add(1, 0, 3, true);  // position 2 comes next now
  EXPECT_THROW(cache.reserve(stale), Error);
  Batch next;
  next.add(1, 0, 2, true);
  cache.reserve(next);
  EXPECT_EQ(cache.length(0), 3);

  EXPECT_THROW(cache.truncate(0, 4), Error);  // more than it holds
  EXPECT_THROW(cache.truncate(0, -1), Error);
  EXPECT_THROW(cache.truncate(2, 0), Error);  // no such slot
  EXPECT_EQ(cache.length(0), 3);
}

// A header whose contiguous cache no machine holds: a one-line error naming the
// bytes and the shape behind them, before any allocation.
TEST(ContiguousKVCache, AbsurdContextFailsUpFrontNamingTheCause) {
  const ModelConfig c = testing::config_beyond_any_memory();
  try {
    ContiguousKVCache cache(c, 1, nullptr);
    FAIL() << "a 128 TiB cache was allocated";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("128.00 TiB"), std::string::npos) << message;
    EXPECT_NE(message.find("seq_len 4194304"), std::string::npos) << message;
    EXPECT_NE(message.find("4096 layers"), std::string::npos) << message;
    EXPECT_NE(message.find("8 KV heads"), std::string::npos) << message;
  }
}

TEST(Ch02AttentionKernel, ParsesItsNames) {
  for (const std::string& name : attention_kernel_names()) {
    EXPECT_EQ(to_string(parse_attention_kernel(name)), name);
  }
  EXPECT_THROW(parse_attention_kernel("turbo"), Error);
}

// --kernel fast gives the loop's tokens exactly (greedy and sampled: the same
// bits); --kernel split, which rounds its own way, the same greedy text. The
// prompt is a batch of several tokens, so the kernels also run inside the
// pool's jobs (on their thread) as well as across the pool (one decode token).
TEST(Ch02ContiguousKVCache, TunedKernelsGiveTheLoopsTokensOnRealModel) {
  const auto real = testing::load_real_model();
  ThreadPool pool(2);
  CpuEngine engine(real.model, &pool);
  const GenerationOptions greedy{"Lily and Tom went to the beach", 256, {0.0f, 0.9f, 1}};
  const GenerationOptions sampled{"One day", 256, {1.0f, 0.9f, 42}};
  for (const GenerationOptions& options : {greedy, sampled}) {
    ContiguousKVCache loop(real.model.config, 1, &pool);
    const auto expected = generate(engine, real.tokenizer, loop, options).tokens;
    ContiguousKVCache fast(real.model.config, 1, &pool, AttentionKernel::kFast);
    EXPECT_EQ(generate(engine, real.tokenizer, fast, options).tokens, expected);
    if (&options == &greedy) {
      ContiguousKVCache split(real.model.config, 1, &pool, AttentionKernel::kSplit);
      EXPECT_EQ(generate(engine, real.tokenizer, split, options).tokens, expected);
    }
  }
}

}  // namespace
}  // namespace kvc::ch02
