// Chapter 07's quantized paged cache: its attention equals
// dequantize-then-reference for every format, its error against the fp32
// cache is bounded, copy-on-write carries scales (and KIVI's fp32 window),
// its bytes are the dtype description's, and fp32 gives chapter 04's tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "chapters/07_quantization/quantized_paged_cache.hpp"
#include "common/thread_pool.hpp"
#include "engine/generate.hpp"
#include "kernels/cpu/ops.hpp"
#include "tests/ch07/fast_kernel_tolerance.hpp"
#include "tests/ch07/one_layer_config.hpp"
#include "tests/support/test_support.hpp"

namespace kvc::ch07 {
namespace {

using testing::fast_kernel_tolerance;
using testing::one_layer_config;

// Random q, k, v for n tokens of one sequence; the keys get a few large
// channels, as real keys do, so per-channel scales have something to fix.
struct Tokens {
  std::vector<float> q, k, v;
};
Tokens random_tokens(const ModelConfig& c, int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Tokens t{std::vector<float>(std::size_t(n) * c.dim),
           std::vector<float>(std::size_t(n) * c.kv_dim()),
           std::vector<float>(std::size_t(n) * c.kv_dim())};
  for (float& x : t.q) x = normal(rng);
  for (std::size_t i = 0; i < t.k.size(); ++i) t.k[i] = normal(rng) * (i % 16 == 3 ? 8.0f : 1.0f);
  for (float& x : t.v) x = normal(rng);
  return t;
}

// Tokens [first, last) of `t` as positions first.. of sequence `seq`, one attend call.
std::vector<float> attend_tokens(KVStrategy& kv, const ModelConfig& c, const Tokens& t, int seq,
                                 int first, int last, int first_position) {
  Batch batch;
  for (int i = first; i < last; ++i) batch.add(0, seq, first_position + i - first, true);
  std::vector<float> out(std::size_t(last - first) * c.dim);
  kv.reserve(batch);
  kv.attend(0, batch, &t.q[std::size_t(first) * c.dim], &t.k[std::size_t(first) * c.kv_dim()],
            &t.v[std::size_t(first) * c.kv_dim()], out.data());
  return out;
}

// The reference: dequantize the whole pool to fp32 pages, then chapter 04's
// kernel v1. Keys stored before RoPE are turned at their positions. With
// `sinks`, positions 0..n_sinks-1 of `seq` read its original fp32 k, v instead.
std::vector<float> reference_attention(const QuantizedPagedKVCache& kv, const ModelConfig& c,
                                       const float* q, const std::vector<int>& table, int n_ctx,
                                       const Tokens* sinks = nullptr, int n_sinks = 0) {
  const cpu::QuantPagedLayer layer = kv.layer_view(0);
  const int num_blocks = kv.layout().num_blocks, bs = kv.layout().block_size;
  const int head_dim = c.head_dim();
  std::vector<float> k_pages(std::size_t(num_blocks) * bs * c.kv_dim());
  std::vector<float> v_pages(k_pages.size());
  std::vector<float> tile(std::size_t(bs) * head_dim);
  for (int b = 0; b < num_blocks; ++b) {
    for (int h = 0; h < c.n_kv_heads; ++h) {
      for (auto [side, pages] : {std::pair{&layer.k, &k_pages}, std::pair{&layer.v, &v_pages}}) {
        cpu::dequantize_block_rows(tile.data(), layer, *side, b, h, bs);
        for (int r = 0; r < bs; ++r) {
          std::copy_n(&tile[std::size_t(r) * head_dim], head_dim,
                      &(*pages)[(std::size_t(b) * bs + r) * c.kv_dim() + h * head_dim]);
        }
      }
    }
  }
  for (int t = 0; layer.keys_before_rope && t < n_ctx; ++t) {
    const std::size_t row = (std::size_t(table[t / bs]) * bs + t % bs) * c.kv_dim();
    cpu::rope_heads(&k_pages[row], c.n_kv_heads, head_dim, t);
  }
  for (int t = 0; t < n_sinks; ++t) {
    const std::size_t row = (std::size_t(table[0]) * bs + t) * c.kv_dim();
    std::copy_n(&sinks->k[t * c.kv_dim()], c.kv_dim(), &k_pages[row]);
    std::copy_n(&sinks->v[t * c.kv_dim()], c.kv_dim(), &v_pages[row]);
  }
  std::vector<float> out(c.dim), scratch(n_ctx);
  cpu::attention_decode_paged(1, out.data(), q, k_pages.data(), v_pages.data(), table.data(), n_ctx,
                              bs, c.n_heads, c.n_kv_heads, head_dim, scratch.data());
  return out;
}

// The same for sequence `seq` of the cache.
std::vector<float> reference_attention(const QuantizedPagedKVCache& kv, const ModelConfig& c,
                                       const float* q, int seq, int n_ctx,
                                       const Tokens* sinks = nullptr, int n_sinks = 0) {
  return reference_attention(kv, c, q, kv.blocks().table(seq)->blocks, n_ctx, sinks, n_sinks);
}

void expect_close(const std::vector<float>& got, const float* want, float tol, const char* what) {
  int shown = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::fabs(got[i] - want[i]) > tol + 1e-5f * std::fabs(want[i]) && shown++ < 5) {
      ADD_FAILURE() << what << " [" << i << "]: " << got[i] << " vs " << want[i];
    }
  }
}

