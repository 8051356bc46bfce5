// Chapter 07's quantizers: what the quantized paged cache runs on every write.
// EXERCISE (exercises/07_quantization/quantize_ops.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvc::ch07 {

// INT8, symmetric, one scale for the row: scale = max|x| / 127 and
// codes[i] = round(x[i] / scale) (to nearest, ties to even), so every code is
// in [-127, 127] and |x[i] - codes[i] * scale| <= scale / 2. An all-zero row
// gets scale 0 and zero codes. Returns the scale.
float quantize_int8_row(std::int8_t* codes, const float* x, int n);

// x[i] = codes[i] * scale: exactly what the attention kernel computes.
void dequantize_int8_row(float* x, const std::int8_t* codes, float scale, int n);

// INT4 keys per channel (KIVI): rows x[t][c] (row t at x + t * x_stride) for
// t < n_rows, c < n_channels (even). Channel c gets one scale over the rows,
// scales[c] = max_t |x[t][c]| / 7, and codes round(x / scale) clamped to
// [-8, 7] (zero scale: zero codes). Row t's codes are packed two per byte at
// packed + t * packed_stride: channel 2j in the low nibble of byte j, 2j + 1
// in the high nibble, as two's-complement 4-bit numbers.
void quantize_int4_per_channel(std::uint8_t* packed, std::size_t packed_stride, float* scales,
                               const float* x, std::size_t x_stride, int n_rows, int n_channels);

}  // namespace kvc::ch07
