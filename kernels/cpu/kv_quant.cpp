// Bit-level float conversions: each rounds the float's mantissa at the
// target's last bit (ties to even), then handles what the target cannot hold
// (subnormals by a power-of-two scaling that is exact, overflow by the
// target's rule).
#include "kernels/cpu/kv_quant.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace kvc::cpu {

namespace {

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

float max_abs(const float* x, int n) {
  float m = 0.0f;
  for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

}  // namespace

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

float quantize_fp8_row(std::uint8_t* codes, const float* x, int n) {
  const float scale = max_abs(x, n) / 448.0f;
  for (int i = 0; i < n; ++i) codes[i] = fp8_e4m3_from_float(scale > 0 ? x[i] / scale : 0.0f);
  return scale;
}

void quantize_int4_groups(std::uint8_t* packed, float* scales, const float* x, int n, int group) {
  for (int g = 0; g < n / group; ++g) {
    const float* xg = x + g * group;
    const float scale = max_abs(xg, group) / 7.0f;
    scales[g] = scale;
    for (int i = 0; i < group; i += 2) {
      const auto code = [&](float v) {
        const float q = scale > 0 ? std::nearbyint(v / scale) : 0.0f;
        return static_cast<std::uint8_t>(static_cast<int>(std::clamp(q, -8.0f, 7.0f)) & 0xF);
      };
      packed[(g * group + i) / 2] = static_cast<std::uint8_t>(code(xg[i]) | (code(xg[i + 1]) << 4));
    }
  }
}

void hadamard_rotate(float* x, int n) {
  for (int half = 1; half < n; half *= 2) {
    for (int start = 0; start < n; start += 2 * half) {
      for (int i = start; i < start + half; ++i) {
        const float a = x[i], b = x[i + half];
        x[i] = a + b;
        x[i + half] = a - b;
      }
    }
  }
  const float norm = 1.0f / std::sqrt(float(n));
  for (int i = 0; i < n; ++i) x[i] *= norm;
}

}  // namespace kvc::cpu
