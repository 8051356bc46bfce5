// Chapter 07's number formats: the dtype description's arithmetic, the
// bit-exact fp16 / bf16 / FP8 E4M3 conversions against a nearest-value search,
// and the quantizers' error bounds.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "chapters/07_quantization/quantize_ops.hpp"
#include "common/check.hpp"
#include "common/kv_dtype.hpp"
#include "kernels/cpu/kv_quant.hpp"

namespace kvc {
namespace {

// ---- the dtype description ----------------------------------------------------------------

TEST(Ch07KvDtype, NamesParseBackAndCountBits) {
  for (const char* name : kv_dtype_names()) EXPECT_EQ(parse_kv_dtype(name, 64).name(), name);
  EXPECT_EQ(parse_kv_dtype("fp32", 64).bits(), 32);
  EXPECT_EQ(parse_kv_dtype("bf16", 64).bits(), 16);
  EXPECT_EQ(parse_kv_dtype("fp8", 64).bits(), 8);
  const KvDtype kivi = parse_kv_dtype("int4", 128);
  EXPECT_EQ(kivi.bits(), 4);
  EXPECT_EQ(kivi.group_size, 32);
  EXPECT_EQ(kivi.key_scales, ScaleLayout::per_channel);
  EXPECT_EQ(kivi.value_scales, ScaleLayout::per_token_group);
  EXPECT_EQ(parse_kv_dtype("int4-token", 8).group_size, 8) << "the whole row when head_dim < 32";
  EXPECT_EQ(parse_kv_dtype("int4", 128, 64).group_size, 64);
}

TEST(Ch07KvDtype, BadNamesAndGroupsAreOneLineErrors) {
  EXPECT_THROW(parse_kv_dtype("int5", 64), Error);
  EXPECT_THROW(parse_kv_dtype("int4", 64, 24), Error) << "24 does not divide 64";
  EXPECT_THROW(parse_kv_dtype("int4", 12, 3), Error) << "odd group";
  EXPECT_THROW(parse_kv_dtype("int4", 64, -2), Error);
  EXPECT_THROW(parse_kv_dtype("int8", 64, 32), Error) << "groups are int4's";
  try {
    parse_kv_dtype("int4", 8, 32);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("head_dim 8"), std::string::npos) << e.what();
  }
}

TEST(Ch07KvDtype, BytesPerBlockByHand) {
  // Llama-3-8B-like: 32 layers, 8 KV heads of 128, blocks of 16 tokens.
  const KvPoolShape s{32, 8, 128, 16};
  const std::int64_t rows = 2LL * 32 * 16 * 8;  // K and V rows of one block, every layer
  EXPECT_EQ(kv_bytes_per_block(parse_kv_dtype("fp32", 128), s), rows * 128 * 4);
  EXPECT_EQ(kv_bytes_per_block(parse_kv_dtype("bf16", 128), s), rows * 128 * 2);
  EXPECT_EQ(kv_bytes_per_block(parse_kv_dtype("int8", 128), s), rows * (128 + 4));
  EXPECT_EQ(kv_bytes_per_block(parse_kv_dtype("fp8", 128), s), rows * (128 + 4));
  EXPECT_EQ(kv_bytes_per_block(parse_kv_dtype("int4-token", 128), s), rows * (64 + 4 * 4));
  // KIVI: keys carry 128 channel scales per (block, head), values 4 group scales per row.
  EXPECT_EQ(kv_bytes_per_block(parse_kv_dtype("int4", 128), s),
            rows * 64 + 32LL * 8 * 128 * 4 + 32LL * 16 * 8 * 4 * 4);
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(parse_kv_dtype("fp32", 128), s), 2.0 * 32 * 8 * 128 * 4);
}

TEST(Ch07KvDtype, OverflowAndBadShapesThrow) {
  EXPECT_THROW(kv_bytes_per_block(parse_kv_dtype("fp32", 8), {1 << 30, 1 << 30, 8, 256}), Error);
  EXPECT_THROW(kv_bytes_per_block(parse_kv_dtype("fp32", 8), {1, 0, 8, 16}), Error);
}

