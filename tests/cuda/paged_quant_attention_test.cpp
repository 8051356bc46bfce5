// Chapter 07 on the GPU: every variant of quantized paged decode attention
// (int8, fp8 via __nv_fp8_e4m3) against the CPU kernel on the same pool,
// written by the CPU cache: every token attending, and a batch where only the
// last few tokens attend (attending_tokens < n_tokens, the workspace sized for
// those). Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>

#include <random>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "chapters/07_quantization/quantized_paged_cache.hpp"
#include "kernels/cpu/attention_paged_quant.hpp"
#include "kernels/cuda/attention_paged_quant.hpp"
#include "tests/ch07/fast_kernel_tolerance.hpp"
#include "tests/ch07/one_layer_config.hpp"
#include "tests/cuda/cuda_test_helpers.hpp"

namespace kvc {
namespace {

using cuda::DeviceBuffer;

// 40 blocks of 16: contexts up to 640 positions, so v3 cuts a few attending tokens'
// contexts into several slices (its slices are 256 positions or more).
constexpr int kBlocks = 40, kBlockSize = 16, kTokens = 600;

ModelConfig long_context_config() {
  ModelConfig c = testing::one_layer_config();
  c.seq_len = kBlocks * kBlockSize;
  return c;
}

// One sequence of kTokens random tokens, written by the CPU cache, uploaded as it stores them.
struct Pool {
  ModelConfig c = long_context_config();
  KvDtype dtype;
  ch07::QuantizedPagedKVCache kv;
  std::vector<float> q;
  std::vector<float> cache_out;  // what the CPU cache's attend() gave, token by token
  DeviceBuffer<unsigned char> k_codes, v_codes;
  DeviceBuffer<float> k_scales, v_scales;
  DeviceBuffer<int> table;

  explicit Pool(const char* format)
      : dtype(parse_kv_dtype(format, c.head_dim())),
        kv(c, dtype, kBlocks, kBlockSize, nullptr),
        q(std::size_t(kTokens) * c.dim),
        cache_out(q.size()) {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> k(std::size_t(kTokens) * c.kv_dim()), v(k.size());
    for (auto* x : {&q, &k, &v}) {
      for (float& value : *x) value = normal(rng);
    }
    Batch batch;
    for (int p = 0; p < kTokens; ++p) batch.add(0, 0, p, true);
    kv.reserve(batch);
    kv.attend(0, batch, q.data(), k.data(), v.data(), cache_out.data());

    const cpu::QuantPagedLayer layer = kv.layer_view(0);
    const std::size_t rows = std::size_t(kBlocks) * kBlockSize * c.n_kv_heads;
    const std::size_t codes = rows * c.head_dim();
    k_codes = cuda::to_device(std::span<const unsigned char>(layer.k.codes, codes));
    v_codes = cuda::to_device(std::span<const unsigned char>(layer.v.codes, codes));
    k_scales = cuda::to_device(std::span<const float>(layer.k.scales, rows));
    v_scales = cuda::to_device(std::span<const float>(layer.v.scales, rows));
    std::vector<int> blocks = kv.blocks().table(0)->blocks;
    blocks.resize(kBlocks, 0);
    table = cuda::to_device(blocks);
  }

  cuda::PagedDecodeShape shape(int attending_tokens) const {
    return {.n_tokens = kTokens,
            .block_size = kBlockSize,
            .max_blocks_per_seq = kBlocks,
            .n_heads = c.n_heads,
            .n_kv_heads = c.n_kv_heads,
            .head_dim = c.head_dim(),
            .attending_tokens = attending_tokens};
  }