class Ch07EveryFormat : public ::testing::TestWithParam<const char*> {};

TEST_P(Ch07EveryFormat, AttentionEqualsDequantizeThenReference) {
  const ModelConfig c = one_layer_config();
  const KvDtype dtype = parse_kv_dtype(GetParam(), c.head_dim());
  QuantizedPagedKVCache kv(c, dtype, /*num_blocks=*/12, /*block_size=*/16, nullptr);
  const Tokens t = random_tokens(c, 70, 11);
  // The cache runs the exact kernel for fp32 and the fast one for the rest.
  const float cache_tol = dtype.format == NumberFormat::fp32 ? 1e-6f : fast_kernel_tolerance(dtype);
  // A prefill chunk of 37 (two full blocks and a partial one), then single decode steps.
  const std::vector<float> prefill = attend_tokens(kv, c, t, 0, 0, 37, 0);
  for (int i : {0, 15, 16, 36}) {
    expect_close(std::vector<float>(prefill.begin() + i * c.dim, prefill.begin() + (i + 1) * c.dim),
                 reference_attention(kv, c, &t.q[i * c.dim], 0, i + 1).data(), cache_tol,
                 "prefill");
  }
  std::vector<float> last;
  for (int i = 37; i < 70; ++i) last = attend_tokens(kv, c, t, 0, i, i + 1, i);
  const std::vector<float> want = reference_attention(kv, c, &t.q[69 * c.dim], 0, 70);
  expect_close(last, want.data(), cache_tol, "decode");
  // Every kernel variant, on the same pool.
  const cpu::QuantPagedLayer layer = kv.layer_view(0);
  for (int variant = 1; variant <= cpu::kPagedQuantDecodeVariants; ++variant) {
    std::vector<float> out(c.dim);
    std::vector<float> scratch(
        cpu::attention_decode_paged_quant_scratch_floats(variant, 70, c.n_heads, layer));
    cpu::attention_decode_paged_quant(variant, out.data(), &t.q[69 * c.dim], layer,
                                      kv.blocks().table(0)->blocks.data(), 70, c.n_heads,
                                      scratch.data());
    const float tol = variant >= 3 ? fast_kernel_tolerance(dtype) : 1e-6f;
    expect_close(out, want.data(), tol, ("variant " + std::to_string(variant)).c_str());
  }
  EXPECT_THROW(cpu::attention_decode_paged_quant_scratch_floats(cpu::kPagedQuantDecodeVariants + 1,
                                                                70, c.n_heads, layer),
               Error);
  kv.blocks().check_invariants();
}

