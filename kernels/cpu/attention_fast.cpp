// The fast decode attention kernels: grouped (each K/V row read once for the g
// query heads of its group), vectorized, threaded over KV heads, and still
// rounded exactly like attention_decode, llama2.c's loop (see attention.cpp):
//
//   scores: eight positions side by side, one per AVX lane. Lane r sums
//           q[d] * k_r[d] over d = 0, 1, ... in order (multiply, then add: no
//           FMA), which is the very sum llama2.c computes for position r; the
//           eight keys are transposed in L1 so that lane r reads k_r.
//   softmax: the max and the final division are exact in any order and run
//           eight wide; expf and the running sum stay scalar and in order.
//   output: for each position t in order, out[d] += a_t * v_t[d], eight d
//           at a time: each lane is its own in-order sum.
//
// So every variant here gives attention_decode's bits, and tests check that.
// Without AVX2 the same loops fall back to attention_rows.cpp's scalar ones.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "common/check.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/attention_rows.hpp"
#include "kernels/cpu/ops.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace kvc::cpu::fast {

namespace {

#if defined(__AVX2__)

// Query heads scored or summed together: their accumulators, plus the shared
// key or value vectors, fit the 16 AVX registers.
constexpr int kHeadsAtOnce = 4;
// Value rows summed per pass over head_dim: 32 rows of up to 256 dims stay in L1.
constexpr int kValueRowsAtOnce = 32;

// kt[d * 8 + r] = keys[r * kv_stride + d] for the 8 rows r and d < head_dim.
void transpose_8_rows(float* kt, const float* keys, int head_dim, std::size_t kv_stride) {
  int d = 0;
  for (; d + 8 <= head_dim; d += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(keys + i * kv_stride + d);
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    float* column = kt + std::size_t(d) * 8;
    _mm256_store_ps(column + 0, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_store_ps(column + 8, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_store_ps(column + 16, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_store_ps(column + 24, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_store_ps(column + 32, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_store_ps(column + 40, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_store_ps(column + 48, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_store_ps(column + 56, _mm256_permute2f128_ps(u3, u7, 0x31));
  }
  for (; d < head_dim; ++d) {
    for (int i = 0; i < 8; ++i) kt[std::size_t(d) * 8 + i] = keys[i * kv_stride + d];
  }
}

// scores[h * scores_stride + r] = (q_h . k_r) / scale for HEADS heads (rows of
// group_q) and the 8 transposed keys in kt.
template <int HEADS>
void score_8_keys(float* scores, std::size_t scores_stride, const float* group_q, int head_dim,
                  const float* kt, float scale) {
  __m256 sums[HEADS];
  for (int h = 0; h < HEADS; ++h) sums[h] = _mm256_setzero_ps();
  for (int d = 0; d < head_dim; ++d) {
    const __m256 key_d = _mm256_load_ps(kt + std::size_t(d) * 8);
    for (int h = 0; h < HEADS; ++h) {
      const __m256 q_d = _mm256_broadcast_ss(group_q + std::size_t(h) * head_dim + d);
      sums[h] = _mm256_add_ps(sums[h], _mm256_mul_ps(q_d, key_d));
    }
  }
  const __m256 scale_lanes = _mm256_set1_ps(scale);
  for (int h = 0; h < HEADS; ++h) {
    _mm256_storeu_ps(scores + h * scores_stride, _mm256_div_ps(sums[h], scale_lanes));
  }
}

using ScoreFn = void (*)(float*, std::size_t, const float*, int, const float*, float);
constexpr ScoreFn kScore8Keys[kHeadsAtOnce] = {score_8_keys<1>, score_8_keys<2>, score_8_keys<3>,
                                               score_8_keys<4>};

// Largest head_dim the on-stack transposed key block holds.
constexpr int kMaxHeadDim = 512;

void score_group(float* scores, std::size_t scores_stride, const float* group_q, int group,
                 const float* keys, int n_rows, int head_dim, std::size_t kv_stride, float scale) {
  alignas(32) float kt[8 * kMaxHeadDim];
  int t = 0;
  for (; t + 8 <= n_rows; t += 8) {
    transpose_8_rows(kt, keys + t * kv_stride, head_dim, kv_stride);
    for (int h = 0; h < group; h += kHeadsAtOnce) {
      const int heads = std::min(kHeadsAtOnce, group - h);
      kScore8Keys[heads - 1](scores + h * scores_stride + t, scores_stride,
                             group_q + std::size_t(h) * head_dim, head_dim, kt, scale);
    }
  }
  if (t < n_rows) {
    rows::score_group(scores + t, scores_stride, group_q, group, keys + t * kv_stride, n_rows - t,
                      head_dim, kv_stride, scale);
  }
}

// group_out[h][d0 .. d0 + 8 * VECTORS) += sum over the n_rows rows, in order,
// of weights[h * weights_stride + t] * values[t * kv_stride + d0 ...], HEADS heads.
template <int HEADS, int VECTORS>
void accumulate_slice(float* group_out, int head_dim, const float* weights,
                      std::size_t weights_stride, const float* values, int n_rows,
                      std::size_t kv_stride) {
  __m256 acc[HEADS][VECTORS];
  for (int h = 0; h < HEADS; ++h) {
    for (int v = 0; v < VECTORS; ++v) {
      acc[h][v] = _mm256_loadu_ps(group_out + std::size_t(h) * head_dim + 8 * v);
    }
  }
  for (int t = 0; t < n_rows; ++t) {
    __m256 value[VECTORS];
    for (int v = 0; v < VECTORS; ++v) value[v] = _mm256_loadu_ps(values + t * kv_stride + 8 * v);
    for (int h = 0; h < HEADS; ++h) {
      const __m256 weight = _mm256_broadcast_ss(weights + h * weights_stride + t);
      for (int v = 0; v < VECTORS; ++v) {
        acc[h][v] = _mm256_add_ps(acc[h][v], _mm256_mul_ps(weight, value[v]));
      }
    }
  }
  for (int h = 0; h < HEADS; ++h) {
    for (int v = 0; v < VECTORS; ++v) {
      _mm256_storeu_ps(group_out + std::size_t(h) * head_dim + 8 * v, acc[h][v]);
    }
  }
}

using AccumulateFn = void (*)(float*, int, const float*, std::size_t, const float*, int,
                              std::size_t);
// kAccumulate[heads - 1][vectors - 1]
constexpr AccumulateFn kAccumulate[kHeadsAtOnce][2] = {
    {accumulate_slice<1, 1>, accumulate_slice<1, 2>},
    {accumulate_slice<2, 1>, accumulate_slice<2, 2>},
    {accumulate_slice<3, 1>, accumulate_slice<3, 2>},
    {accumulate_slice<4, 1>, accumulate_slice<4, 2>},
};

void accumulate_group(float* group_out, const float* weights, std::size_t weights_stride, int group,
                      const float* values, int n_rows, int head_dim, std::size_t kv_stride) {
  const int d_vector = head_dim - head_dim % 8;
  for (int t = 0; t < n_rows; t += kValueRowsAtOnce) {
    const int rows = std::min(kValueRowsAtOnce, n_rows - t);
    const float* row_values = values + t * kv_stride;
    for (int h = 0; h < group; h += kHeadsAtOnce) {
      const int heads = std::min(kHeadsAtOnce, group - h);
      float* head_out = group_out + std::size_t(h) * head_dim;
      const float* head_weights = weights + h * weights_stride + t;
      for (int d = 0; d < d_vector; d += 16) {
        const int vectors = std::min(2, (d_vector - d) / 8);
        kAccumulate[heads - 1][vectors - 1](head_out + d, head_dim, head_weights, weights_stride,
                                            row_values + d, rows, kv_stride);
      }
      // The d % 8 leftover dimensions, in the same order.
      for (int r = 0; r < rows; ++r) {
        for (int j = 0; j < heads; ++j) {
          const float weight = head_weights[j * weights_stride + r];
          for (int d = d_vector; d < head_dim; ++d) {
            head_out[std::size_t(j) * head_dim + d] += weight * row_values[r * kv_stride + d];
          }
        }
      }
    }
  }
}

// cpu::softmax's bits: the max and the division do not depend on order.
void softmax_exact(float* x, int size) {
  const int size_vector = size - size % 8;
  float max_val = x[0];
  if (size_vector > 0) {
    __m256 max_lanes = _mm256_loadu_ps(x);
    for (int i = 8; i < size_vector; i += 8)
      max_lanes = _mm256_max_ps(max_lanes, _mm256_loadu_ps(x + i));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, max_lanes);
    for (float lane : lanes) max_val = std::max(max_val, lane);
  }
  for (int i = size_vector; i < size; ++i) max_val = std::max(max_val, x[i]);
  float sum = 0.0f;
  for (int i = 0; i < size; ++i) {
    x[i] = expf(x[i] - max_val);
    sum += x[i];
  }
  const __m256 sum_lanes = _mm256_set1_ps(sum);
  for (int i = 0; i < size_vector; i += 8) {
    _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_loadu_ps(x + i), sum_lanes));
  }
  for (int i = size_vector; i < size; ++i) x[i] /= sum;
}

#else  // no AVX2: the scalar loops, same bits

void score_group(float* scores, std::size_t scores_stride, const float* group_q, int group,
                 const float* keys, int n_rows, int head_dim, std::size_t kv_stride, float scale) {
  rows::score_group(scores, scores_stride, group_q, group, keys, n_rows, head_dim, kv_stride,
                    scale);
}
void accumulate_group(float* group_out, const float* weights, std::size_t weights_stride, int group,
                      const float* values, int n_rows, int head_dim, std::size_t kv_stride) {
  rows::accumulate_group(group_out, weights, weights_stride, group, values, n_rows, head_dim,
                         kv_stride);
}
void softmax_exact(float* x, int size) {
  softmax(x, size);
}
constexpr int kMaxHeadDim = 1 << 30;

#endif

}  // namespace

void decode_grouped_blocks(float* out, const float* q, const BlockRows& cache, int n_ctx,
                           int n_heads, int n_kv_heads, int head_dim, float* scores,
                           ThreadPool* pool) {
  KVC_CHECK(head_dim <= kMaxHeadDim, "cpu::attention decode: head_dim ", head_dim, " above ",
            kMaxHeadDim);
  const int group = n_heads / n_kv_heads;  // query heads per KV head
  const float scale = sqrtf(float(head_dim));
  const int num_blocks = (n_ctx + cache.block_size - 1) / cache.block_size;
  const auto first_position = [&](int b) { return b * cache.block_size; };
  const auto rows_in = [&](int b) { return std::min(cache.block_size, n_ctx - first_position(b)); };
  const auto row_of = [&](int t) {
    const std::size_t slot =
        std::size_t(cache.block_table[t / cache.block_size]) * cache.block_size +
        t % cache.block_size;
    return slot * cache.row_stride;
  };

  // KV heads are independent: each thread takes whole ones, with its own
  // slice of scores, and so never shares a cache line it writes.
  const auto attend_kv_heads = [&](std::int64_t head_begin, std::int64_t head_end) {
    for (int kv_head = int(head_begin); kv_head < int(head_end); ++kv_head) {
      // group_q, group_out: [group][head_dim]; head_scores: [group][n_ctx]
      const float* group_q = q + std::size_t(kv_head) * group * head_dim;
      float* group_out = out + std::size_t(kv_head) * group * head_dim;
      float* head_scores = scores + std::size_t(kv_head) * group * n_ctx;
      const std::size_t kv_offset = std::size_t(kv_head) * head_dim;

      for (int b = 0; b < num_blocks; ++b) {
        score_group(head_scores + first_position(b), n_ctx, group_q, group,
                    cache.k_rows + row_of(first_position(b)) + kv_offset, rows_in(b), head_dim,
                    cache.row_stride, scale);
      }
      for (int j = 0; j < group; ++j) softmax_exact(head_scores + std::size_t(j) * n_ctx, n_ctx);
      std::fill(group_out, group_out + std::size_t(group) * head_dim, 0.0f);
      for (int b = 0; b < num_blocks; ++b) {
        accumulate_group(group_out, head_scores + first_position(b), n_ctx, group,
                         cache.v_rows + row_of(first_position(b)) + kv_offset, rows_in(b), head_dim,
                         cache.row_stride);
      }
    }
  };
  parallel_for(pool, n_kv_heads, attend_kv_heads);
}

}  // namespace kvc::cpu::fast
