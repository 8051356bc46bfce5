#include "kernels/cpu/kv_quant.hpp"

#include <algorithm>
#include <cmath>

namespace kvc::cpu {

namespace {

float max_abs(const float* x, int n) {
  float m = 0.0f;
  for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

}  // namespace

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