TEST_P(Ch07EveryFormat, CopyOnWriteCarriesScalesAndWindow) {
  const ModelConfig c = one_layer_config();
  const KvDtype dtype = parse_kv_dtype(GetParam(), c.head_dim());
  const Tokens shared = random_tokens(c, 21, 5), a = random_tokens(c, 3, 6),
               b = random_tokens(c, 3, 7);
  QuantizedPagedKVCache forked(c, dtype, 12, 16, nullptr);
  attend_tokens(forked, c, shared, 0, 0, 21, 0);  // 21 tokens: block 1 is partial and shared
  forked.blocks().fork(0, 1);
  std::vector<float> from_fork;
  for (int i = 0; i < 3; ++i) {
    attend_tokens(forked, c, a, 0, i, i + 1, 21 + i);
    from_fork = attend_tokens(forked, c, b, 1, i, i + 1, 21 + i);
  }
  QuantizedPagedKVCache alone(c, dtype, 12, 16, nullptr);
  attend_tokens(alone, c, shared, 0, 0, 21, 0);
  std::vector<float> from_alone;
  for (int i = 0; i < 3; ++i) from_alone = attend_tokens(alone, c, b, 0, i, i + 1, 21 + i);
  EXPECT_EQ(from_fork, from_alone);
  forked.blocks().check_invariants();
}

TEST_P(Ch07EveryFormat, SinksAreReadInFullPrecision) {
  const ModelConfig c = one_layer_config();
  const KvDtype dtype = parse_kv_dtype(GetParam(), c.head_dim());
  QuantizedPagedKVCache kv(c, dtype, 12, 16, nullptr, {.sink_tokens = 4});
  const Tokens t = random_tokens(c, 40, 13);
  attend_tokens(kv, c, t, 0, 0, 2, 0);  // fewer tokens than sinks, then the rest one by one
  std::vector<float> last;
  for (int i = 2; i < 40; ++i) last = attend_tokens(kv, c, t, 0, i, i + 1, i);
  expect_close(last, reference_attention(kv, c, &t.q[39 * c.dim], 0, 40, &t, 4).data(), 1e-6f,
               "with sinks");
}

// The fast variant over a long context in a shuffled pool, with attention
// sinks, on 1 and 2 threads (2 threads split the context and merge), against
// dequantize-then-reference. 2048 positions of head_dim 64: every format's
// pool is over the 256 KiB below which the kernel stays on one thread.
void expect_fast_variant_like_the_reference(const char* format, int head_dim, int block_size,
                                            int group_size = 0, int sinks = 4, int n_ctx = 2048) {
  ModelConfig c = one_layer_config();
  c.dim = c.n_heads * head_dim;
  c.seq_len = 2048;
  const int num_blocks = c.seq_len / block_size;
  const KvDtype dtype = parse_kv_dtype(format, c.head_dim(), group_size);
  QuantizedPagedKVCache kv(c, dtype, num_blocks, block_size, nullptr, {.sink_tokens = sinks});
  const Tokens t = random_tokens(c, n_ctx, 17);
  std::vector<int> table(num_blocks);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), std::mt19937(5));
  for (int p = 0; p < n_ctx; ++p) {
    kv.store(0, std::int64_t(table[p / block_size]) * block_size + p % block_size, p,
             &t.k[std::size_t(p) * c.kv_dim()], &t.v[std::size_t(p) * c.kv_dim()]);
  }
  const float* q = &t.q[std::size_t(n_ctx - 1) * c.dim];
  const std::vector<float> want = reference_attention(kv, c, q, table, n_ctx, &t, sinks);
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    std::vector<float> out(c.dim);
    cpu::attention_decode_paged_quant(cpu::kFastPagedQuantDecode, out.data(), q, kv.layer_view(0),
                                      table.data(), n_ctx, c.n_heads, nullptr,
                                      kv.sink_rows(0, table[0]), &pool);
    expect_close(out, want.data(), fast_kernel_tolerance(dtype),
                 threads == 1 ? "1 thread" : "2 threads");
  }
}

TEST_P(Ch07EveryFormat, FastVariantSplitsALongContextLikeTheReference) {
  // head_dim 64 (the vector loops), and 8 like stories260K (the scalar ones).
  for (int head_dim : {64, 8}) {
    SCOPED_TRACE("head_dim " + std::to_string(head_dim));
    expect_fast_variant_like_the_reference(GetParam(), head_dim, 16);
  }
}

