// Exercise: chapter 07, INT8 rows and INT4 per-channel packing.
//
// Build with -DKVC_EXERCISES=ON and run `ctest -L ch07`; ch07_quantization
// and ch07_quality then store the KV cache through your code.
#include "chapters/07_quantization/quantize_ops.hpp"

#include "common/check.hpp"

namespace kvc::ch07 {

// Contract: see quantize_ops.hpp. Hints:
//  - find max|x| first; scale = max_abs / 127.0f (keep it a float);
//  - std::nearbyint rounds to nearest even in the default rounding mode;
//  - clamp to [-127, 127] before the cast to int8_t (a cast out of range is
//    undefined), and skip the division when the scale is 0.
float quantize_int8_row(std::int8_t* /*codes*/, const float* /*x*/, int /*n*/) {
  throw NotImplemented("ch07: quantize_int8_row");
}

// Contract: x[i] = float(codes[i]) * scale. The kernel does the same
// multiplication, so tests compare bits.
void dequantize_int8_row(float* /*x*/, const std::int8_t* /*codes*/, float /*scale*/, int /*n*/) {
  throw NotImplemented("ch07: dequantize_int8_row");
}

// Contract: see quantize_ops.hpp. Hints:
//  - two passes: the scales (one per channel, a max over the rows), then the codes;
//  - a code q in [-8, 7] is stored as its low 4 bits, (q & 0xF);
//  - byte j of a row holds channel 2j in bits 0-3 and channel 2j + 1 in bits 4-7
//    (kernels/cpu/kv_quant.hpp's int4_at reads it back).
void quantize_int4_per_channel(std::uint8_t* /*packed*/, std::size_t /*packed_stride*/,
                               float* /*scales*/, const float* /*x*/, std::size_t /*x_stride*/,
                               int /*n_rows*/, int /*n_channels*/) {
  throw NotImplemented("ch07: quantize_int4_per_channel");
}

}  // namespace kvc::ch07