  // The GPU's output for context lengths `lengths` ([kTokens], 0 = skipped), starting
  // from `initial` in every row.
  std::vector<float> run(int variant, const std::vector<int>& lengths, int attending_tokens,
                         float initial) const {
    const cuda::PagedDecodeShape s = shape(attending_tokens);
    const DeviceBuffer<int> d_rows = cuda::to_device(std::vector<int>(kTokens, 0));
    const DeviceBuffer<int> d_lengths = cuda::to_device(lengths);
    const DeviceBuffer<float> d_q = cuda::to_device(q);
    DeviceBuffer<float> d_out = cuda::to_device(std::vector<float>(q.size(), initial));
    DeviceBuffer<std::byte> workspace(
        cuda::attention_decode_paged_quant_workspace_bytes(variant, s));
    cuda::attention_decode_paged_quant(variant, dtype, d_out.data(), d_q.data(), k_codes.data(),
                                       k_scales.data(), v_codes.data(), v_scales.data(),
                                       table.data(), d_rows.data(), d_lengths.data(), s,
                                       workspace.data(), nullptr);
    test::synchronize();
    return cuda::to_host(d_out);
  }
};

class Ch07PagedQuantCuda : public ::testing::TestWithParam<std::tuple<const char*, int>> {};

TEST_P(Ch07PagedQuantCuda, MatchesTheCpuCacheOnTheSamePool) {
  KVC_SKIP_WITHOUT_GPU();
  const auto [format, variant] = GetParam();
  const Pool pool(format);
  std::string why;
  ASSERT_TRUE(
      cuda::attention_decode_paged_quant_supports(variant, pool.dtype, pool.shape(-1), &why))
      << why;
  std::vector<int> lengths(kTokens);
  for (int p = 0; p < kTokens; ++p) lengths[p] = p + 1;
  // The CPU cache's int8 kernel rounds q and the softmax weights to int16.
  test::expect_close(pool.run(variant, lengths, -1, 0.0f), pool.cache_out,
                     std::max(1e-4f, testing::fast_kernel_tolerance(pool.dtype)), 1e-3);
}

// A long chunk whose tokens are skipped (context length 0) beside a few attending tokens
// with long contexts: the workspace holds rows for those few only, skipped rows keep
// their contents, and the attending rows match the CPU kernel run on its own.
TEST_P(Ch07PagedQuantCuda, OnlyTheAttendingTokensUseTheWorkspace) {
  KVC_SKIP_WITHOUT_GPU();
  const auto [format, variant] = GetParam();
  const Pool pool(format);
  constexpr int kAttending = 5;
  constexpr float kUntouched = 7.0f;
  std::vector<int> lengths(kTokens, 0);
  std::vector<float> expected(pool.q.size(), kUntouched);
  const cpu::QuantPagedLayer layer = pool.kv.layer_view(0);
  const std::vector<int>& blocks = pool.kv.blocks().table(0)->blocks;
  const std::size_t dim = pool.c.dim;
  for (int i = kTokens - kAttending; i < kTokens; ++i) {
    lengths[i] = i + 1 - 3 * (kTokens - 1 - i);  // contexts 584 .. 600, most ending before i
    std::vector<float> scratch(
        cpu::attention_decode_paged_quant_scratch_floats(1, lengths[i], pool.c.n_heads, layer));
    cpu::attention_decode_paged_quant(1, &expected[i * dim], &pool.q[i * dim], layer, blocks.data(),
                                      lengths[i], pool.c.n_heads, scratch.data());
  }
  // The workspace of the variant that runs holds 5 tokens' rows, not 600 (v2 has none).
  const cuda::PagedDecodeShape s = pool.shape(kAttending);
  const int runs =
      variant == cuda::kBestVariant ? cuda::attention_decode_paged_quant_best_variant(s) : variant;
  EXPECT_LT(cuda::attention_decode_paged_quant_workspace_bytes(runs, s),
            cuda::attention_decode_paged_quant_workspace_bytes(runs, pool.shape(-1)) / 10 + 1);
  test::expect_close(pool.run(variant, lengths, kAttending, kUntouched), expected, 1e-4, 1e-3);
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<const char*, int>>& info) {
  return std::string(std::get<0>(info.param)) + "_v" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(FormatsAndVariants, Ch07PagedQuantCuda,
                         ::testing::Combine(::testing::Values("int8", "fp8"),
                                            ::testing::Values(cuda::kBestVariant, 1, 2, 3)),
                         case_name);

TEST(Ch07PagedQuantCuda, RefusesFormatsAndShapesItCannotRun) {
  std::string why;
  EXPECT_FALSE(cuda::attention_decode_paged_quant_supports(parse_kv_dtype("int4", 64), &why));
  EXPECT_NE(why.find("int4"), std::string::npos) << why;
  EXPECT_FALSE(cuda::attention_decode_paged_quant_supports(parse_kv_dtype("fp16", 64), &why));
  EXPECT_TRUE(cuda::attention_decode_paged_quant_supports(parse_kv_dtype("fp8", 64), nullptr));

  // 8 codes a load: stories260K's head_dim of 8 takes every variant; 12 codes are no
  // whole load, so only v1 runs.
  cuda::PagedDecodeShape small{.n_tokens = 2,
                               .block_size = 16,
                               .max_blocks_per_seq = 4,
                               .n_heads = 8,
                               .n_kv_heads = 4,
                               .head_dim = 8};
  const KvDtype int8 = parse_kv_dtype("int8", 8);
  for (int variant = 1; variant <= cuda::kPagedQuantDecodeVariants; ++variant)
    EXPECT_TRUE(cuda::attention_decode_paged_quant_supports(variant, int8, small, nullptr));
  EXPECT_FALSE(cuda::attention_decode_paged_quant_supports(4, int8, small, &why));
  small.head_dim = 12;
  EXPECT_TRUE(cuda::attention_decode_paged_quant_supports(1, int8, small, nullptr));
  EXPECT_FALSE(cuda::attention_decode_paged_quant_supports(2, int8, small, &why));
  EXPECT_NE(why.find("head_dim * 8 bits to be whole 8-byte loads"), std::string::npos) << why;
  EXPECT_EQ(cuda::attention_decode_paged_quant_best_variant(small), 1);
  EXPECT_THROW(cuda::attention_decode_paged_quant(2, int8, nullptr, nullptr, nullptr, nullptr,
                                                  nullptr, nullptr, nullptr, nullptr, nullptr,
                                                  small, nullptr, nullptr),
               kvc::Error);
  // The float kernel refuses pages that need scales, in one line.
  small.cache_dtype = NumberFormat::int8;
  EXPECT_THROW(cuda::attention_decode_paged(1, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                            nullptr, small, nullptr, nullptr),
               kvc::Error);
  // Nothing to attend: no workspace, no launch.
  small.n_tokens = 0;
  EXPECT_EQ(cuda::attention_decode_paged_quant_workspace_bytes(small), 0u);
}

}  // namespace
}  // namespace kvc