// Variant 4's integer loops over an int8 pool (no sinks, so they run) at
// head_dim 128 and 64, and an odd context, so the last chunk's rows do not
// pair up; at head_dim 8 v4 hands the pool to v3's loops on AVX2 builds and
// runs its scalar integer loops on baseline ones.
TEST(Ch07QuantizedPagedCache, Int8IntegerLoopsSplitALongContextLikeTheReference) {
  for (int head_dim : {128, 64, 8}) {
    for (int n_ctx : {2048, 2047}) {
      SCOPED_TRACE("head_dim " + std::to_string(head_dim) + ", context " + std::to_string(n_ctx));
      expect_fast_variant_like_the_reference("int8", head_dim, 16, 0, /*sinks=*/0, n_ctx);
    }
  }
}

// The integer sums at their largest: head_dim 512, every key row constant
// (all its codes 127, its scale what differs), q constant (all 32767), so
// each score sums 512 products of 32767 * 127, just under 2^31. A wrapped
// sum would turn the largest scores into the smallest.
TEST(Ch07QuantizedPagedCache, Int8IntegerSumsStayExactAtTheLargestHeads) {
  ModelConfig c = one_layer_config();
  c.n_heads = 4;
  c.n_kv_heads = 1;
  c.dim = c.n_heads * 512;
  c.seq_len = 64;
  const int n_ctx = 64;
  ASSERT_TRUE(cpu::fast::int8_integer_loops_run(c.head_dim(), c.n_heads / c.n_kv_heads));
  QuantizedPagedKVCache kv(c, parse_kv_dtype("int8", c.head_dim()), 4, 16, nullptr);
  std::mt19937 rng(29);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> k(c.kv_dim()), v(c.kv_dim());
  for (int t = 0; t < n_ctx; ++t) {
    std::fill(k.begin(), k.end(), 0.02f * float(t % 13));
    for (float& x : v) x = normal(rng);
    kv.store(0, t, t, k.data(), v.data());
  }
  const std::vector<float> q(c.dim, 0.5f);
  const std::vector<int> table = {0, 1, 2, 3};
  std::vector<float> out(c.dim);
  cpu::attention_decode_paged_quant(4, out.data(), q.data(), kv.layer_view(0), table.data(), n_ctx,
                                    c.n_heads, nullptr);
  expect_close(out, reference_attention(kv, c, q.data(), table, n_ctx).data(), 2e-4f,
               "head_dim 512");
}

// Variant 4 is variant 3 for every format but int8 (and for int8 with sinks).
TEST_P(Ch07EveryFormat, Variant4IsVariant3OutsideItsIntegerLoops) {
  const ModelConfig c = one_layer_config();
  const KvDtype dtype = parse_kv_dtype(GetParam(), c.head_dim());
  QuantizedPagedKVCache kv(c, dtype, 12, 16, nullptr, {.sink_tokens = 4});
  const Tokens t = random_tokens(c, 70, 23);
  attend_tokens(kv, c, t, 0, 0, 70, 0);
  const int* table = kv.blocks().table(0)->blocks.data();
  std::vector<float> v3(c.dim), v4(c.dim);
  for (auto [variant, out] : {std::pair{3, &v3}, std::pair{4, &v4}}) {
    cpu::attention_decode_paged_quant(variant, out->data(), &t.q[69 * c.dim], kv.layer_view(0),
                                      table, 70, c.n_heads, nullptr, kv.sink_rows(0, table[0]));
  }
  EXPECT_EQ(v3, v4);
}

// v3's own int4 loops (nibbles widened in the dot products; group scales on
// the codes, KIVI's channel scales on q once per block) at the block and
// group sizes that move where a scale or a block begins inside a chunk.
TEST(Ch07QuantizedPagedCache, FastInt4LoopsAtEveryBlockAndGroupSize) {
  for (const char* format : {"int4-token", "int4"}) {
    for (int block_size : {16, 32}) {
      for (int group_size : {32, 64}) {
        SCOPED_TRACE(std::string(format) + ", blocks of " + std::to_string(block_size) +
                     ", groups of " + std::to_string(group_size));
        expect_fast_variant_like_the_reference(format, 64, block_size, group_size);
      }
    }
  }
}

