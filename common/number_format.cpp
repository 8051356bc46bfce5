#include "common/number_format.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/check.hpp"

namespace kvc {

namespace {

constexpr std::array<NumberFormat, 6> kFormats = {NumberFormat::fp32,     NumberFormat::fp16,
                                                  NumberFormat::bf16,     NumberFormat::int8,
                                                  NumberFormat::fp8_e4m3, NumberFormat::int4};

// Rounds `mantissa` (23 bits) to its top `keep` bits, ties to even, and adds
// the result to `code` (whose low bit is the kept mantissa's last bit): a
// carry moves into the exponent field, as it should.
std::uint32_t round_mantissa(std::uint32_t code, std::uint32_t mantissa, int keep) {
  const int dropped = 23 - keep;
  const std::uint32_t rest = mantissa & ((1u << dropped) - 1);
  const std::uint32_t half = 1u << (dropped - 1);
  if (rest > half || (rest == half && (code & 1))) ++code;
  return code;
}

}  // namespace

int format_bits(NumberFormat format) {
  switch (format) {
    case NumberFormat::fp32:
      return 32;
    case NumberFormat::fp16:
    case NumberFormat::bf16:
      return 16;
    case NumberFormat::int8:
    case NumberFormat::fp8_e4m3:
      return 8;
    case NumberFormat::int4:
      return 4;
  }
  KVC_FAIL("unknown NumberFormat ", static_cast<int>(format));
}

const char* format_name(NumberFormat format) {
  switch (format) {
    case NumberFormat::fp32:
      return "fp32";
    case NumberFormat::fp16:
      return "fp16";
    case NumberFormat::bf16:
      return "bf16";
    case NumberFormat::int8:
      return "int8";
    case NumberFormat::fp8_e4m3:
      return "fp8";
    case NumberFormat::int4:
      return "int4";
  }
  KVC_FAIL("unknown NumberFormat ", static_cast<int>(format));
}

bool is_float_format(NumberFormat format) {
  return format == NumberFormat::fp32 || format == NumberFormat::fp16 ||
         format == NumberFormat::bf16;
}

std::size_t float_format_bytes(NumberFormat format) {
  KVC_CHECK(is_float_format(format), format_name(format),
            " values are codes with scales, not whole floats");
  return static_cast<std::size_t>(format_bits(format) / 8);
}

std::vector<std::string> float_format_names() {
  std::vector<std::string> names;
  for (NumberFormat format : kFormats) {
    if (is_float_format(format)) names.push_back(format_name(format));
  }
  return names;
}

NumberFormat parse_float_format(const std::string& name, const std::string& flag) {
  std::string expected;
  for (const std::string& float_name : float_format_names()) {
    expected += (expected.empty() ? "" : ", ") + float_name;
  }
  for (NumberFormat format : kFormats) {
    if (name != format_name(format)) continue;
    KVC_CHECK(is_float_format(format), flag, " ", name,
              ": codes with scales are a KV cache format; this takes ", expected);
    return format;
  }
  KVC_FAIL(flag, ": unknown format '", name, "' (expected ", expected, ")");
}

// Bit-level float conversions: each rounds the float's mantissa at the
// target's last bit (ties to even), then handles what the target cannot hold
// (subnormals by a power-of-two scaling that is exact, overflow by the
// target's rule).
std::uint16_t fp16_from_float(float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000);
  const float ax = std::fabs(x);
  if (std::isnan(x)) return sign | 0x7E00;
  if (ax < 0x1p-14f) {  // fp16 subnormal: multiples of 2^-24
    return sign | static_cast<std::uint16_t>(std::nearbyint(ax * 0x1p24f));
  }
  const int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127;
  if (exponent > 15) return sign | 0x7C00;
  const std::uint32_t mantissa = bits & 0x7FFFFF;
  std::uint32_t code = (std::uint32_t(exponent + 15) << 10) | (mantissa >> 13);
  code = round_mantissa(code, mantissa, 10);
  return sign | static_cast<std::uint16_t>(std::min<std::uint32_t>(code, 0x7C00));
}

float fp16_to_float(std::uint16_t h) {
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  float v;
  if (exponent == 0) {
    v = std::ldexp(float(mantissa), -24);
  } else if (exponent == 31) {
    v = mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(float(1024 + mantissa), exponent - 25);
  }
  return (h & 0x8000) ? -v : v;
}

std::uint16_t bf16_from_float(float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  if (std::isnan(x)) return static_cast<std::uint16_t>((bits >> 16) | 0x40);
  const std::uint32_t rounded = bits + 0x7FFF + ((bits >> 16) & 1);
  return static_cast<std::uint16_t>(rounded >> 16);
}

std::uint8_t fp8_e4m3_from_float(float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint8_t sign = static_cast<std::uint8_t>((bits >> 24) & 0x80);
  const float ax = std::fabs(x);
  if (std::isnan(x)) return 0x7F;
  if (ax < 0x1p-6f) {  // E4M3 subnormal: multiples of 2^-9 (8 rounds up to 2^-6, code 0x08)
    return sign | static_cast<std::uint8_t>(std::nearbyint(ax * 0x1p9f));
  }
  const int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127;
  if (exponent > 8) return sign | 0x7E;  // beyond 2^9 > 448: saturate
  const std::uint32_t mantissa = bits & 0x7FFFFF;
  std::uint32_t code = (std::uint32_t(exponent + 7) << 3) | (mantissa >> 20);
  code = round_mantissa(code, mantissa, 3);
  // 0x7F is NaN, not 480: everything from 464 up saturates to 448.
  return sign | static_cast<std::uint8_t>(std::min<std::uint32_t>(code, 0x7E));
}

float fp8_e4m3_to_float(std::uint8_t code) {
  const int exponent = (code >> 3) & 0xF;
  const int mantissa = code & 0x7;
  float v;
  if (exponent == 15 && mantissa == 7) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    v = std::ldexp(float(mantissa), -9);
  } else {
    v = std::ldexp(float(8 + mantissa), exponent - 10);
  }
  return (code & 0x80) ? -v : v;
}

float round_to_format(float value, NumberFormat format) {
  switch (format) {
    case NumberFormat::fp32:
      return value;
    case NumberFormat::fp16:
      return fp16_to_float(fp16_from_float(value));
    case NumberFormat::bf16:
      return bf16_to_float(bf16_from_float(value));
    default:
      KVC_FAIL("round_to_format: ", format_name(format), " is not a float format");
  }
}

std::vector<std::byte> convert_from_f32(const float* values, std::size_t count,
                                        NumberFormat format) {
  std::vector<std::byte> bytes(count * float_format_bytes(format));
  for (std::size_t i = 0; i < count; ++i) {
    if (format == NumberFormat::fp32) {
      std::memcpy(&bytes[4 * i], &values[i], 4);
    } else {
      const std::uint16_t bits =
          format == NumberFormat::fp16 ? fp16_from_float(values[i]) : bf16_from_float(values[i]);
      std::memcpy(&bytes[2 * i], &bits, 2);
    }
  }
  return bytes;
}

}  // namespace kvc
