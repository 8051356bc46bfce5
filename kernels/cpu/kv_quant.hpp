// Number formats of a quantized KV cache on the CPU: branch-free decoders
// (the bit-exact conversions are common/number_format.hpp's) and the
// quantizers/dequantizers of one head's row that the quantized paged cache (chapter 07) stores and
// its attention kernels read. Layouts and scale rules are common/kv_dtype.hpp's.
//
// Scaled formats are symmetric: value = code * scale, scale = max|x| / qmax
// (qmax: int8 127, FP8 448, int4 7); an all-zero row gets scale 0.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "common/number_format.hpp"

namespace kvc::cpu {

// ---- scalar conversions ----------------------------------------------------------------
// fp16, bf16 and FP8 E4M3, round to nearest even, are common/number_format.hpp's.

// fp16 to float for every finite code, without a branch (see fp8_e4m3_to_float_finite;
// here the bias is 15, so the factor is 2^112). Infinities and NaNs read as large
// finite numbers: the cache stores fp16 only where the values fit.
inline float fp16_to_float_finite(std::uint16_t h) {
  const float magnitude = std::bit_cast<float>(std::uint32_t(h & 0x7FFF) << 13) * 0x1p112f;
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(magnitude) |
                              (std::uint32_t(h & 0x8000) << 16));
}
// FP8 E4M3 to float for any code but NaN (the quantizer never writes one), without a
// branch, so a kernel's loop vectorizes: the code's exponent and mantissa bits
// placed in a float's fields read as a float 2^120 times too small (bias 127
// instead of 7), subnormals included; one multiplication fixes it.
inline float fp8_e4m3_to_float_finite(std::uint8_t code) {
  const float magnitude = std::bit_cast<float>(std::uint32_t(code & 0x7F) << 20) * 0x1p120f;
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(magnitude) |
                              (std::uint32_t(code & 0x80) << 24));
}

// ---- one row of n values ------------------------------------------------------------------
// FP8 with one scale (max|x| / 448): returns the scale.
float quantize_fp8_row(std::uint8_t* codes, const float* x, int n);
// int4 in groups of `group` values, one scale each (max|x| / 7 over the
// group), codes in [-8, 7] packed two per byte: value 2j in the low nibble of
// byte j. scales: [n / group]; packed: [n / 2]. n and group even, group | n.
void quantize_int4_groups(std::uint8_t* packed, float* scales, const float* x, int n, int group);

// x <- H x for the n x n Hadamard matrix scaled by 1 / sqrt(n) (orthogonal and
// its own inverse), by the fast Walsh-Hadamard transform. n a power of two.
void hadamard_rotate(float* x, int n);

// The signed value of nibble i of a packed int4 row.
inline int int4_at(const std::uint8_t* packed, int i) {
  const int nibble = (packed[i / 2] >> (4 * (i % 2))) & 0xF;
  return nibble >= 8 ? nibble - 16 : nibble;
}

}  // namespace kvc::cpu
