// The frame of a split-context (flash-decoding) decode kernel, shared by the
// fp32 one (attention_split.cpp) and the one over a quantized pool
// (attention_paged_quant_fast.cpp): the context is cut into one slice per
// thread, each slice keeps an online softmax per query head (running max m,
// sum l and unnormalized output o) over chunks of positions, and the slices
// are merged: out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s. The value
// update of a chunk (accumulate_rows) is shared too: only how a row is found
// and loaded differs between the two kernels.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/thread_pool.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace kvc::cpu::fast {

// Positions scored before their values are summed: a chunk's scores for
// every query head stay in L1.
constexpr int kSplitChunk = 32;

// One slice's running softmax state.
//   o: [n_heads][head_dim] unnormalized output; max, sum: [n_heads]
struct SlicePartial {
  float* o;
  float* max;
  float* sum;
};

// Starts a slice: o = 0, max = -inf, sum = 0.
void reset_partial(const SlicePartial& partial, int n_heads, int head_dim);

// Folds one chunk into the slice's softmax state: for each query head h,
// scores[h * kSplitChunk + r] (r < rows) become e^(score - new max), and
// rescale[h] = e^(old max - new max) is what o_h must be multiplied by before
// the chunk's weighted values are added.
void fold_chunk(const SlicePartial& partial, float* scores, int rows, float* rescale, int n_heads);

// Runs attend_slice(partial, begin, end) over the context [0, n_ctx) cut into
// one slice per thread of `pool` (one slice when pool is null or the step
// reads fewer than 256 KiB), then merges the slices into out: [n_heads][head_dim].
template <typename AttendSlice>
void split_context(float* out, int n_ctx, int n_heads, int head_dim, std::size_t cache_bytes,
                   ThreadPool* pool, AttendSlice attend_slice);

// The value update of one chunk, for the group's query heads j:
//   o_j = o_j * rescale[j] + sum_r weights[j * kSplitChunk + r] * row_r
// where row r's head_dim channels are rows[r] + offset ..., in any element
// type with a load8 (below, or found by argument-dependent lookup) and a
// float(code) conversion. Each value vector is loaded once for all heads.
template <typename Code>
void accumulate_rows(float* o, int group, const float* rescale, const float* weights,
                     const Code* const* rows, std::size_t offset, int n_rows, int head_dim);

// Asks for `bytes` from `first` into L2, a cache line at a time: rows of a
// paged pool, whose next block the hardware prefetcher cannot foresee.
inline void prefetch_bytes(const void* first, std::size_t bytes) {
  const auto* p = static_cast<const char*>(first);
  for (std::size_t byte = 0; byte < bytes; byte += 64) __builtin_prefetch(p + byte, 0, 2);
}

#if defined(__AVX2__) && defined(__FMA__)

