// The split-context decode kernel behind attention_decode_variant 5 and
// attention_decode_paged 4 (flash-decoding on the CPU). It does not keep
// llama2.c's rounding, so it is tested by tolerance against a double-precision
// reference, and the bit-exact kernels stay the default:
//
//   - the context is cut into one slice per thread; each slice walks its
//     positions in chunks, in position order, every KV head at each chunk;
//   - scores are FMA dot products over head_dim (eight dims per lane, then a
//     horizontal sum), each K row read once for the group's query heads;
//   - softmax is online: a running max m, sum l and unnormalized output o per
//     query head, rescaled by exp(m_old - m_new) when the max grows, with a
//     vector exp;
//   - the slices are merged: out = sum_s exp(m_s - M) o_s / sum_s exp(m_s - M) l_s.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/thread_pool.hpp"
#include "kernels/cpu/attention_rows.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace kvc::cpu::fast {

namespace {

// Positions scored before their values are summed: the chunk's scores for
// every query head stay in L1.
constexpr int kChunk = 32;
// Below this many cache bytes (K and V) the step runs on the calling thread.
constexpr std::size_t kMinParallelBytes = 256 * 1024;

// For the group's query heads j: o_j[d] = o_j[d] * rescale[j] + sum_r
// weights[j * kChunk + r] * values[r * kv_stride + d].
void accumulate_chunk_scalar(float* o, int group, const float* rescale, const float* weights,
                             const float* values, int n_rows, int head_dim, std::size_t kv_stride) {
  for (int j = 0; j < group; ++j) {
    float* head_o = o + std::size_t(j) * head_dim;
    for (int d = 0; d < head_dim; ++d) {
      float sum = head_o[d] * rescale[j];
      for (int r = 0; r < n_rows; ++r) sum += weights[j * kChunk + r] * values[r * kv_stride + d];
      head_o[d] = sum;
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__)

float horizontal_sum(__m256 a) {
  const __m128 halves = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

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

// Query heads scored or summed together: 4 heads x 2 accumulators = 8
// independent FMA chains, enough to hide FMA latency.
constexpr int kHeadsAtOnce = 4;

// scores[j * kChunk + r] = (q_j . k_r) / scale for HEADS query heads j and
// the n_rows key rows (row r at keys + r * kv_stride); head_dim % 16 == 0.
template <int HEADS>
void score_heads(float* scores, const float* group_q, const float* keys, int n_rows, int head_dim,
                 std::size_t kv_stride, float scale) {
  for (int r = 0; r < n_rows; ++r) {
    const float* key = keys + r * kv_stride;
    __m256 even[HEADS], odd[HEADS];
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) even[j] = odd[j] = _mm256_setzero_ps();
    for (int d = 0; d < head_dim; d += 16) {
      const __m256 k0 = _mm256_loadu_ps(key + d), k1 = _mm256_loadu_ps(key + d + 8);
#pragma GCC unroll 4
      for (int j = 0; j < HEADS; ++j) {
        const float* q = group_q + std::size_t(j) * head_dim + d;
        even[j] = _mm256_fmadd_ps(_mm256_loadu_ps(q), k0, even[j]);
        odd[j] = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8), k1, odd[j]);
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) {
      scores[j * kChunk + r] = horizontal_sum(_mm256_add_ps(even[j], odd[j])) / scale;
    }
  }
}

using ScoreHeadsFn = void (*)(float*, const float*, const float*, int, int, std::size_t, float);
constexpr ScoreHeadsFn kScoreHeads[kHeadsAtOnce] = {score_heads<1>, score_heads<2>, score_heads<3>,
                                                    score_heads<4>};

void score_chunk(float* scores, const float* group_q, int group, const float* keys, int n_rows,
                 int head_dim, std::size_t kv_stride, float scale) {
  if (head_dim % 16 == 0) {
    for (int j = 0; j < group; j += kHeadsAtOnce) {
      const int heads = std::min(kHeadsAtOnce, group - j);
      kScoreHeads[heads - 1](scores + j * kChunk, group_q + std::size_t(j) * head_dim, keys, n_rows,
                             head_dim, kv_stride, scale);
    }
    return;
  }
  const int d_vector = head_dim - head_dim % 8;
  for (int r = 0; r < n_rows; ++r) {
    const float* key = keys + r * kv_stride;
    for (int j = 0; j < group; ++j) {
      const float* q = group_q + std::size_t(j) * head_dim;
      __m256 acc = _mm256_setzero_ps();
      for (int d = 0; d < d_vector; d += 8) {
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(key + d), acc);
      }
      float sum = horizontal_sum(acc);
      for (int d = d_vector; d < head_dim; ++d) sum += q[d] * key[d];
      scores[j * kChunk + r] = sum / scale;
    }
  }
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

// For HEADS query heads j: o_j[d] = o_j[d] * rescale[j] + sum_r
// weights[j * kChunk + r] * values[r * kv_stride + d], sixteen d at a time;
// each value vector loaded once for all HEADS heads.
template <int HEADS>
void accumulate_heads(float* o, int head_dim, const float* rescale, const float* weights,
                      const float* values, int n_rows, std::size_t kv_stride) {
  for (int d = 0; d < head_dim; d += 16) {
    __m256 a[HEADS], b[HEADS];
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) {
      const __m256 scale = _mm256_set1_ps(rescale[j]);
      a[j] = _mm256_mul_ps(_mm256_loadu_ps(o + std::size_t(j) * head_dim + d), scale);
      b[j] = _mm256_mul_ps(_mm256_loadu_ps(o + std::size_t(j) * head_dim + d + 8), scale);
    }
    for (int r = 0; r < n_rows; ++r) {
      const __m256 v0 = _mm256_loadu_ps(values + r * kv_stride + d);
      const __m256 v1 = _mm256_loadu_ps(values + r * kv_stride + d + 8);
#pragma GCC unroll 4
      for (int j = 0; j < HEADS; ++j) {
        const __m256 w = _mm256_broadcast_ss(weights + j * kChunk + r);
        a[j] = _mm256_fmadd_ps(w, v0, a[j]);
        b[j] = _mm256_fmadd_ps(w, v1, b[j]);
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) {
      _mm256_storeu_ps(o + std::size_t(j) * head_dim + d, a[j]);
      _mm256_storeu_ps(o + std::size_t(j) * head_dim + d + 8, b[j]);
    }
  }
}

using AccumulateHeadsFn = void (*)(float*, int, const float*, const float*, const float*, int,
                                   std::size_t);
constexpr AccumulateHeadsFn kAccumulateHeads[kHeadsAtOnce] = {
    accumulate_heads<1>, accumulate_heads<2>, accumulate_heads<3>, accumulate_heads<4>};

// accumulate_heads for `group` heads and any head_dim.
void accumulate_chunk(float* o, int group, const float* rescale, const float* weights,
                      const float* values, int n_rows, int head_dim, std::size_t kv_stride) {
  if (head_dim % 16 == 0) {
    for (int j = 0; j < group; j += kHeadsAtOnce) {
      const int heads = std::min(kHeadsAtOnce, group - j);
      kAccumulateHeads[heads - 1](o + std::size_t(j) * head_dim, head_dim, rescale + j,
                                  weights + j * kChunk, values, n_rows, kv_stride);
    }
    return;
  }
  accumulate_chunk_scalar(o, group, rescale, weights, values, n_rows, head_dim, kv_stride);
}

#else  // portable versions of the same steps

void score_chunk(float* scores, const float* group_q, int group, const float* keys, int n_rows,
                 int head_dim, std::size_t kv_stride, float scale) {
  for (int r = 0; r < n_rows; ++r) {
    for (int j = 0; j < group; ++j) {
      float sum = 0.0f;
      for (int d = 0; d < head_dim; ++d) sum += group_q[j * head_dim + d] * keys[r * kv_stride + d];
      scores[j * kChunk + r] = sum / scale;
    }
  }
}

float exp_and_sum(float* scores, int n_rows, float max) {
  float sum = 0.0f;
  for (int r = 0; r < n_rows; ++r) {
    scores[r] = std::exp(scores[r] - max);
    sum += scores[r];
  }
  return sum;
}

void accumulate_chunk(float* o, int group, const float* rescale, const float* weights,
                      const float* values, int n_rows, int head_dim, std::size_t kv_stride) {
  accumulate_chunk_scalar(o, group, rescale, weights, values, n_rows, head_dim, kv_stride);
}

#endif

// One slice's running softmax state per query head.
//   o: [n_heads][head_dim] unnormalized output; max, sum: [n_heads]
struct Partial {
  float* o;
  float* max;
  float* sum;
};

// Positions [begin, end) into `partial`, chunk by chunk.
void attend_slice(const Partial& partial, const float* q, const BlockRows& cache, int begin,
                  int end, int n_heads, int n_kv_heads, int head_dim) {
  const int group = n_heads / n_kv_heads;
  const float scale = std::sqrt(float(head_dim));
  std::fill(partial.o, partial.o + std::size_t(n_heads) * head_dim, 0.0f);
  std::fill(partial.max, partial.max + n_heads, -std::numeric_limits<float>::infinity());
  std::fill(partial.sum, partial.sum + n_heads, 0.0f);
  std::vector<float> scores(std::size_t(n_heads) * kChunk);  // [n_heads][kChunk]
  std::vector<float> rescale(n_heads);
  // The chunk of positions starting at t: its rows and where they start.
  const auto chunk_at = [&](int t, int* rows, std::size_t* row_offset) {
    const int block = t / cache.block_size;
    *rows = std::min({end, (block + 1) * cache.block_size, t + kChunk}) - t;
    *row_offset =
        (std::size_t(cache.block_table[block]) * cache.block_size + t % cache.block_size) *
        cache.row_stride;
  };
  for (int t = begin; t < end;) {
    int rows = 0, next_rows = 0;
    std::size_t row_offset = 0, next_offset = 0;
    chunk_at(t, &rows, &row_offset);
    if (t + rows < end) chunk_at(t + rows, &next_rows, &next_offset);
    // 1. Scores, row by row through memory: position r's K for every KV head
    // (a row is contiguous), while the same position's V row and the next
    // chunk's K row are fetched for later.
    for (int r = 0; r < rows; ++r) {
      const std::size_t row = row_offset + r * cache.row_stride;
      prefetch_rows_part(cache.v_rows + row, 1, cache.row_stride, cache.row_stride, 0, 1);
      if (r < next_rows) {
        prefetch_rows_part(cache.k_rows + next_offset + r * cache.row_stride, 1, cache.row_stride,
                           cache.row_stride, 0, 1);
      }
      for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
        score_chunk(scores.data() + std::size_t(kv_head) * group * kChunk + r,
                    q + std::size_t(kv_head) * group * head_dim, group,
                    cache.k_rows + row + std::size_t(kv_head) * head_dim, 1, head_dim,
                    cache.row_stride, scale);
      }
    }
    // 2. The online softmax: fold the chunk into each head's running max and sum.
    for (int h = 0; h < n_heads; ++h) {
      float* head_scores = scores.data() + std::size_t(h) * kChunk;
      const float chunk_max = *std::max_element(head_scores, head_scores + rows);
      const float new_max = std::max(partial.max[h], chunk_max);
      rescale[h] = std::exp(partial.max[h] - new_max);  // 0 on the first chunk
      const float chunk_sum = exp_and_sum(head_scores, rows, new_max);
      partial.sum[h] = partial.sum[h] * rescale[h] + chunk_sum;
      partial.max[h] = new_max;
    }
    // 3. Values, each KV head's rows once for its group.
    for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
      const std::size_t first_head = std::size_t(kv_head) * group;
      accumulate_chunk(partial.o + first_head * head_dim, group, rescale.data() + first_head,
                       scores.data() + first_head * kChunk,
                       cache.v_rows + row_offset + std::size_t(kv_head) * head_dim, rows, head_dim,
                       cache.row_stride);
    }
    t += rows;
  }
}

}  // namespace