// ---- bit-exact conversions ------------------------------------------------------------------

// The nearest of `values` (code -> value, finite codes only) to x, ties to the
// even code; what a correct round-to-nearest-even conversion must return.
template <typename Code>
Code nearest_code(float x, const std::vector<std::pair<Code, float>>& values) {
  Code best = values[0].first;
  double best_error = std::numeric_limits<double>::infinity();
  for (const auto& [code, value] : values) {
    const double error = std::fabs(double(value) - double(x));
    if (error < best_error || (error == best_error && (code & 1) == 0)) {
      best = code;
      best_error = error;
    }
  }
  return best;
}

std::vector<std::pair<std::uint8_t, float>> finite_fp8_codes(bool negative) {
  std::vector<std::pair<std::uint8_t, float>> codes;
  for (int c = 0; c < 0x7F; ++c) {
    const auto code = static_cast<std::uint8_t>(negative ? c | 0x80 : c);
    codes.push_back({code, fp8_e4m3_to_float(code)});
  }
  return codes;
}

TEST(Ch07Fp8, EveryCodeRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    const float value = fp8_e4m3_to_float(code);
    if ((c & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(value)) << c;
      EXPECT_EQ(fp8_e4m3_from_float(value), 0x7F);
    } else {
      EXPECT_EQ(fp8_e4m3_from_float(value), code) << "code " << c << " value " << value;
    }
  }
}

TEST(Ch07Fp8, BranchFreeDecodeAgreesOnEveryFiniteCode) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    const auto code = static_cast<std::uint8_t>(c);
    EXPECT_EQ(std::bit_cast<std::uint32_t>(cpu::fp8_e4m3_to_float_finite(code)),
              std::bit_cast<std::uint32_t>(fp8_e4m3_to_float(code)))
        << c;
  }
}

