// Solution: chapter 07, INT8 rows and INT4 per-channel packing.
#include "chapters/07_quantization/quantize_ops.hpp"

#include <algorithm>
#include <cmath>

namespace kvc::ch07 {

float quantize_int8_row(std::int8_t* codes, const float* x, int n) {
  float max_abs = 0.0f;
  for (int i = 0; i < n; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
  const float scale = max_abs / 127.0f;
  for (int i = 0; i < n; ++i) {
    // x / scale is within [-127, 127] up to rounding; the clamp keeps it there.
    const float q = scale > 0 ? std::nearbyint(x[i] / scale) : 0.0f;
    codes[i] = static_cast<std::int8_t>(std::clamp(q, -127.0f, 127.0f));
  }
  return scale;
}

void dequantize_int8_row(float* x, const std::int8_t* codes, float scale, int n) {
  for (int i = 0; i < n; ++i) x[i] = float(codes[i]) * scale;
}

void quantize_int4_per_channel(std::uint8_t* packed, std::size_t packed_stride, float* scales,
                               const float* x, std::size_t x_stride, int n_rows, int n_channels) {
  for (int c = 0; c < n_channels; ++c) {
    float max_abs = 0.0f;
    for (int t = 0; t < n_rows; ++t) max_abs = std::max(max_abs, std::fabs(x[t * x_stride + c]));
    scales[c] = max_abs / 7.0f;
  }
  for (int t = 0; t < n_rows; ++t) {
    std::uint8_t* row = packed + t * packed_stride;
    for (int c = 0; c < n_channels; ++c) {
      const float q = scales[c] > 0 ? std::nearbyint(x[t * x_stride + c] / scales[c]) : 0.0f;
      const auto nibble =
          static_cast<std::uint8_t>(static_cast<int>(std::clamp(q, -8.0f, 7.0f)) & 0xF);
      if (c % 2 == 0) {
        row[c / 2] = nibble;
      } else {
        row[c / 2] = static_cast<std::uint8_t>(row[c / 2] | (nibble << 4));
      }
    }
  }
}

}  // namespace kvc::ch07
