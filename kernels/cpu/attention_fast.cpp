// The fast decode attention kernel behind attention_decode_variant 4 and
// attention_decode_paged 3: grouped (each K/V row read once for the g query
// heads of its group), vectorized, threaded, and still rounded exactly like
// attention_decode, llama2.c's loop (see attention.cpp):
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
// So it gives attention_decode's bits, on any thread count, and tests check
// that. Without AVX2 the same loops fall back to attention_rows.cpp's scalar ones.
//
// Threads: the scores are independent, so threads split the positions; the
// softmax splits by query head; the outputs sum over positions in order, so
// threads split the KV heads there. A long single sequence uses both cores
// in every pass without changing any sum's order (no split-softmax merge,
// whose rescaling would round differently).
//
// AVX-512: the build targets x86-64-v3 (AVX2), and on the machine this was
// tuned on (AMD Zen 4, which runs 512-bit ops as two 256-bit halves) wider
// vectors would not change the FMA or load throughput.
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

// Value rows summed per pass over head_dim: 32 rows of one KV head (up to
// 256 dims) stay in L1 while every query head of the group and every slice of
// head_dim passes over them.
constexpr int kValueRowsAtOnce = 32;

// Keys scored per pass: 3 blocks of 8 with up to 4 heads is 12 sums, what the
// 16 AVX registers hold next to the query broadcast and the products.
constexpr int kKeyBlocks = 3;

#if defined(__AVX2__)

// Query heads scored or summed together: their accumulators, plus the shared
// key or value vectors, fit the 16 AVX registers.
constexpr int kHeadsAtOnce = 4;

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
// group_q) and the 8 * BLOCKS keys transposed in kt (block b at kt + b * 8 *
// head_dim). HEADS * BLOCKS independent sums hide the add latency.
template <int HEADS, int BLOCKS>
void score_keys(float* scores, std::size_t scores_stride, const float* group_q, int head_dim,
                const float* kt, float scale) {
  __m256 sums[HEADS][BLOCKS];
#pragma GCC unroll 8
  for (int h = 0; h < HEADS; ++h) {
#pragma GCC unroll 8
    for (int b = 0; b < BLOCKS; ++b) sums[h][b] = _mm256_setzero_ps();
  }
  const std::size_t block_floats = std::size_t(8) * head_dim;
  for (int d = 0; d < head_dim; ++d) {
    const float* kt_d = kt + std::size_t(d) * 8;
#pragma GCC unroll 8
    for (int h = 0; h < HEADS; ++h) {
      const __m256 q_d = _mm256_broadcast_ss(group_q + std::size_t(h) * head_dim + d);
#pragma GCC unroll 8
      for (int b = 0; b < BLOCKS; ++b) {
        const __m256 key_d = _mm256_load_ps(kt_d + b * block_floats);
        sums[h][b] = _mm256_add_ps(sums[h][b], _mm256_mul_ps(q_d, key_d));
      }
    }
  }
  const __m256 scale_lanes = _mm256_set1_ps(scale);
#pragma GCC unroll 8
  for (int h = 0; h < HEADS; ++h) {
#pragma GCC unroll 8
    for (int b = 0; b < BLOCKS; ++b) {
      _mm256_storeu_ps(scores + h * scores_stride + 8 * b, _mm256_div_ps(sums[h][b], scale_lanes));
    }
  }
}

using ScoreFn = void (*)(float*, std::size_t, const float*, int, const float*, float);
// kScoreKeys[heads - 1][blocks - 1]
constexpr ScoreFn kScoreKeys[kHeadsAtOnce][kKeyBlocks] = {
    {score_keys<1, 1>, score_keys<1, 2>, score_keys<1, 3>},
    {score_keys<2, 1>, score_keys<2, 2>, score_keys<2, 3>},
    {score_keys<3, 1>, score_keys<3, 2>, score_keys<3, 3>},
    {score_keys<4, 1>, score_keys<4, 2>, score_keys<4, 3>},
};