TEST(Ch07Fp8, KnownValuesFromTheSpec) {
  EXPECT_EQ(fp8_e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(fp8_e4m3_to_float(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(fp8_e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0xB8), -1.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x80), 0.0f);
  EXPECT_TRUE(std::signbit(fp8_e4m3_to_float(0x80)));
}

TEST(Ch07Fp8, RoundsToNearestEvenAndSaturates) {
  // Ties go to the even code: 1 + 1/16 is halfway between 1 (0x38) and 1.125 (0x39).
  EXPECT_EQ(fp8_e4m3_from_float(1.0625f), 0x38);
  EXPECT_EQ(fp8_e4m3_from_float(1.1875f), 0x3A);  // between 0x39 and 0x3A: even is 0x3A
  EXPECT_EQ(fp8_e4m3_from_float(std::nextafter(1.0625f, 2.0f)), 0x39);
  // A subnormal tie (1.5 * 2^-9) and the subnormal/normal boundary (7.5 * 2^-9 -> 2^-6).
  EXPECT_EQ(fp8_e4m3_from_float(1.5f * std::ldexp(1.0f, -9)), 0x02);
  EXPECT_EQ(fp8_e4m3_from_float(7.5f * std::ldexp(1.0f, -9)), 0x08);
  EXPECT_EQ(fp8_e4m3_from_float(0.5f * std::ldexp(1.0f, -9)), 0x00);
  // Saturation (__NV_SATFINITE): up to 464 rounds to 448, beyond stays 448, inf too.
  EXPECT_EQ(fp8_e4m3_from_float(460.0f), 0x7E);
  EXPECT_EQ(fp8_e4m3_from_float(464.0f), 0x7E);
  EXPECT_EQ(fp8_e4m3_from_float(1e9f), 0x7E);
  EXPECT_EQ(fp8_e4m3_from_float(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(fp8_e4m3_from_float(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_EQ(fp8_e4m3_from_float(std::numeric_limits<float>::quiet_NaN()), 0x7F);
}

TEST(Ch07Fp8, MatchesNearestValueSearchEverywhere) {
  const auto positive = finite_fp8_codes(false);
  const auto negative = finite_fp8_codes(true);
  std::vector<float> inputs;
  // Every midpoint between neighbouring codes, and a hair either side of it.
  for (std::size_t i = 0; i + 1 < positive.size(); ++i) {
    const float mid = (positive[i].second + positive[i + 1].second) / 2;
    inputs.insert(inputs.end(), {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)});
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-12.0f, 9.0f);
  for (int i = 0; i < 20000; ++i) inputs.push_back(std::exp2(exponent(rng)));
  for (float x : inputs) {
    if (x > 448.0f) continue;  // saturation is tested above
    EXPECT_EQ(fp8_e4m3_from_float(x), nearest_code(x, positive)) << x;
    EXPECT_EQ(fp8_e4m3_from_float(-x), nearest_code(-x, negative)) << -x;
  }
}

TEST(Ch07Fp16, EveryCodeRoundTripsAndEdgesRoundToEven) {
  for (int c = 0; c < 65536; ++c) {
    const auto code = static_cast<std::uint16_t>(c);
    const float value = fp16_to_float(code);
    if ((c & 0x7C00) == 0x7C00 && (c & 0x3FF)) continue;  // NaN payloads
    ASSERT_EQ(fp16_from_float(value), code) << c;
  }
  EXPECT_EQ(fp16_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_from_float(65519.0f), 0x7BFF);
  EXPECT_EQ(fp16_from_float(65520.0f), 0x7C00) << "the tie with 65536 overflows to inf";
  EXPECT_EQ(fp16_from_float(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(fp16_from_float(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(fp16_from_float(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(fp16_from_float(3 * std::ldexp(1.0f, -25)), 0x0002);
  EXPECT_TRUE(std::isnan(fp16_to_float(fp16_from_float(NAN))));
}

TEST(Ch07Fp16, BranchFreeDecodeAgreesOnEveryFiniteCode) {
  for (int c = 0; c < 65536; ++c) {
    if ((c & 0x7C00) == 0x7C00) continue;
    const auto code = static_cast<std::uint16_t>(c);
    ASSERT_EQ(std::bit_cast<std::uint32_t>(cpu::fp16_to_float_finite(code)),
              std::bit_cast<std::uint32_t>(fp16_to_float(code)))
        << c;
  }
}

TEST(Ch07Bf16, EveryCodeRoundTripsAndTiesGoToEven) {
  for (int c = 0; c < 65536; ++c) {
    const auto code = static_cast<std::uint16_t>(c);
    const float value = bf16_to_float(code);
    if (std::isnan(value)) continue;
    ASSERT_EQ(bf16_from_float(value), code) << c;
  }
  EXPECT_EQ(bf16_from_float(std::bit_cast<float>(0x3F808000u)), 0x3F80);
  EXPECT_EQ(bf16_from_float(std::bit_cast<float>(0x3F818000u)), 0x3F82);
  EXPECT_EQ(bf16_from_float(std::bit_cast<float>(0x3F808001u)), 0x3F81);
}

TEST(Ch07Hadamard, IsOrthogonalAndItsOwnInverse) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<float> original = x;
  std::vector<float> y = {0.5f, -1, 0, 2, 1, 1, -3, 0.25f};
  double dot_before = 0;
  for (int i = 0; i < 8; ++i) dot_before += x[i] * y[i];
  cpu::hadamard_rotate(x.data(), 8);
  cpu::hadamard_rotate(y.data(), 8);
  double dot_after = 0;
  for (int i = 0; i < 8; ++i) dot_after += x[i] * y[i];
  EXPECT_NEAR(dot_after, dot_before, 1e-4);
  EXPECT_NEAR(x[0], 36 / std::sqrt(8.0), 1e-5) << "row 0 of H is all ones";
  cpu::hadamard_rotate(x.data(), 8);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(x[i], original[i], 1e-5);
  // One outlier channel is spread evenly over the whole head.
  std::vector<float> spike(8, 0.0f);
  spike[3] = 8;
  cpu::hadamard_rotate(spike.data(), 8);
  for (float value : spike) EXPECT_NEAR(std::fabs(value), 8 / std::sqrt(8.0), 1e-5);
}

// ---- quantizers -----------------------------------------------------------------------------

std::vector<float> random_row(int n, unsigned seed, float spread = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

TEST(Ch07Int8, RowErrorIsAtMostHalfAStep) {
  const std::vector<float> x = random_row(128, 1);
  std::vector<std::int8_t> codes(128);
  const float scale = ch07::quantize_int8_row(codes.data(), x.data(), 128);
  float max_abs = 0;
  for (float v : x) max_abs = std::max(max_abs, std::fabs(v));
  EXPECT_FLOAT_EQ(scale, max_abs / 127);
  std::vector<float> back(128);
  ch07::dequantize_int8_row(back.data(), codes.data(), scale, 128);
  bool hit_extreme = false;
  for (int i = 0; i < 128; ++i) {
    EXPECT_LE(std::fabs(back[i] - x[i]), scale / 2 * 1.0001f) << i;
    EXPECT_EQ(back[i], float(codes[i]) * scale);
    hit_extreme |= std::abs(codes[i]) == 127;
  }
  EXPECT_TRUE(hit_extreme) << "the largest value maps to +-127";
}

TEST(Ch07Int8, ZeroRowHasZeroScaleAndCodes) {
  const std::vector<float> x(16, 0.0f);
  std::vector<std::int8_t> codes(16, 5);
  EXPECT_EQ(ch07::quantize_int8_row(codes.data(), x.data(), 16), 0.0f);
  for (std::int8_t c : codes) EXPECT_EQ(c, 0);
}

TEST(Ch07Int4, GroupsPackTwoPerByteWithinHalfAStep) {
  const std::vector<float> x = random_row(64, 2);
  std::vector<std::uint8_t> packed(32);
  std::vector<float> scales(2);
  cpu::quantize_int4_groups(packed.data(), scales.data(), x.data(), 64, 32);
  for (int i = 0; i < 64; ++i) {
    const float scale = scales[i / 32];
    const int code = cpu::int4_at(packed.data(), i);
    EXPECT_GE(code, -8);
    EXPECT_LE(code, 7);
    EXPECT_EQ(code, int(std::nearbyint(x[i] / scale))) << i;
    EXPECT_LE(std::fabs(code * scale - x[i]), scale / 2 * 1.0001f) << i;
  }
}

TEST(Ch07Int4, PerChannelScalesFollowEachChannel) {
  // 16 rows x 8 channels; channel c has magnitude 10^(c % 4 - 2): per-token scales would drown
  // the small channels, per-channel ones keep each within half of its own step.
  const int rows = 16, channels = 8;
  std::vector<float> x = random_row(rows * channels, 3, 1.0f);
  for (int t = 0; t < rows; ++t) {
    for (int c = 0; c < channels; ++c) x[t * channels + c] *= std::pow(10.0f, c % 4 - 2);
  }
  const std::size_t packed_stride = 12;  // wider than the 4 bytes a row needs: strides are honoured
  std::vector<std::uint8_t> packed(rows * packed_stride, 0xAA);
  std::vector<float> scales(channels);
  ch07::quantize_int4_per_channel(packed.data(), packed_stride, scales.data(), x.data(), channels,
                                  rows, channels);
  for (int c = 0; c < channels; ++c) {
    float max_abs = 0;
    for (int t = 0; t < rows; ++t) max_abs = std::max(max_abs, std::fabs(x[t * channels + c]));
    EXPECT_FLOAT_EQ(scales[c], max_abs / 7);
    for (int t = 0; t < rows; ++t) {
      const int code = cpu::int4_at(packed.data() + t * packed_stride, c);
      EXPECT_LE(std::fabs(code * scales[c] - x[t * channels + c]), scales[c] / 2 * 1.0001f);
    }
  }
  EXPECT_EQ(packed[4], 0xAA) << "bytes past a row's 4 stay untouched";
}

}  // namespace
}  // namespace kvc