void decode_split_context(float* out, const float* q, const BlockRows& cache, int n_ctx,
                          int n_heads, int n_kv_heads, int head_dim, ThreadPool* pool) {
  const std::size_t cache_bytes = 2 * sizeof(float) * std::size_t(n_ctx) * cache.row_stride;
  const int slices = (pool == nullptr || cache_bytes < kMinParallelBytes)
                         ? 1
                         : std::min(pool->num_threads(), std::max(1, n_ctx / kChunk));
  // Per slice: o [n_heads][head_dim], then max [n_heads], then sum [n_heads].
  const std::size_t slice_floats = std::size_t(n_heads) * (head_dim + 2);
  std::vector<float> partials(std::size_t(slices) * slice_floats);
  const auto partial_of = [&](int s) {
    float* base = partials.data() + std::size_t(s) * slice_floats;
    float* max = base + std::size_t(n_heads) * head_dim;
    return Partial{base, max, max + n_heads};
  };
  parallel_for(pool, slices, [&](std::int64_t slice_begin, std::int64_t slice_end) {
    for (int s = int(slice_begin); s < int(slice_end); ++s) {
      const int begin = int(std::int64_t(n_ctx) * s / slices);
      const int end = int(std::int64_t(n_ctx) * (s + 1) / slices);
      attend_slice(partial_of(s), q, cache, begin, end, n_heads, n_kv_heads, head_dim);
    }
  });

  // Merge: out_h = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s, M = max_s m_s.
  for (int h = 0; h < n_heads; ++h) {
    float global_max = -std::numeric_limits<float>::infinity();
    for (int s = 0; s < slices; ++s) global_max = std::max(global_max, partial_of(s).max[h]);
    float* head_out = out + std::size_t(h) * head_dim;
    std::fill(head_out, head_out + head_dim, 0.0f);
    float total = 0.0f;
    for (int s = 0; s < slices; ++s) {
      const Partial p = partial_of(s);
      const float weight = std::exp(p.max[h] - global_max);
      total += weight * p.sum[h];
      const float* o = p.o + std::size_t(h) * head_dim;
      for (int d = 0; d < head_dim; ++d) head_out[d] += weight * o[d];
    }
    for (int d = 0; d < head_dim; ++d) head_out[d] /= total;
  }
}

}  // namespace kvc::cpu::fast
