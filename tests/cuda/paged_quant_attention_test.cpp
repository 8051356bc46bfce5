// Chapter 07 on the GPU: quantized paged decode attention (int8, fp8 via
// __nv_fp8_e4m3) against the CPU kernel on the same pool, written by the CPU
// cache. Skips without a GPU.
#include <gtest/gtest.h>

#include <random>
#include <span>
#include <vector>

#include "chapters/07_quantization/quantized_paged_cache.hpp"
#include "kernels/cuda/attention_paged_quant.hpp"
#include "tests/ch07/one_layer_config.hpp"
#include "tests/cuda/cuda_test_helpers.hpp"

namespace kvc {
namespace {

using cuda::DeviceBuffer;

using testing::one_layer_config;

class Ch07PagedQuantCuda : public ::testing::TestWithParam<const char*> {};

TEST_P(Ch07PagedQuantCuda, MatchesTheCpuKernelOnTheSamePool) {
  KVC_SKIP_WITHOUT_GPU();
  const ModelConfig c = one_layer_config();
  const KvDtype dtype = parse_kv_dtype(GetParam(), c.head_dim());
  constexpr int kBlocks = 12, kBlockSize = 16, kTokens = 150;
  ch07::QuantizedPagedKVCache kv(c, dtype, kBlocks, kBlockSize, nullptr);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(std::size_t(kTokens) * c.dim), k(std::size_t(kTokens) * c.kv_dim()),
      v(k.size());
  for (auto* x : {&q, &k, &v}) {
    for (float& value : *x) value = normal(rng);
  }
  Batch batch;
  for (int p = 0; p < kTokens; ++p) batch.add(0, 0, p, true);
  std::vector<float> cpu_out(q.size());
  kv.reserve(batch);  // places the tokens: attend() writes through the slots it chose
  kv.attend(0, batch, q.data(), k.data(), v.data(), cpu_out.data());

  const cpu::QuantPagedLayer layer = kv.layer_view(0);
  const std::size_t codes = std::size_t(kBlocks) * kBlockSize * c.n_kv_heads * c.head_dim();
  const std::size_t scales = std::size_t(kBlocks) * kBlockSize * c.n_kv_heads;
  const auto upload_bytes = [&](const unsigned char* p) {
    return cuda::to_device(std::span<const unsigned char>(p, codes));
  };
  const auto upload_floats = [&](const float* p) {
    return cuda::to_device(std::span<const float>(p, scales));
  };
  const DeviceBuffer<unsigned char> k_codes = upload_bytes(layer.k.codes);
  const DeviceBuffer<unsigned char> v_codes = upload_bytes(layer.v.codes);
  const DeviceBuffer<float> k_scales = upload_floats(layer.k.scales);
  const DeviceBuffer<float> v_scales = upload_floats(layer.v.scales);
  std::vector<int> table = kv.blocks().table(0)->blocks;
  table.resize(kBlocks, 0);
  std::vector<int> lengths(kTokens);
  for (int p = 0; p < kTokens; ++p) lengths[p] = p + 1;
  const DeviceBuffer<int> d_table = cuda::to_device(table);
  const DeviceBuffer<int> d_rows = cuda::to_device(std::vector<int>(kTokens, 0));
  const DeviceBuffer<int> d_lengths = cuda::to_device(lengths);
  const DeviceBuffer<float> d_q = cuda::to_device(q);
  DeviceBuffer<float> d_out(q.size());

  cuda::PagedDecodeShape shape;
  shape.n_tokens = kTokens;
  shape.block_size = kBlockSize;
  shape.max_blocks_per_seq = kBlocks;
  shape.n_heads = c.n_heads;
  shape.n_kv_heads = c.n_kv_heads;
  shape.head_dim = c.head_dim();
  DeviceBuffer<std::byte> workspace(cuda::attention_decode_paged_quant_workspace_bytes(shape));
  cuda::attention_decode_paged_quant(dtype, d_out.data(), d_q.data(), k_codes.data(),
                                     k_scales.data(), v_codes.data(), v_scales.data(),
                                     d_table.data(), d_rows.data(), d_lengths.data(), shape,
                                     workspace.data(), nullptr);
  test::synchronize();
  test::expect_close(cuda::to_host(d_out), cpu_out, 1e-4, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Formats, Ch07PagedQuantCuda, ::testing::Values("int8", "fp8"));

TEST(Ch07PagedQuantCuda, RefusesFormatsItCannotRun) {
  std::string why;
  EXPECT_FALSE(cuda::attention_decode_paged_quant_supports(parse_kv_dtype("int4", 64), &why));
  EXPECT_NE(why.find("int4"), std::string::npos) << why;
  EXPECT_TRUE(cuda::attention_decode_paged_quant_supports(parse_kv_dtype("fp8", 64), nullptr));
}

}  // namespace
}  // namespace kvc