inline __m256 load8(const float* p) {
  return _mm256_loadu_ps(p);
}
// Eight int8 codes as floats: sign-extended to int32, then converted (exact).
inline __m256 load8(const std::int8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

inline float horizontal_sum(__m256 a) {
  const __m128 halves = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

// The four lanes' totals of a, b, c, d, in that order.
inline __m128 horizontal_sums(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 sums = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(sums), _mm256_extractf128_ps(sums, 1));
}

#endif

// ---- implementation ------------------------------------------------------------------------

void merge_partials(float* out, std::vector<float>& partials, int slices, int n_heads,
                    int head_dim);

inline SlicePartial partial_in(std::vector<float>& partials, int slice, int n_heads, int head_dim) {
  // Per slice: o [n_heads][head_dim], then max [n_heads], then sum [n_heads].
  float* base = partials.data() + std::size_t(slice) * n_heads * (head_dim + 2);
  float* max = base + std::size_t(n_heads) * head_dim;
  return SlicePartial{base, max, max + n_heads};
}

template <typename AttendSlice>
void split_context(float* out, int n_ctx, int n_heads, int head_dim, std::size_t cache_bytes,
                   ThreadPool* pool, AttendSlice attend_slice) {
  constexpr std::size_t kMinParallelBytes = 256 * 1024;  // below: a few microseconds of work
  const int slices = (pool == nullptr || cache_bytes < kMinParallelBytes)
                         ? 1
                         : std::min(pool->num_threads(), std::max(1, n_ctx / kSplitChunk));
  std::vector<float> partials(std::size_t(slices) * n_heads * (head_dim + 2));
  parallel_for(pool, slices, [&](std::int64_t slice_begin, std::int64_t slice_end) {
    for (int s = int(slice_begin); s < int(slice_end); ++s) {
      const SlicePartial partial = partial_in(partials, s, n_heads, head_dim);
      reset_partial(partial, n_heads, head_dim);
      attend_slice(partial, int(std::int64_t(n_ctx) * s / slices),
                   int(std::int64_t(n_ctx) * (s + 1) / slices));
    }
  });
  merge_partials(out, partials, slices, n_heads, head_dim);
}

template <typename Code>
void accumulate_rows_scalar(float* o, int group, const float* rescale, const float* weights,
                            const Code* const* rows, std::size_t offset, int n_rows, int head_dim) {
  for (int j = 0; j < group; ++j) {
    float* head_o = o + std::size_t(j) * head_dim;
    for (int d = 0; d < head_dim; ++d) {
      float sum = head_o[d] * rescale[j];
      for (int r = 0; r < n_rows; ++r) {
        sum += weights[j * kSplitChunk + r] * float(rows[r][offset + d]);
      }
      head_o[d] = sum;
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__)

// The value update for HEADS heads, sixteen output dimensions a step, each
// row's values loaded once for all heads: load_values(r, d, v0, v1) puts row
// r's dimensions d..d+15 into v0 and v1 (as floats, scaled if the row is).
// HEADS heads x 2 accumulators: 8 independent FMA chains for 4 heads.
// (load_values should capture by value: the output stores may alias
// anything, so a captured reference would be reloaded after each one.)
template <int HEADS, typename LoadValues>
void accumulate_heads(float* o, int head_dim, const float* rescale, const float* weights,
                      int n_rows, LoadValues load_values) {
  for (int d = 0; d < head_dim; d += 16) {
    __m256 a[HEADS], b[HEADS];
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) {
      const __m256 scale = _mm256_set1_ps(rescale[j]);
      a[j] = _mm256_mul_ps(_mm256_loadu_ps(o + std::size_t(j) * head_dim + d), scale);
      b[j] = _mm256_mul_ps(_mm256_loadu_ps(o + std::size_t(j) * head_dim + d + 8), scale);
    }
    for (int r = 0; r < n_rows; ++r) {
      __m256 v0, v1;
      load_values(r, d, v0, v1);
#pragma GCC unroll 4
      for (int j = 0; j < HEADS; ++j) {
        const __m256 w = _mm256_broadcast_ss(weights + j * kSplitChunk + r);
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

template <int HEADS, typename Code>
void accumulate_rows_heads(float* o, int head_dim, const float* rescale, const float* weights,
                           const Code* const* rows, std::size_t offset, int n_rows) {
  accumulate_heads<HEADS>(o, head_dim, rescale, weights, n_rows,
                          [rows, offset](int r, int d, __m256& v0, __m256& v1) {
                            const Code* value = rows[r] + offset + d;
                            v0 = load8(value);
                            v1 = load8(value + 8);
                          });
}

template <typename Code>
void accumulate_rows(float* o, int group, const float* rescale, const float* weights,
                     const Code* const* rows, std::size_t offset, int n_rows, int head_dim) {
  if (head_dim % 16 != 0) {
    accumulate_rows_scalar(o, group, rescale, weights, rows, offset, n_rows, head_dim);
    return;
  }
  constexpr int kHeads = 4;
  constexpr void (*kByHeads[kHeads])(float*, int, const float*, const float*, const Code* const*,
                                     std::size_t, int) = {
      accumulate_rows_heads<1, Code>, accumulate_rows_heads<2, Code>,
      accumulate_rows_heads<3, Code>, accumulate_rows_heads<4, Code>};
  for (int j = 0; j < group; j += kHeads) {
    kByHeads[std::min(kHeads, group - j) - 1](o + std::size_t(j) * head_dim, head_dim, rescale + j,
                                              weights + j * kSplitChunk, rows, offset, n_rows);
  }
}

#else

template <typename Code>
void accumulate_rows(float* o, int group, const float* rescale, const float* weights,
                     const Code* const* rows, std::size_t offset, int n_rows, int head_dim) {
  accumulate_rows_scalar(o, group, rescale, weights, rows, offset, n_rows, head_dim);
}

#endif

}  // namespace kvc::cpu::fast