// Keys stored before RoPE, with sinks and (int4) KIVI's fp32 window: every
// variant turns the dequantized keys like the reference, on 1 and 2 threads.
TEST_P(Ch07EveryFormat, KeysBeforeRopeAreTurnedWhenRead) {
  ModelConfig c = one_layer_config();
  c.seq_len = 1024;
  const KvDtype dtype = parse_kv_dtype(GetParam(), c.head_dim());
  const int n_ctx = 1000, sinks = 4;  // the last block is partial: KIVI's window is live
  QuantizedPagedKVCache kv(c, dtype, 64, 16, nullptr,
                           {.sink_tokens = sinks, .keys_before_rope = true});
  const Tokens t = random_tokens(c, n_ctx, 19);
  attend_tokens(kv, c, t, 0, 0, 37, 0);
  std::vector<float> last;
  for (int i = 37; i < n_ctx; ++i) last = attend_tokens(kv, c, t, 0, i, i + 1, i);
  const float* q = &t.q[std::size_t(n_ctx - 1) * c.dim];
  const std::vector<float> want = reference_attention(kv, c, q, 0, n_ctx, &t, sinks);
  expect_close(last, want.data(), 1e-5f, "cache");
  const cpu::QuantPagedLayer layer = kv.layer_view(0);
  ASSERT_TRUE(layer.keys_before_rope);
  for (int variant = 1; variant <= cpu::kPagedQuantDecodeVariants; ++variant) {
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      std::vector<float> out(c.dim);
      std::vector<float> scratch(
          cpu::attention_decode_paged_quant_scratch_floats(variant, n_ctx, c.n_heads, layer));
      cpu::attention_decode_paged_quant(
          variant, out.data(), q, layer, kv.blocks().table(0)->blocks.data(), n_ctx, c.n_heads,
          scratch.data(), kv.sink_rows(0, kv.blocks().table(0)->blocks[0]), &pool);
      expect_close(
          out, want.data(), 1e-5f,
          ("variant " + std::to_string(variant) + ", threads " + std::to_string(threads)).c_str());
    }
  }
}

TEST_P(Ch07EveryFormat, CopyOnWriteInTheFirstBlockCarriesTheSinks) {
  const ModelConfig c = one_layer_config();
  const KvDtype dtype = parse_kv_dtype(GetParam(), c.head_dim());
  const Tokens shared = random_tokens(c, 3, 15), b = random_tokens(c, 4, 16);
  QuantizedPagedKVCache forked(c, dtype, 12, 16, nullptr, {.sink_tokens = 4});
  attend_tokens(forked, c, shared, 0, 0, 3, 0);  // 3 of the 4 sinks, in a shared first block
  forked.blocks().fork(0, 1);
  std::vector<float> from_parent, from_child;
  for (int i = 0; i < 4; ++i) {
    // The parent writes first, so its first block is the copy (and its sink 3 lands there).
    from_parent = attend_tokens(forked, c, b, 0, i, i + 1, 3 + i);
    from_child = attend_tokens(forked, c, b, 1, i, i + 1, 3 + i);
  }
  QuantizedPagedKVCache alone(c, dtype, 12, 16, nullptr, {.sink_tokens = 4});
  attend_tokens(alone, c, shared, 0, 0, 3, 0);
  std::vector<float> from_alone;
  for (int i = 0; i < 4; ++i) from_alone = attend_tokens(alone, c, b, 0, i, i + 1, 3 + i);
  EXPECT_EQ(from_parent, from_alone);
  EXPECT_EQ(from_child, from_alone);
  forked.blocks().check_invariants();
  EXPECT_THROW(QuantizedPagedKVCache(c, dtype, 12, 16, nullptr, {.sink_tokens = 17}), Error)
      << "sinks > block";
}

