// The online softmax and the merge of a split-context decode kernel (see
// split_softmax.hpp).
#include "kernels/cpu/split_softmax.hpp"

#include <cmath>
#include <limits>

namespace kvc::cpu::fast {

namespace {

#if defined(__AVX2__) && defined(__FMA__)

// e^x for x <= 0 to about 2 ulp (Cephes' expf polynomial); e^x = 0 below -87.
__m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln 2, with ln 2 in two parts so r keeps its low bits.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // Times 2^n, built in the exponent bits.
  const __m256i exponent =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

// In place: scores[r] = e^(scores[r] - max) for r < n_rows; returns their sum.
float exp_and_sum(float* scores, int n_rows, float max) {
  const __m256 max_lanes = _mm256_set1_ps(max);
  __m256 sums = _mm256_setzero_ps();
  int r = 0;
  for (; r + 8 <= n_rows; r += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(scores + r), max_lanes));
    _mm256_storeu_ps(scores + r, e);
    sums = _mm256_add_ps(sums, e);
  }
  float sum = horizontal_sum(sums);
  for (; r < n_rows; ++r) {
    scores[r] = std::exp(scores[r] - max);
    sum += scores[r];
  }
  return sum;
}

float max_of(const float* x, int n) {
  float max = x[0];
  int i = 0;
  if (n >= 8) {
    __m256 lanes = _mm256_loadu_ps(x);
    for (i = 8; i + 8 <= n; i += 8) lanes = _mm256_max_ps(lanes, _mm256_loadu_ps(x + i));
    alignas(32) float lane[8];
    _mm256_store_ps(lane, lanes);
    for (float v : lane) max = std::max(max, v);
  }
  for (; i < n; ++i) max = std::max(max, x[i]);
  return max;
}

#else

float max_of(const float* x, int n) {
  return *std::max_element(x, x + n);
}

float exp_and_sum(float* scores, int n_rows, float max) {
  float sum = 0.0f;
  for (int r = 0; r < n_rows; ++r) {
    scores[r] = std::exp(scores[r] - max);
    sum += scores[r];
  }
  return sum;
}

#endif

}  // namespace

void reset_partial(const SlicePartial& partial, int n_heads, int head_dim) {
  std::fill(partial.o, partial.o + std::size_t(n_heads) * head_dim, 0.0f);
  std::fill(partial.max, partial.max + n_heads, -std::numeric_limits<float>::infinity());
  std::fill(partial.sum, partial.sum + n_heads, 0.0f);
}

void fold_chunk(const SlicePartial& partial, float* scores, int rows, float* rescale, int n_heads) {
  for (int h = 0; h < n_heads; ++h) {
    float* head_scores = scores + std::size_t(h) * kSplitChunk;
    const float chunk_max = max_of(head_scores, rows);
    const float new_max = std::max(partial.max[h], chunk_max);
    rescale[h] = std::exp(partial.max[h] - new_max);  // 0 on the first chunk
    const float chunk_sum = exp_and_sum(head_scores, rows, new_max);
    partial.sum[h] = partial.sum[h] * rescale[h] + chunk_sum;
    partial.max[h] = new_max;
  }
}

void merge_partials(float* out, std::vector<float>& partials, int slices, int n_heads,
                    int head_dim) {
  for (int h = 0; h < n_heads; ++h) {
    float global_max = -std::numeric_limits<float>::infinity();
    for (int s = 0; s < slices; ++s) {
      global_max = std::max(global_max, partial_in(partials, s, n_heads, head_dim).max[h]);
    }
    float* head_out = out + std::size_t(h) * head_dim;
    std::fill(head_out, head_out + head_dim, 0.0f);
    float total = 0.0f;
    for (int s = 0; s < slices; ++s) {
      const SlicePartial p = partial_in(partials, s, n_heads, head_dim);
      const float weight = std::exp(p.max[h] - global_max);
      total += weight * p.sum[h];
      const float* o = p.o + std::size_t(h) * head_dim;
      for (int d = 0; d < head_dim; ++d) head_out[d] += weight * o[d];
    }
    for (int d = 0; d < head_dim; ++d) head_out[d] /= total;
  }
}

}  // namespace kvc::cpu::fast
