// Row and elementwise ops. Each one is written exactly as llama2.c's run.c
// writes it (same operations, same order, float accumulators), because these
// roundings decide which token wins an argmax, and the project promises
// run.c's text byte for byte.
#include <cmath>
#include <cstddef>

#include "kernels/cpu/ops.hpp"

namespace kvc::cpu {

void rmsnorm(float* out, const float* x, const float* weight, int n, int dim) {
  for (int i = 0; i < n; ++i) {
    const float* x_row = x + std::size_t(i) * dim;
    float* out_row = out + std::size_t(i) * dim;
    float ss = 0.0f;
    for (int j = 0; j < dim; ++j) ss += x_row[j] * x_row[j];
    ss /= dim;
    ss += 1e-5f;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < dim; ++j) out_row[j] = weight[j] * (ss * x_row[j]);
  }
}

void swiglu(float* gate, const float* up, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    float val = gate[i];
    val *= (1.0f / (1.0f + expf(-val)));  // silu(x) = x * sigmoid(x)
    val *= up[i];
    gate[i] = val;
  }
}

void add_inplace(float* x, const float* y, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) x[i] += y[i];
}

void softmax(float* x, int size) {
  // Subtracting the max keeps expf from overflowing; it cancels in the ratio.
  float max_val = x[0];
  for (int i = 1; i < size; ++i) {
    if (x[i] > max_val) max_val = x[i];
  }
  float sum = 0.0f;
  for (int i = 0; i < size; ++i) {
    x[i] = expf(x[i] - max_val);
    sum += x[i];
  }
  for (int i = 0; i < size; ++i) x[i] /= sum;
}

}  // namespace kvc::cpu