TEST_P(Ch07EveryFormat, ReservesTheDtypeDescriptionsBytes) {
  const ModelConfig c = one_layer_config();
  const KvDtype dtype = parse_kv_dtype(GetParam(), c.head_dim());
  QuantizedPagedKVCache kv(c, dtype, 12, 16, nullptr);
  const Tokens t = random_tokens(c, 33, 9);
  attend_tokens(kv, c, t, 0, 0, 32, 0);  // exactly two full blocks
  const std::int64_t per_block = kv_bytes_per_block(dtype, kv.shape());
  EXPECT_EQ(kv.kv_bytes_reserved(), std::size_t(2 * per_block));
  attend_tokens(kv, c, t, 0, 32, 33, 32);  // a third block, one token in it
  const std::size_t window =
      dtype.key_scales == ScaleLayout::per_channel ? 16 * c.kv_dim() * sizeof(float) : 0;
  EXPECT_EQ(kv.kv_bytes_reserved(), std::size_t(3 * per_block) + window);
  kv.release(0);
  EXPECT_EQ(kv.kv_bytes_reserved(), 0u) << "releasing drops the fp32 window too";

  QuantizedPagedKVCache with_sinks(c, dtype, 12, 16, nullptr, {.sink_tokens = 4});
  attend_tokens(with_sinks, c, t, 0, 0, 32, 0);
  EXPECT_EQ(with_sinks.kv_bytes_reserved(),
            std::size_t(2 * per_block) + 2 * 4 * c.kv_dim() * sizeof(float));
  with_sinks.release(0);
  EXPECT_EQ(with_sinks.kv_bytes_reserved(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Formats, Ch07EveryFormat,
                         ::testing::Values("fp32", "fp16", "bf16", "int8", "fp8", "int4-token",
                                           "int4"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// Error of each format's attention against the unquantized cache, relative to
// the output's largest magnitude, on keys with an outlier channel every 16.
// Bounds are about 2-3x what this data gives (the comments).
TEST(Ch07QuantizedPagedCache, ErrorAgainstFp32IsBoundedAndOrdered) {
  const ModelConfig c = one_layer_config();
  const Tokens t = random_tokens(c, 200, 21);
  const auto run = [&](const char* name) {
    QuantizedPagedKVCache kv(c, parse_kv_dtype(name, c.head_dim()), 16, 16, nullptr);
    return attend_tokens(kv, c, t, 0, 0, 200, 0);
  };
  const std::vector<float> exact = run("fp32");
  float max_ref = 0;
  for (float x : exact) max_ref = std::max(max_ref, std::fabs(x));
  const auto relative_error = [&](const char* name) {
    const std::vector<float> got = run(name);
    float worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::fabs(got[i] - exact[i]));
    return worst / max_ref;
  };
  const float bf16 = relative_error("bf16"), int8 = relative_error("int8");
  const float fp8 = relative_error("fp8"), int4 = relative_error("int4");
  const float int4_per_token_keys = relative_error("int4-token");
  EXPECT_LT(relative_error("fp16"), 4e-3f);  // measured 1.1e-3
  EXPECT_LT(bf16, 2e-2f);                    // 6.4e-3
  EXPECT_LT(int8, 1e-1f);                    // 3.8e-2
  EXPECT_LT(fp8, 1.5e-1f);                   // 6.0e-2
  EXPECT_LT(int4, 5e-1f);                    // 0.21
  EXPECT_LT(int8, fp8) << "8-bit integers keep more bits than E4M3's 3-bit mantissa";
  EXPECT_LT(fp8, int4);
  // Keys with outlier channels: a per-token scale is set by the outlier and
  // flattens every other channel; per-channel scales (KIVI) do not (0.21 vs 0.40).
  EXPECT_LT(int4, int4_per_token_keys);
  EXPECT_GT(int8, 0.0f);
}

// Rotating q, k, v by one orthogonal H (and the output back) changes no
// attention output but rounding; on keys with outlier channels it helps
// per-token int4 scales, because it spreads each outlier over the whole head.
TEST(Ch07QuantizedPagedCache, HadamardRotationKeepsFp32AndHelpsPerTokenInt4) {
  const ModelConfig c = one_layer_config();
  const Tokens t = random_tokens(c, 120, 23);
  const auto run = [&](const char* name, bool hadamard) {
    QuantizedPagedKVCache kv(c, parse_kv_dtype(name, c.head_dim()), 16, 16, nullptr,
                             {.hadamard = hadamard});
    return attend_tokens(kv, c, t, 0, 0, 120, 0);
  };
  const std::vector<float> exact = run("fp32", false);
  expect_close(run("fp32", true), exact.data(), 1e-5f, "fp32 rotated");
  const auto error = [&](const std::vector<float>& got) {
    double sum = 0;
    for (std::size_t i = 0; i < got.size(); ++i) sum += (got[i] - exact[i]) * (got[i] - exact[i]);
    return sum;
  };
  EXPECT_LT(error(run("int4-token", true)), error(run("int4-token", false)));

  ModelConfig odd = c;
  odd.dim = 8 * 12;  // head_dim 12
  EXPECT_THROW(
      QuantizedPagedKVCache(odd, parse_kv_dtype("int8", 12), 4, 16, nullptr, {.hadamard = true}),
      Error);
}

// In fp32 the keys come back as they went in, up to the rounding of turning
// them back and forth; the Hadamard rotation does not commute with RoPE's.
TEST(Ch07QuantizedPagedCache, KeysBeforeRopeChangeNothingInFp32ButRounding) {
  const ModelConfig c = one_layer_config();
  const Tokens t = random_tokens(c, 200, 29);
  const KvDtype fp32 = parse_kv_dtype("fp32", c.head_dim());
  const auto run = [&](bool keys_before_rope) {
    QuantizedPagedKVCache kv(c, fp32, 16, 16, nullptr,
                             {.sink_tokens = 2, .keys_before_rope = keys_before_rope});
    return attend_tokens(kv, c, t, 0, 0, 200, 0);
  };
  const std::vector<float> post = run(false), pre = run(true);
  expect_close(pre, post.data(), 1e-5f, "fp32 keys before RoPE");
  EXPECT_NE(pre, post) << "the keys went through two extra roundings";
  EXPECT_THROW(QuantizedPagedKVCache(c, parse_kv_dtype("int8", c.head_dim()), 4, 16, nullptr,
                                     {.hadamard = true, .keys_before_rope = true}),
               Error);
}

TEST(Ch07QuantizedPagedCache, Fp32GivesChapter04sTokensOnTheRealModel) {
  const auto real = testing::load_real_model();
  ThreadPool pool(2);
  CpuEngine engine(real.model, &pool);
  const GenerationOptions options{"Lily and Tom went to the beach", 200, {1.0f, 0.9f, 42}};
  auto paged = ch04::make_strategy(real.model.config, engine.context(), 16);
  auto quant = make_strategy(real.model.config, engine.context(),
                             parse_kv_dtype("fp32", real.model.config.head_dim()), 16);
  EXPECT_EQ(generate(engine, real.tokenizer, *quant, options).tokens,
            generate(engine, real.tokenizer, *paged, options).tokens);
}

// What the GPU pool cannot hold is refused before the device is touched (here
// a null CUDA context), so every build, with a GPU or without, says the same.
TEST(Ch07QuantizedPagedCache, WhatTheGpuPoolCannotHoldIsRefusedInOneLine) {
  const ModelConfig c = one_layer_config();
  const DeviceContext cuda{Device::kCuda, nullptr, nullptr};
  const auto refusal = [&](const char* name, const QuantOptions& options) -> std::string {
    try {
      make_strategy(c, cuda, parse_kv_dtype(name, c.head_dim()), 16, 1, options);
    } catch (const Error& e) {
      return e.what();
    }
    return "(not refused)";
  };
  for (const char* name : {"int4-token", "int4"}) {
    const std::string why = refusal(name, {});
    EXPECT_NE(why.find("CPU only"), std::string::npos) << name << ": " << why;
    EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  }
  QuantOptions sinks;
  sinks.sink_tokens = 4;
  QuantOptions hadamard;
  hadamard.hadamard = true;
  EXPECT_NE(refusal("int8", sinks).find("--kv-sinks"), std::string::npos);
  EXPECT_NE(refusal("fp8", hadamard).find("--kv-hadamard"), std::string::npos);
  EXPECT_NE(refusal("int8", {.keys_before_rope = true}).find("--kv-keys-before-rope"),
            std::string::npos);
#ifdef KVC_HAVE_CUDA
  EXPECT_NE(refusal("int8", {}).find("no CUDA context"), std::string::npos);
#else
  EXPECT_NE(refusal("int8", {}).find("no CUDA support"), std::string::npos);
#endif
}

}  // namespace
}  // namespace kvc::ch07
