// common/number_format.hpp: the one list of number formats, its spellings and
// bit widths, the float-format parser the flags use, and the host rounding the
// GPU's storage must match.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/check.hpp"
#include "common/kv_dtype.hpp"
#include "common/number_format.hpp"

namespace kvc {
namespace {

constexpr NumberFormat kAll[] = {NumberFormat::fp32, NumberFormat::fp16,     NumberFormat::bf16,
                                 NumberFormat::int8, NumberFormat::fp8_e4m3, NumberFormat::int4};

TEST(NumberFormat, NamesAndBits) {
  const char* names[] = {"fp32", "fp16", "bf16", "int8", "fp8", "int4"};
  const int bits[] = {32, 16, 16, 8, 8, 4};
  for (int i = 0; i < 6; ++i) {
    EXPECT_STREQ(format_name(kAll[i]), names[i]);
    EXPECT_EQ(format_bits(kAll[i]), bits[i]) << names[i];
    EXPECT_EQ(is_float_format(kAll[i]), i < 3) << names[i];
  }
  EXPECT_EQ(float_format_bytes(NumberFormat::fp32), 4u);
  EXPECT_EQ(float_format_bytes(NumberFormat::fp16), 2u);
  EXPECT_EQ(float_format_bytes(NumberFormat::bf16), 2u);
  EXPECT_THROW(float_format_bytes(NumberFormat::int4), Error);
}

TEST(NumberFormat, KvDtypeCountsBitsOfItsFormat) {
  for (const char* name : kv_dtype_names()) {
    const KvDtype dtype = parse_kv_dtype(name, 64);
    EXPECT_EQ(dtype.bits(), format_bits(dtype.format)) << name;
    EXPECT_EQ(dtype.is_float(), is_float_format(dtype.format)) << name;
  }
}

TEST(NumberFormat, FloatFlagsTakeFloatFormatsOnly) {
  for (NumberFormat format : {NumberFormat::fp32, NumberFormat::fp16, NumberFormat::bf16})
    EXPECT_EQ(parse_float_format(format_name(format), "--weights-dtype"), format);
  // The list a float flag's CLI11 check is built from: exactly what parses.
  EXPECT_EQ(float_format_names(), (std::vector<std::string>{"fp32", "fp16", "bf16"}));
  for (const std::string& name : float_format_names()) {
    EXPECT_NO_THROW(parse_float_format(name, "--weights-dtype")) << name;
  }
  // A scaled format is named as such, and the flag is named, in one line.
  for (const char* scaled : {"int4", "int8", "fp8"}) {
    try {
      parse_float_format(scaled, "--weights-dtype");
      FAIL() << scaled << " was accepted";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("--weights-dtype"), std::string::npos) << what;
      EXPECT_NE(what.find(scaled), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
  try {
    parse_float_format("f16", "--weights-dtype");
    FAIL() << "f16 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(expected fp32, fp16, bf16)"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(parse_float_format("", "--weights-dtype"), Error);
  EXPECT_THROW(parse_float_format("FP32", "--weights-dtype"), Error);
}

TEST(NumberFormat, RoundsToNearestEven) {
  // 1 + 2^-11 is halfway between fp16 neighbours 1 and 1 + 2^-10: ties round to even (1).
  EXPECT_EQ(round_to_format(1.0f + 1.0f / 2048, NumberFormat::fp16), 1.0f);
  EXPECT_EQ(round_to_format(1.0f + 3.0f / 2048, NumberFormat::fp16), 1.0f + 2.0f / 1024);
  EXPECT_EQ(round_to_format(65520.0f, NumberFormat::fp16), INFINITY) << "the tie overflows";
  // bf16 keeps 8 significant bits: 1 + 2^-7 survives, 1 + 2^-9 does not.
  EXPECT_EQ(round_to_format(1.0f + 1.0f / 128, NumberFormat::bf16), 1.0f + 1.0f / 128);
  EXPECT_EQ(round_to_format(1.0f + 1.0f / 512, NumberFormat::bf16), 1.0f);
  EXPECT_EQ(round_to_format(1.0f + 3.0f / 512, NumberFormat::bf16), 1.0f + 4.0f / 512);
  EXPECT_EQ(round_to_format(0.1f, NumberFormat::fp32), 0.1f);
  EXPECT_TRUE(std::isnan(round_to_format(NAN, NumberFormat::bf16)));
  EXPECT_THROW(round_to_format(1.0f, NumberFormat::int8), Error);
}

TEST(NumberFormat, ConvertsToRawBytes) {
  const std::vector<float> values = {1.0f, -2.0f, 0.1f, 65504.0f, 1e-8f};
  for (NumberFormat format : {NumberFormat::fp32, NumberFormat::fp16, NumberFormat::bf16}) {
    SCOPED_TRACE(format_name(format));
    const std::vector<std::byte> bytes = convert_from_f32(values.data(), values.size(), format);
    ASSERT_EQ(bytes.size(), values.size() * float_format_bytes(format));
    for (std::size_t i = 0; i < values.size(); ++i) {
      float back = 0.0f;
      if (format == NumberFormat::fp32) {
        std::memcpy(&back, &bytes[4 * i], 4);
      } else {
        std::uint16_t bits = 0;
        std::memcpy(&bits, &bytes[2 * i], 2);
        back = format == NumberFormat::fp16 ? fp16_to_float(bits) : bf16_to_float(bits);
      }
      EXPECT_EQ(back, round_to_format(values[i], format)) << i;
    }
  }
  EXPECT_THROW(convert_from_f32(values.data(), values.size(), NumberFormat::fp8_e4m3), Error);
}

}  // namespace
}  // namespace kvc