// Largest head_dim the on-stack transposed key blocks hold.
constexpr int kMaxHeadDim = 256;

void score_group(float* scores, std::size_t scores_stride, const float* group_q, int group,
                 const float* keys, int n_rows, int head_dim, std::size_t kv_stride, float scale) {
  alignas(32) float kt[kKeyBlocks * 8 * kMaxHeadDim];
  int t = 0;
  while (t + 8 <= n_rows) {
    const int blocks = std::min(kKeyBlocks, (n_rows - t) / 8);
    for (int b = 0; b < blocks; ++b) {
      transpose_8_rows(kt + std::size_t(b) * 8 * head_dim, keys + (t + 8 * b) * kv_stride, head_dim,
                       kv_stride);
    }
    for (int h = 0; h < group; h += kHeadsAtOnce) {
      const int heads = std::min(kHeadsAtOnce, group - h);
      kScoreKeys[heads - 1][blocks - 1](scores + h * scores_stride + t, scores_stride,
                                        group_q + std::size_t(h) * head_dim, head_dim, kt, scale);
    }
    t += 8 * blocks;
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
#pragma GCC unroll 8
  for (int h = 0; h < HEADS; ++h) {
#pragma GCC unroll 8
    for (int v = 0; v < VECTORS; ++v) {
      acc[h][v] = _mm256_loadu_ps(group_out + std::size_t(h) * head_dim + 8 * v);
    }
  }
  for (int t = 0; t < n_rows; ++t) {
    __m256 value[VECTORS];
#pragma GCC unroll 8
    for (int v = 0; v < VECTORS; ++v) value[v] = _mm256_loadu_ps(values + t * kv_stride + 8 * v);
#pragma GCC unroll 8
    for (int h = 0; h < HEADS; ++h) {
      const __m256 weight = _mm256_broadcast_ss(weights + h * weights_stride + t);
#pragma GCC unroll 8
      for (int v = 0; v < VECTORS; ++v) {
        acc[h][v] = _mm256_add_ps(acc[h][v], _mm256_mul_ps(weight, value[v]));
      }
    }
  }
#pragma GCC unroll 8
  for (int h = 0; h < HEADS; ++h) {
#pragma GCC unroll 8
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

namespace {

// Positions per work item: 64 rows of a Llama-3-8B layer (4 KiB each) stay in
// L2 while every KV head of the row is scored against them.
constexpr int kPositionsPerItem = 64;

// Below this many cache bytes (K and V) a step is a few microseconds of work
// and runs on the calling thread.
constexpr std::size_t kMinParallelBytes = 256 * 1024;

// Positions [first, first + rows) of the cache: consecutive rows in memory,
// starting at row_offset floats into the rows.
struct Run {
  int first, rows;
  std::size_t row_offset;
};

// The run that starts at position t, at most max_rows long and ending at `end`
// or at the end of t's block, whichever comes first.
Run run_at(const BlockRows& cache, int t, int end, int max_rows) {
  const int block = t / cache.block_size;
  const int rows = std::min({end, (block + 1) * cache.block_size, t + max_rows}) - t;
  const std::size_t slot =
      std::size_t(cache.block_table[block]) * cache.block_size + t % cache.block_size;
  return {t, rows, slot * cache.row_stride};
}

// Calls fn(run, next) for the runs covering [begin, end) in order; `next` is
// the run after `run` (rows == 0 after the last one).
template <typename Fn>
void for_each_run(const BlockRows& cache, int begin, int end, int max_rows, Fn fn) {
  Run run = run_at(cache, begin, end, max_rows);
  while (run.rows > 0) {
    const int next_first = run.first + run.rows;
    const Run next =
        next_first < end ? run_at(cache, next_first, end, max_rows) : Run{next_first, 0, 0};
    fn(run, next);
    run = next;
  }
}

}  // namespace

void decode_grouped_blocks(float* out, const float* q, const BlockRows& cache, int n_ctx,
                           int n_heads, int n_kv_heads, int head_dim, float* scores,
                           ThreadPool* pool) {
  KVC_CHECK(head_dim <= kMaxHeadDim, "cpu::attention decode: head_dim ", head_dim, " above ",
            kMaxHeadDim);
  const int group = n_heads / n_kv_heads;  // query heads per KV head
  const float scale = sqrtf(float(head_dim));
  const std::size_t cache_bytes = 2 * sizeof(float) * std::size_t(n_ctx) * cache.row_stride;
  if (cache_bytes < kMinParallelBytes) pool = nullptr;

  // The cache is [position][kv_head][head_dim]: one KV head's rows are a
  // row_stride apart (4 KiB for Llama-3-8B), so walking one KV head through
  // all positions touches a new page per row. Every pass below walks
  // positions in order and, at each, every KV head it owns: memory is read
  // front to back.
  //   scores: [kv_head][group][n_ctx] = [n_heads][n_ctx]

  // 1. Scores. Each is its own sum, so threads split the positions. Each run
  // is one scoring pass (8 * kKeyBlocks rows, ~96 KiB of K for Llama-3-8B),
  // read from memory by the first KV head and from L2 by the others.
  const auto score_positions = [&](std::int64_t item_begin, std::int64_t item_end) {
    const int begin = int(item_begin) * kPositionsPerItem;
    const int end = std::min(n_ctx, int(item_end) * kPositionsPerItem);
    for_each_run(cache, begin, end, 8 * kKeyBlocks, [&](const Run& run, const Run& next) {
      for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
        const std::size_t kv_offset = std::size_t(kv_head) * head_dim;
        prefetch_rows_part(cache.k_rows + next.row_offset, next.rows, cache.row_stride,
                           cache.row_stride, kv_head, n_kv_heads);
        score_group(scores + std::size_t(kv_head) * group * n_ctx + run.first, n_ctx,
                    q + std::size_t(kv_head) * group * head_dim, group,
                    cache.k_rows + run.row_offset + kv_offset, run.rows, head_dim, cache.row_stride,
                    scale);
      }
    });
  };
  parallel_for(pool, (n_ctx + kPositionsPerItem - 1) / kPositionsPerItem, score_positions);

  // 2. Softmax, one query head's row of scores each.
  parallel_for(pool, n_heads, [&](std::int64_t head_begin, std::int64_t head_end) {
    for (std::int64_t h = head_begin; h < head_end; ++h) softmax_exact(scores + h * n_ctx, n_ctx);
  });

  // 3. Outputs. Each output sums over positions in order, so threads split
  // the KV heads, and each walks all positions.
  const auto accumulate_kv_heads = [&](std::int64_t head_begin, std::int64_t head_end) {
    float* heads_out = out + std::size_t(head_begin) * group * head_dim;
    std::fill(heads_out, heads_out + std::size_t(head_end - head_begin) * group * head_dim, 0.0f);
    for_each_run(cache, 0, n_ctx, kValueRowsAtOnce, [&](const Run& run, const Run& next) {
      for (int kv_head = int(head_begin); kv_head < int(head_end); ++kv_head) {
        const std::size_t kv_offset = std::size_t(kv_head) * head_dim;
        prefetch_rows_part(cache.v_rows + next.row_offset + std::size_t(head_begin) * head_dim,
                           next.rows, std::size_t(head_end - head_begin) * head_dim,
                           cache.row_stride, kv_head - int(head_begin), int(head_end - head_begin));
        accumulate_group(out + std::size_t(kv_head) * group * head_dim,
                         scores + std::size_t(kv_head) * group * n_ctx + run.first, n_ctx, group,
                         cache.v_rows + run.row_offset + kv_offset, run.rows, head_dim,
                         cache.row_stride);
      }
    });
  };
  parallel_for(pool, n_kv_heads, accumulate_kv_heads);
}

}  // namespace kvc::cpu::fast
