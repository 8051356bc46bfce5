// Each op is checked twice: against a double-precision reference (is it the
// right math?) and bit for bit against a transcription of llama2.c's run.c
// (does it round the same way, so the generated text matches?).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/cpu/ops.hpp"
#include "tests/kernels/test_helpers.hpp"

namespace kvc::cpu {
namespace {

using test::expect_all_close;
using test::expect_bit_identical;
using test::random_floats;

// ---- run.c, transcribed (one row / one token at a time) ----------------------
void run_c_rmsnorm(float* o, const float* x, const float* weight, int size) {
  float ss = 0.0f;
  for (int j = 0; j < size; j++) ss += x[j] * x[j];
  ss /= size;
  ss += 1e-5f;
  ss = 1.0f / sqrtf(ss);
  for (int j = 0; j < size; j++) o[j] = weight[j] * (ss * x[j]);
}

void run_c_softmax(float* x, int size) {
  float max_val = x[0];
  for (int i = 1; i < size; i++) {
    if (x[i] > max_val) max_val = x[i];
  }
  float sum = 0.0f;
  for (int i = 0; i < size; i++) {
    x[i] = expf(x[i] - max_val);
    sum += x[i];
  }
  for (int i = 0; i < size; i++) x[i] /= sum;
}

void run_c_rope(float* q, float* k, int pos, int dim, int kv_dim, int head_size) {
  for (int i = 0; i < dim; i += 2) {
    int head_dim = i % head_size;
    float freq = 1.0f / powf(10000.0f, head_dim / (float)head_size);
    float val = pos * freq;
    float fcr = cosf(val);
    float fci = sinf(val);
    int rotn = i < kv_dim ? 2 : 1;
    for (int v = 0; v < rotn; v++) {
      float* vec = v == 0 ? q : k;
      float v0 = vec[i];
      float v1 = vec[i + 1];
      vec[i] = v0 * fcr - v1 * fci;
      vec[i + 1] = v0 * fci + v1 * fcr;
    }
  }
}

void run_c_swiglu(float* hb, const float* hb2, int hidden_dim) {
  for (int i = 0; i < hidden_dim; i++) {
    float val = hb[i];
    val *= (1.0f / (1.0f + expf(-val)));
    val *= hb2[i];
    hb[i] = val;
  }
}

// ---- tests --------------------------------------------------------------------
TEST(Rmsnorm, MatchesDoubleReferenceAndRunC) {
  constexpr int kRows = 3, kDim = 77;
  const auto x = random_floats(kRows * kDim, 1, -3.0f, 3.0f);
  const auto weight = random_floats(kDim, 2);
  std::vector<float> out(kRows * kDim);
  rmsnorm(out.data(), x.data(), weight.data(), kRows, kDim);

  std::vector<double> expected(kRows * kDim);
  std::vector<float> run_c(kRows * kDim);
  for (int i = 0; i < kRows; ++i) {
    const float* row = x.data() + i * kDim;
    double ss = 0.0;
    for (int j = 0; j < kDim; ++j) ss += double(row[j]) * row[j];
    const double inv_rms = 1.0 / std::sqrt(ss / kDim + 1e-5);
    for (int j = 0; j < kDim; ++j) expected[i * kDim + j] = weight[j] * row[j] * inv_rms;
    run_c_rmsnorm(run_c.data() + i * kDim, row, weight.data(), kDim);
  }
  expect_all_close(out, expected, 1e-6, 1e-5);
  expect_bit_identical(out.data(), run_c.data(), out.size());
}

TEST(Softmax, MatchesDoubleReferenceAndRunC) {
  for (int size : {1, 2, 9, 100}) {
    SCOPED_TRACE(testing::Message() << "size " << size);
    const auto input = random_floats(size, 3 + size, -20.0f, 20.0f);
    std::vector<float> out = input;
    softmax(out.data(), size);

    double max_val = input[0];
    for (float value : input) max_val = std::max<double>(max_val, value);
    double sum = 0.0;
    for (float value : input) sum += std::exp(value - max_val);
    std::vector<double> expected(size);
    for (int i = 0; i < size; ++i) expected[i] = std::exp(input[i] - max_val) / sum;
    expect_all_close(out, expected, 1e-7, 1e-5);

    std::vector<float> run_c = input;
    run_c_softmax(run_c.data(), size);
    expect_bit_identical(out.data(), run_c.data(), size);
  }
}

TEST(Softmax, LargeLogitsDoNotOverflow) {
  std::vector<float> logits = {1000.0f, 999.0f, -1000.0f};
  softmax(logits.data(), 3);
  const double e = std::exp(-1.0);
  expect_all_close(logits, {1.0 / (1.0 + e), e / (1.0 + e), 0.0}, 1e-7, 1e-6);
}

TEST(Rope, MatchesDoubleReferenceAndRunC) {
  struct Case {
    int n_heads, n_kv_heads, head_dim;
  };
  for (const Case& c : {Case{8, 4, 8}, Case{6, 6, 32}, Case{8, 1, 64}}) {
    SCOPED_TRACE(testing::Message()
                 << c.n_heads << "/" << c.n_kv_heads << " heads x " << c.head_dim);
    const std::vector<int> positions = {0, 1, 7, 63, 200};
    const int n = int(positions.size());
    const int q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
    const auto q_in = random_floats(std::size_t(n) * q_dim, 5);
    const auto k_in = random_floats(std::size_t(n) * kv_dim, 6);
    std::vector<float> q = q_in, k = k_in;
    rope(q.data(), k.data(), positions.data(), n, c.n_heads, c.n_kv_heads, c.head_dim);

    // Double reference: rotate pair (2j, 2j+1) of every head by pos * 10000^(-2j / head_dim).
    const auto rotated = [&](const std::vector<float>& in, int width) {
      std::vector<double> out(in.size());
      for (int i = 0; i < n; ++i) {
        for (int e = 0; e < width; e += 2) {
          const int pair = e % c.head_dim;
          const double angle = positions[i] * std::pow(10000.0, -double(pair) / c.head_dim);
          const double v0 = in[std::size_t(i) * width + e], v1 = in[std::size_t(i) * width + e + 1];
          out[std::size_t(i) * width + e] = v0 * std::cos(angle) - v1 * std::sin(angle);
          out[std::size_t(i) * width + e + 1] = v0 * std::sin(angle) + v1 * std::cos(angle);
        }
      }
      return out;
    };
    // Float angles at position 200 carry ~1e-5 absolute error.
    expect_all_close(q, rotated(q_in, q_dim), 1e-4, 1e-5);
    expect_all_close(k, rotated(k_in, kv_dim), 1e-4, 1e-5);

    std::vector<float> run_c_q = q_in, run_c_k = k_in;
    for (int i = 0; i < n; ++i) {
      run_c_rope(run_c_q.data() + std::size_t(i) * q_dim, run_c_k.data() + std::size_t(i) * kv_dim,
                 positions[i], q_dim, kv_dim, c.head_dim);
    }
    expect_bit_identical(k.data(), run_c_k.data(), k.size());
    expect_bit_identical(q.data(), run_c_q.data(), q.size());

    // One token's heads at a time (chapter 07's keys before RoPE): the same
    // bits as rope(), and the inverse turns them back up to rounding.
    std::vector<float> heads = k_in, back = k;
    for (int i = 0; i < n; ++i) {
      rope_heads(heads.data() + std::size_t(i) * kv_dim, c.n_kv_heads, c.head_dim, positions[i]);
      rope_heads(back.data() + std::size_t(i) * kv_dim, c.n_kv_heads, c.head_dim, positions[i],
                 /*inverse=*/true);
    }
    expect_bit_identical(heads.data(), k.data(), k.size());
    expect_all_close(back, std::vector<double>(k_in.begin(), k_in.end()), 1e-6, 1e-6);
  }
}

TEST(Swiglu, MatchesDoubleReferenceAndRunC) {
  constexpr int kSize = 123;
  const auto gate_in = random_floats(kSize, 7, -6.0f, 6.0f);
  const auto up = random_floats(kSize, 8);
  std::vector<float> gate = gate_in;
  swiglu(gate.data(), up.data(), kSize);

  std::vector<double> expected(kSize);
  for (int i = 0; i < kSize; ++i) {
    expected[i] = gate_in[i] / (1.0 + std::exp(-double(gate_in[i]))) * up[i];
  }
  expect_all_close(gate, expected, 1e-6, 1e-5);

  std::vector<float> run_c = gate_in;
  run_c_swiglu(run_c.data(), up.data(), kSize);
  expect_bit_identical(gate.data(), run_c.data(), kSize);
}

TEST(AddInplace, AddsElementwise) {
  constexpr int kSize = 37;
  const auto x_in = random_floats(kSize, 9);
  const auto y = random_floats(kSize, 10);
  std::vector<float> x = x_in;
  add_inplace(x.data(), y.data(), kSize);
  std::vector<double> expected(kSize);
  for (int i = 0; i < kSize; ++i) expected[i] = double(x_in[i]) + y[i];
  expect_all_close(x, expected, 0.0, 1e-7);
}

}  // namespace
}  // namespace kvc::cpu
