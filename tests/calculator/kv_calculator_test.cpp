// The KV calculator against values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "chapters/02_contiguous_kv_cache/kv_calculator/fragmentation.hpp"
#include "chapters/02_contiguous_kv_cache/kv_calculator/kv_capacity.hpp"
#include "chapters/02_contiguous_kv_cache/kv_calculator/kv_presets.hpp"
#include "chapters/02_contiguous_kv_cache/kv_calculator/request_lengths.hpp"
#include "common/check.hpp"
#include "common/checked_math.hpp"
#include "tests/support/test_support.hpp"

namespace kvc {
namespace {

constexpr std::int64_t kGiB = std::int64_t{1} << 30;

// A format for the presets' heads (all 128 channels).
KvDtype dtype(const char* name) {
  return parse_kv_dtype(name, 128);
}

// ---- bytes per token ----------------------------------------------------------

TEST(KvBytes, Llama2_70bFp16) {
  // 2 x 80 layers x 8 KV heads x 128 x 2 bytes = 327,680; 32,768 tokens = 10 GiB.
  const ArchitectureSpec& model = find_architecture("llama-2-70b");
  EXPECT_EQ(kv_bytes_per_token(model, dtype("fp16")), 327'680);
  EXPECT_EQ(kv_bytes_for_tokens(model, dtype("fp16"), 32'768), 10 * kGiB);
}

TEST(KvBytes, Llama3_8bFp16At8kTokens) {
  // 2 x 32 x 8 x 128 x 2 = 131,072 bytes/token; x 8,192 = 2^30.
  EXPECT_EQ(kv_bytes_for_tokens(find_architecture("llama-3-8b"), dtype("fp16"), 8192),
            1'073'741'824);
}

TEST(KvBytes, Llama2_7bInEveryDtype) {
  // 2 x 32 x 32 x 128 = 262,144 elements per token.
  const ArchitectureSpec& model = find_architecture("llama-2-7b");
  EXPECT_EQ(kv_bytes_per_token(model, dtype("fp32")), 1'048'576);
  EXPECT_EQ(kv_bytes_per_token(model, dtype("fp16")), 524'288);
  EXPECT_EQ(kv_bytes_per_token(model, dtype("bf16")), 524'288);
  // The 8- and 4-bit formats also store fp32 scales (common/kv_dtype.hpp):
  // int8, fp8: one per (token, layer, KV head, K or V) = 2 x 32 x 32 x 4 = 8,192 bytes.
  EXPECT_EQ(kv_bytes_per_token(model, dtype("fp8")), 262'144 + 8'192);
  EXPECT_EQ(kv_bytes_per_token(model, dtype("int8")), 262'144 + 8'192);
  // int4-token: one per group of 32 channels, K and V: 2 x 32 x 32 x 4 groups x 4 = 32,768.
  EXPECT_EQ(kv_bytes_per_token(model, dtype("int4-token")), 131'072 + 32'768);
  // int4 (KIVI): V as int4-token (16,384); K one scale per channel per block of
  // 16 tokens: 32 x 32 x 128 x 4 / 16 = 32,768; blocks of 64 quarter that.
  EXPECT_EQ(kv_bytes_per_token(model, dtype("int4")), 131'072 + 16'384 + 32'768);
  EXPECT_EQ(kv_bytes_per_token(model, dtype("int4"), 64), 131'072 + 16'384 + 8'192);
  EXPECT_EQ(kv_bytes_for_tokens(model, dtype("int4"), 3), 3 * (131'072 + 16'384 + 32'768));
}

TEST(KvBytes, GqaDividesTheCacheByTheGroupSize) {
  // Mistral-7B has Llama-2-7B's layers and head_dim but 8 KV heads for 32 query heads.
  EXPECT_EQ(kv_bytes_per_token(find_architecture("llama-2-7b"), dtype("fp16")),
            4 * kv_bytes_per_token(find_architecture("mistral-7b"), dtype("fp16")));
}

// NEW (ch03): the same model as MHA, GQA and MQA.
TEST(KvHeads, MhaGqaMqaOfLlama3_8b) {
  const ArchitectureSpec& gqa = find_architecture("llama-3-8b");  // 32 query heads, 8 KV heads
  const KvDtype fp16 = dtype("fp16");
  EXPECT_EQ(attention_variants(gqa), (std::vector<int>{32, 8, 1}));
  const ArchitectureSpec mha = with_kv_heads(gqa, 32);
  const ArchitectureSpec mqa = with_kv_heads(gqa, 1);
  EXPECT_EQ(kv_bytes_per_token(mha, fp16), 524'288);  // 2 x 32 layers x 32 heads x 128 x 2 bytes
  EXPECT_EQ(kv_bytes_per_token(gqa, fp16), 131'072);
  EXPECT_EQ(kv_bytes_per_token(mqa, fp16), 16'384);  // 2 x 32 x 1 x 128 x 2
  // wk and wv grow from 8 to 32 heads: 2 x 32 layers x (24 x 128) x 4096 more parameters.
  EXPECT_EQ(mha.n_parameters - gqa.n_parameters, 2LL * 32 * 24 * 128 * 4096);
  EXPECT_EQ(with_kv_heads(gqa, 8).n_parameters, gqa.n_parameters);
  EXPECT_THROW(with_kv_heads(gqa, 5), Error);
  EXPECT_THROW(with_kv_heads(gqa, 0), Error);
  EXPECT_EQ(attention_variants(find_architecture("llama-2-7b")), (std::vector<int>{32, 1}));
}

TEST(Presets, PublishedShapes) {
  const ArchitectureSpec& llama2_13b = find_architecture("llama-2-13b");
  EXPECT_EQ(llama2_13b.n_layers, 40);
  EXPECT_EQ(llama2_13b.n_heads, 40);
  EXPECT_EQ(llama2_13b.n_kv_heads, 40);
  const ArchitectureSpec& llama3_70b = find_architecture("llama-3-70b");
  EXPECT_EQ(llama3_70b.n_layers, 80);
  EXPECT_EQ(llama3_70b.n_heads, 64);
  EXPECT_EQ(llama3_70b.n_kv_heads, 8);
  EXPECT_EQ(find_architecture("mixtral-8x7b").n_parameters, 46'700'000'000);
  for (const ArchitectureSpec& model : architecture_presets()) {
    EXPECT_EQ(model.n_heads % model.n_kv_heads, 0) << model.name;
    EXPECT_EQ(model.head_dim, 128) << model.name;
  }
  EXPECT_DOUBLE_EQ(find_gpu("A100-40G").memory_gib, 40);
  EXPECT_DOUBLE_EQ(find_gpu("RTX4090-24G").memory_gib, 24);
}

TEST(Presets, LookupIgnoresCaseAndRejectsUnknownNames) {
  EXPECT_EQ(&find_architecture("Llama-3-8B"), &find_architecture("llama-3-8b"));
  EXPECT_EQ(&find_gpu("h100-80g"), &find_gpu("H100-80G"));
  EXPECT_THROW(find_architecture("llama-4"), Error);
  EXPECT_THROW(kv_dtype_for(find_architecture("llama-2-7b"), "fp64"), Error);
  EXPECT_THROW(find_gpu("B200"), Error);
  try {
    kv_dtype_for(find_architecture("llama-2-7b"), "fp64");
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("int4"), std::string::npos) << error.what();
  }
}

// ---- capacity -----------------------------------------------------------------

CapacityQuery llama2_7b_on(double gib, int context) {
  return CapacityQuery{.model = find_architecture("llama-2-7b"),
                       .kv_dtype = dtype("fp16"),
                       .weight_dtype = dtype("fp16"),
                       .gpu_memory_gib = gib,
                       .context = context,
                       .reserve_fraction = 0};
}

TEST(Capacity, Llama2_7bOn24GiB) {
  // 24 GiB = 25,769,803,776; weights 7e9 x 2 = 14e9; budget 11,769,803,776.
  // / 524,288 per token = 22,449 tokens; / 2 GiB per 4,096-token request = 5 requests.
  const CapacityPlan plan = plan_capacity(llama2_7b_on(24, 4096));
  EXPECT_EQ(plan.gpu_bytes, 25'769'803'776);
  EXPECT_EQ(plan.weight_bytes, 14'000'000'000);
  EXPECT_EQ(plan.kv_budget_bytes, 11'769'803'776);
  EXPECT_EQ(plan.kv_bytes_per_request, 2 * kGiB);
  EXPECT_EQ(plan.max_cached_tokens, 22'449);
  EXPECT_EQ(plan.max_requests, 5);
}

TEST(Capacity, ReserveComesOffTheTop) {
  // 10% of 24 GiB = 2,576,980,377 bytes; budget 9,192,823,399 -> 4 requests of 2 GiB.
  CapacityQuery query = llama2_7b_on(24, 4096);
  query.reserve_fraction = 0.1;
  const CapacityPlan plan = plan_capacity(query);
  EXPECT_EQ(plan.reserve_bytes, 2'576'980'377);
  EXPECT_EQ(plan.kv_budget_bytes, 9'192'823'399);
  EXPECT_EQ(plan.max_requests, 4);
}

TEST(Capacity, WeightsThatDoNotFitLeaveNothingForTheCache) {
  // Llama-2-70B in fp16 is 140 GB of weights: more than an 80 GiB GPU.
  CapacityQuery query = llama2_7b_on(80, 4096);
  query.model = find_architecture("llama-2-70b");
  const CapacityPlan plan = plan_capacity(query);
  EXPECT_EQ(plan.kv_budget_bytes, 0);
  EXPECT_EQ(plan.max_cached_tokens, 0);
  EXPECT_EQ(plan.max_requests, 0);
}

TEST(Capacity, BadInputIsAnError) {
  EXPECT_THROW(plan_capacity(llama2_7b_on(0, 4096)), Error);
  EXPECT_THROW(plan_capacity(llama2_7b_on(-8, 4096)), Error);
  EXPECT_THROW(plan_capacity(llama2_7b_on(24, 0)), Error);
  EXPECT_THROW(plan_capacity(llama2_7b_on(24, -1)), Error);
  CapacityQuery query = llama2_7b_on(24, 4096);
  query.reserve_fraction = 1.0;
  EXPECT_THROW(plan_capacity(query), Error);
  query.reserve_fraction = -0.1;
  EXPECT_THROW(plan_capacity(query), Error);
}

TEST(Capacity, EdgesOfTheRangeStayExactAndNonNegative) {
  // The largest context on the largest GPU: sizes near 2^60 are exact, never wrapped.
  CapacityQuery query = llama2_7b_on(kMaxGpuGiB, std::numeric_limits<int>::max());
  const CapacityPlan plan = plan_capacity(query);
  EXPECT_EQ(plan.gpu_bytes, std::int64_t{1} << 50);
  EXPECT_EQ(plan.kv_bytes_per_request, std::int64_t{std::numeric_limits<int>::max()} * 524'288);
  EXPECT_EQ(plan.max_requests, 0);
  EXPECT_GT(plan.max_cached_tokens, 0);
  EXPECT_THROW(plan_capacity(llama2_7b_on(kMaxGpuGiB * 2, 4096)), Error);
  EXPECT_THROW(plan_capacity(llama2_7b_on(1e300, 4096)), Error);
  EXPECT_THROW(plan_capacity(llama2_7b_on(std::nan(""), 4096)), Error);
}

TEST(Capacity, SizesThatDoNotFitIn64BitsAreErrors) {
  const ArchitectureSpec& llama = find_architecture("llama-2-7b");
  EXPECT_THROW(kv_bytes_for_tokens(llama, dtype("fp32"), std::int64_t{1} << 50), Error);
  ArchitectureSpec huge = llama;
  huge.n_parameters = std::numeric_limits<std::int64_t>::max() / 4;
  EXPECT_THROW(weight_bytes(huge, dtype("fp16")), Error);
  EXPECT_EQ(checked_mul(std::int64_t{1} << 31, std::int64_t{1} << 31, "x"), std::int64_t{1} << 62);
  EXPECT_THROW(checked_mul(std::int64_t{1} << 32, std::int64_t{1} << 31, "x"), Error);
  EXPECT_THROW(checked_add(std::numeric_limits<std::int64_t>::max(), 1, "x"), Error);
}

// ---- fragmentation ------------------------------------------------------------

TEST(Fragmentation, HandComputedLlama2_7b) {
  // 512 KiB per token, context 4,096 (2 GiB per max-length request), budget 20 GiB.
  // Lengths sum to 6,096 tokens.
  //   max-length: reserved 4 x 2 GiB = 8 GiB; used 6,096 x 512 KiB = 3,196,059,648;
  //               waste 1 - 6,096/16,384; fits 20 GiB / 2 GiB = 10.
  //   exact:      20 GiB = 40,960 tokens = 6 rounds (36,576) + 100 + 2,000 + 512
  //               (4,384 left: 3,484 no longer fits after those) = 27 requests.
  const std::vector<int> lengths = {100, 2000, 512, 3484};
  const FragmentationReport report = compare_allocations(lengths, 4096, 524'288, 20 * kGiB);
  EXPECT_EQ(report.max_length.reserved_bytes, 8 * kGiB);
  EXPECT_EQ(report.max_length.used_bytes, 3'196'059'648);
  EXPECT_DOUBLE_EQ(report.max_length.waste_fraction, 1.0 - 6096.0 / 16384.0);
  EXPECT_EQ(report.max_length.requests_that_fit, 10);
  EXPECT_EQ(report.exact.reserved_bytes, 3'196'059'648);
  EXPECT_EQ(report.exact.used_bytes, 3'196'059'648);
  EXPECT_DOUBLE_EQ(report.exact.waste_fraction, 0.0);
  EXPECT_EQ(report.exact.requests_that_fit, 27);
}

TEST(Fragmentation, FullLengthRequestsWasteNothing) {
  const std::vector<int> lengths = {64, 64, 64};
  const FragmentationReport report = compare_allocations(lengths, 64, 10, 64 * 10 * 7 + 5);
  EXPECT_DOUBLE_EQ(report.max_length.waste_fraction, 0.0);
  EXPECT_EQ(report.max_length.requests_that_fit, 7);
  EXPECT_EQ(report.exact.requests_that_fit, 7);
}

TEST(Fragmentation, LengthsNearIntMaxRoundUpWithoutWrapping) {
  // (length + unit - 1) overflowed an int: the reservation went negative and
  // the workload's round summed to 0, a division by zero (SIGFPE).
  constexpr int kMax = std::numeric_limits<int>::max();
  const std::vector<int> lengths = {kMax, kMax, 1};
  const AllocationOutcome paged = allocate_in_units(lengths, 128, 2, std::int64_t{1} << 40);
  const std::int64_t rounded = (std::int64_t{kMax} + 127) / 128 * 128;
  EXPECT_EQ(paged.reserved_bytes, (2 * rounded + 128) * 2);
  EXPECT_EQ(paged.used_bytes, (2 * std::int64_t{kMax} + 1) * 2);
  EXPECT_GE(paged.waste_fraction, 0.0);
  // 127 rounds of 2^33 + 256 bytes, 3 requests each, then one more 2^32 fits.
  EXPECT_EQ(paged.requests_that_fit, 127 * 3 + 1);
  const FragmentationReport report =
      compare_allocations(lengths, kMax, 131'072, std::int64_t{1} << 50);
  // 3 x (2^48 - 2^17) bytes, then one more of the next round.
  EXPECT_EQ(report.max_length.requests_that_fit, 4);
  EXPECT_GE(report.max_length.waste_fraction, 0.0);
  EXPECT_LE(report.max_length.waste_fraction, 1.0);
  // Bytes beyond 2^63 are refused, not wrapped.
  EXPECT_THROW(allocate_in_units(lengths, 1, std::int64_t{1} << 40, 1), Error);
}

TEST(Fragmentation, BadInputIsAnError) {
  const std::vector<int> too_long = {100, 5000};
  EXPECT_THROW(compare_allocations(too_long, 4096, 2, kGiB), Error);
  const std::vector<int> zero = {0};
  EXPECT_THROW(compare_allocations(zero, 4096, 2, kGiB), Error);
  EXPECT_THROW(compare_allocations({}, 4096, 2, kGiB), Error);
  const std::vector<int> fine = {10};
  EXPECT_THROW(compare_allocations(fine, 0, 2, kGiB), Error);
  EXPECT_THROW(compare_allocations(fine, 4096, 0, kGiB), Error);
}

// ---- request lengths ----------------------------------------------------------

TEST(RequestLengths, ParsesCommasWhitespaceAndComments) {
  EXPECT_EQ(parse_request_lengths("100,2000,512"), (std::vector<int>{100, 2000, 512}));
  EXPECT_EQ(parse_request_lengths("# chat traffic\n 7 8\t9,\n10 # tail\n11\n"),
            (std::vector<int>{7, 8, 9, 10, 11}));
}

TEST(RequestLengths, RejectsBadTokens) {
  EXPECT_THROW(parse_request_lengths("100,abc"), Error);
  EXPECT_THROW(parse_request_lengths("100,-5"), Error);
  EXPECT_THROW(parse_request_lengths("0"), Error);
  EXPECT_THROW(parse_request_lengths("12x"), Error);
  EXPECT_THROW(parse_request_lengths("99999999999999"), Error);
  EXPECT_THROW(parse_request_lengths(" , # nothing\n"), Error);
}

using testing::error_of;

TEST(RequestLengths, ErrorsNameTheLineAndQuoteShortly) {
  const auto parse_error = [](const std::string& text) {
    return error_of([&] { parse_request_lengths(text); });
  };
  EXPECT_NE(parse_error("1\n2\n# three\n4 x5\n").find("line 4: request length 'x5'"),
            std::string::npos);
  const std::string garbage = parse_error("7 " + std::string(100000, '9'));
  EXPECT_NE(garbage.find("line 1"), std::string::npos) << garbage;
  EXPECT_LT(garbage.size(), 200u) << garbage;
  EXPECT_NE(parse_error("2147483648").find("not a positive integer"), std::string::npos);
  EXPECT_EQ(parse_request_lengths("2147483647"), (std::vector<int>{2147483647}));
}

TEST(RequestLengths, DirectoryAndEndlessFilesAreOneLineErrors) {
  const auto read_error = [](const std::string& path) {
    return error_of([&] { read_request_lengths_file(path); });
  };
  EXPECT_NE(read_error(::testing::TempDir()).find("is a directory"), std::string::npos);
  EXPECT_NE(read_error("/dev/zero").find("larger than the limit"), std::string::npos);
}

TEST(RequestLengths, ReadsAFileAndNamesAnUnreadableOne) {
  const std::filesystem::path path = std::filesystem::path(::testing::TempDir()) / "lengths.txt";
  {
    std::ofstream out(path);
    out << "# lengths\n300\n4000\n";
  }
  EXPECT_EQ(read_request_lengths_file(path.string()), (std::vector<int>{300, 4000}));
  std::filesystem::remove(path);
  try {
    read_request_lengths_file(path.string());
    FAIL() << "expected kvc::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace kvc
