// Rotary position embedding, rounded exactly as llama2.c's run.c.
//
// This file is compiled without auto-vectorization under GCC (see
// CMakeLists.txt): GCC 12 vectorizes the rotation's (mul, mul, sub) / (mul,
// mul, add) pair into vfmaddsub even under -ffp-contract=off, which rounds
// once instead of twice and changes the generated text.
#include <cmath>
#include <cstddef>

#include "kernels/cpu/ops.hpp"

namespace kvc::cpu {

namespace {

// The angle of pair (pair, pair + 1) at `pos`, as run.c computes it.
struct PairAngle {
  float cos, sin;
};
PairAngle pair_angle(int pair, int head_dim, int pos) {
  const float freq = 1.0f / powf(10000.0f, pair / float(head_dim));
  const float val = pos * freq;
  return {cosf(val), sinf(val)};
}

}  // namespace

// run.c loops over i in [0, dim) step 2 and recomputes the angle from
// i % head_size for every head; the angle depends only on the pair index
// within the head, so it is computed once per pair and applied to every head.
// Same inputs to powf/cosf/sinf, same values. `pair` is the offset of the
// rotated pair (pair, pair + 1) inside a head.
void rope(float* q, float* k, const int* positions, int n, int n_heads, int n_kv_heads,
          int head_dim) {
  const std::size_t q_dim = std::size_t(n_heads) * head_dim;
  const std::size_t kv_dim = std::size_t(n_kv_heads) * head_dim;
  for (int i = 0; i < n; ++i) {
    float* q_row = q + i * q_dim;
    float* k_row = k + i * kv_dim;
    const int pos = positions[i];
    for (int pair = 0; pair < head_dim; pair += 2) {
      const PairAngle angle = pair_angle(pair, head_dim, pos);
      const float fcr = angle.cos;
      const float fci = angle.sin;
      const auto rotate = [&](float* vec) {
        const float v0 = vec[pair];
        const float v1 = vec[pair + 1];
        vec[pair] = v0 * fcr - v1 * fci;
        vec[pair + 1] = v0 * fci + v1 * fcr;
      };
      for (int h = 0; h < n_heads; ++h) rotate(q_row + std::size_t(h) * head_dim);
      for (int h = 0; h < n_kv_heads; ++h) rotate(k_row + std::size_t(h) * head_dim);
    }
  }
}

void rope_heads(float* x, int n_heads, int head_dim, int position, bool inverse) {
  for (int pair = 0; pair < head_dim; pair += 2) {
    const PairAngle angle = pair_angle(pair, head_dim, position);
    const float fcr = angle.cos;
    const float fci = inverse ? -angle.sin : angle.sin;  // the transpose turns back
    for (int h = 0; h < n_heads; ++h) {
      float* vec = x + std::size_t(h) * head_dim;
      const float v0 = vec[pair];
      const float v1 = vec[pair + 1];
      vec[pair] = v0 * fcr - v1 * fci;
      vec[pair + 1] = v0 * fci + v1 * fcr;
    }
  }
}

}  // namespace kvc::cpu
