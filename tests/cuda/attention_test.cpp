// Every prefill and decode attention variant against the CPU reference.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/ops.hpp"
#include "kernels/cuda/attention.hpp"
#include "tests/cuda/cuda_test_helpers.hpp"

namespace kvc::cuda {
namespace {

using test::random_floats;

// ---- prefill ------------------------------------------------------------------------

struct PrefillShape {
  int n, n_heads, n_kv_heads, head_dim;
};

TEST(CudaAttention, PrefillVariantsMatchCpu) {
  KVC_SKIP_WITHOUT_GPU();
  const PrefillShape shapes[] = {{1, 4, 4, 64},  {37, 8, 2, 128}, {100, 8, 4, 8}, {257, 4, 1, 64},
                                 {45, 6, 3, 48}, {33, 2, 2, 256}, {70, 2, 1, 20}};
  for (const PrefillShape& s : shapes) {
    const std::vector<float> q = random_floats(std::size_t(s.n) * s.n_heads * s.head_dim, 30);
    const std::vector<float> k = random_floats(std::size_t(s.n) * s.n_kv_heads * s.head_dim, 31);
    const std::vector<float> v = random_floats(std::size_t(s.n) * s.n_kv_heads * s.head_dim, 32);
    std::vector<float> expected(q.size());
    cpu::attention_prefill_causal(expected.data(), q.data(), k.data(), v.data(), s.n, s.n_heads,
                                  s.n_kv_heads, s.head_dim, nullptr);
    const DeviceBuffer<float> d_q = to_device(q);
    const DeviceBuffer<float> d_k = to_device(k);
    const DeviceBuffer<float> d_v = to_device(v);
    for (int variant = kBestVariant; variant <= kPrefillVariants; ++variant) {
      SCOPED_TRACE(testing::Message() << "v" << variant << " n=" << s.n << " heads=" << s.n_heads
                                      << "/" << s.n_kv_heads << " head_dim=" << s.head_dim);
      DeviceBuffer<float> d_out(q.size());
      attention_prefill_causal(variant, d_out.data(), d_q.data(), d_k.data(), d_v.data(), s.n,
                               s.n_heads, s.n_kv_heads, s.head_dim, nullptr);
      test::expect_close(to_host(d_out), expected, 1e-5, 1e-4);
    }
  }
}

// ---- decode -------------------------------------------------------------------------

// A batch of sequences with their own lengths in one [batch][max_ctx][n_kv_heads][head_dim] cache.
struct DecodeCase {
  DecodeShape shape;
  std::vector<int> lengths;
};

std::string describe(const DecodeCase& c) {
  std::ostringstream text;
  text << "batch=" << c.shape.batch << " max_ctx=" << c.shape.max_ctx
       << " heads=" << c.shape.n_heads << "/" << c.shape.n_kv_heads
       << " head_dim=" << c.shape.head_dim << " " << format_name(c.shape.cache_dtype)
       << " lengths=";
  for (int length : c.lengths) text << length << ",";
  return text.str();
}

// Runs `variant` on the case and compares with cpu::attention_decode per sequence, fed
// the cache values as the GPU sees them (rounded to the cache dtype).
void check_decode(int variant, const DecodeCase& c) {
  const DecodeShape& s = c.shape;
  SCOPED_TRACE(testing::Message() << "v" << variant << " " << describe(c));
  const std::size_t q_size = std::size_t(s.batch) * s.n_heads * s.head_dim;
  const std::size_t seq_cache = std::size_t(s.max_ctx) * s.n_kv_heads * s.head_dim;
  const std::vector<float> q = random_floats(q_size, 40, -2.0f, 2.0f);
  const std::vector<float> k = random_floats(s.batch * seq_cache, 41, -2.0f, 2.0f);
  const std::vector<float> v = random_floats(s.batch * seq_cache, 42);

  const std::vector<float> k_seen = test::rounded(k, s.cache_dtype);
  const std::vector<float> v_seen = test::rounded(v, s.cache_dtype);
  std::vector<float> expected(q_size);
  std::vector<float> scores(s.max_ctx);
  for (int b = 0; b < s.batch; ++b) {
    const std::size_t q_at = std::size_t(b) * s.n_heads * s.head_dim;
    cpu::attention_decode(expected.data() + q_at, q.data() + q_at, k_seen.data() + b * seq_cache,
                          v_seen.data() + b * seq_cache, c.lengths[b], s.n_heads, s.n_kv_heads,
                          s.head_dim, scores.data());
  }

  const DeviceBuffer<float> d_q = to_device(q);
  const DeviceBuffer<std::byte> d_k = upload_as(k.data(), k.size(), s.cache_dtype);
  const DeviceBuffer<std::byte> d_v = upload_as(v.data(), v.size(), s.cache_dtype);
  const DeviceBuffer<int> d_lengths = to_device(c.lengths);
  DeviceBuffer<std::byte> workspace(attention_decode_workspace_bytes(variant, s));
  DeviceBuffer<float> d_out(q_size);
  attention_decode(variant, d_out.data(), d_q.data(), d_k.data(), d_v.data(), d_lengths.data(), s,
                   workspace.data(), nullptr);
  test::expect_close(to_host(d_out), expected, 1e-5, 1e-4);
}

std::vector<DecodeCase> decode_cases() {
  std::vector<DecodeCase> cases;
  for (NumberFormat dtype : {NumberFormat::fp32, NumberFormat::fp16, NumberFormat::bf16}) {
    // MHA, head_dim 128, one sequence.
    cases.push_back({{1, 300, 4, 4, 128, dtype}, {300}});
    // GQA 4:1, head_dim 128, lengths around tile (256) and slice boundaries.
    cases.push_back({{3, 3000, 8, 2, 128, dtype}, {1, 257, 3000}});
    // GQA 2:1 with head_dim 64, the stories260K head shape (8/4 heads of 8), and MQA 6:1.
    cases.push_back({{2, 1100, 4, 2, 64, dtype}, {1025, 511}});
    cases.push_back({{2, 70, 8, 4, 8, dtype}, {70, 33}});
    cases.push_back({{2, 500, 6, 1, 64, dtype}, {255, 499}});
    // Group of 12: more query heads than one block serves.
    cases.push_back({{1, 200, 24, 2, 32, dtype}, {199}});
  }
  // A long single sequence: many slices to merge.
  cases.push_back({{1, 9000, 8, 2, 128, NumberFormat::fp16}, {8999}});
  return cases;
}

TEST(CudaAttention, DecodeVariantsMatchCpu) {
  KVC_SKIP_WITHOUT_GPU();
  for (const DecodeCase& c : decode_cases())
    for (int variant = kBestVariant; variant <= kDecodeVariants; ++variant)
      check_decode(variant, c);
}

TEST(CudaAttention, DecodeFallsBackWhereVectorLoadsDoNotFit) {
  KVC_SKIP_WITHOUT_GPU();
  // 12 fp16 values are 24 bytes: no 16-byte vectors, so only v1 (and best = v1) apply.
  const DecodeCase c{{2, 90, 4, 2, 12, NumberFormat::fp16}, {90, 7}};
  std::string why;
  EXPECT_FALSE(attention_decode_supports(2, c.shape, &why));
  EXPECT_NE(why.find("whole 16-byte loads"), std::string::npos) << why;
  EXPECT_EQ(attention_decode_best_variant(c.shape), 1);
  check_decode(kBestVariant, c);
  EXPECT_THROW(
      attention_decode(2, nullptr, nullptr, nullptr, nullptr, nullptr, c.shape, nullptr, nullptr),
      kvc::Error);
}

// A contiguous cache holds plain values: no variant takes codes that need scales.
TEST(CudaAttention, DecodeRefusesScaledFormats) {
  for (NumberFormat format : {NumberFormat::int8, NumberFormat::fp8_e4m3, NumberFormat::int4}) {
    const DecodeShape shape{1, 64, 4, 2, 64, format};
    std::string why;
    for (int variant = kBestVariant; variant <= kDecodeVariants; ++variant)
      EXPECT_FALSE(attention_decode_supports(variant, shape, &why)) << format_name(format);
    EXPECT_NE(why.find(format_name(format)), std::string::npos) << why;
    EXPECT_THROW(attention_decode_workspace_bytes(1, shape), kvc::Error);
    EXPECT_THROW(
        attention_decode(1, nullptr, nullptr, nullptr, nullptr, nullptr, shape, nullptr, nullptr),
        kvc::Error);
  }
}

TEST(CudaAttention, DecodeBestPicksSplitKForFewLongSequences) {
  KVC_SKIP_WITHOUT_GPU();
  EXPECT_EQ(attention_decode_best_variant({1, 131072, 32, 8, 128, NumberFormat::fp16}), 3);
  EXPECT_EQ(attention_decode_best_variant({64, 256, 32, 32, 128, NumberFormat::fp16}), 2);
}

}  // namespace
}  // namespace kvc::cuda
