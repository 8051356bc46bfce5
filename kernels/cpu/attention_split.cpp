// The split-context decode kernel behind attention_decode_variant 5 and
// attention_decode_paged 4 (flash-decoding on the CPU). It does not keep
// llama2.c's rounding, so it is tested by tolerance against a double-precision
// reference, and the bit-exact kernels stay the default:
//
//   - the context is cut into one slice per thread; each slice walks its
//     positions in chunks of 32, in position order, every KV head at each
//     chunk (a chunk's rows are found through the block table one by one, so
//     it may span blocks: 16-row blocks cost no more softmax folds than a
//     contiguous cache), and reads K and V in address order, a few rows at a
//     time: the hardware prefetcher streams each 4 KiB row once it is read
//     from its start, and the first line of the next step's rows is asked
//     for ahead of time. (On 2 MiB pages this walk, 6-8 rows side by side,
//     is what holds one core near 20 GB/s: the same bytes read row after
//     row stream at ~32; see benchmarks/README.md);
//   - scores are FMA dot products over head_dim (eight dims per lane, then a
//     horizontal sum), three K rows by up to four query heads at once, each K
//     row read once for the group's query heads;
//   - values are summed eight rows at a time into each head's output, the
//     softmax weights broadcast (split_softmax.hpp's accumulate_rows);
//   - softmax is online: a running max m, sum l and unnormalized output o per
//     query head, rescaled by exp(m_old - m_new) when the max grows, with a
//     vector exp;
//   - the slices are merged: out = sum_s exp(m_s - M) o_s / sum_s exp(m_s - M) l_s.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/cpu/attention_rows.hpp"
#include "kernels/cpu/split_softmax.hpp"

namespace kvc::cpu::fast {

namespace {

constexpr int kChunk = kSplitChunk;

// Both passes over a chunk walk its rows a few at a time, every KV head of
// those rows before the next ones, so K and V are each read as a few
// ascending streams that the hardware prefetchers follow (the previous
// version walked one KV head down 32 rows, 512 bytes of every 4 KiB, and
// prefetched whole rows in software, which held it near 0.4 of the read
// bandwidth on one core).
constexpr int kKeyRowsPerStep = 6;
constexpr int kValueRowsPerStep = 8;

// scores[j * kChunk + r] = (q_j . k_r) / scale, one sum per d in order, where
// k_r's head_dim channels are rows[r] + offset ...
void score_rows_scalar(float* scores, const float* group_q, int group, const float* const* rows,
                       std::size_t offset, int n_rows, int head_dim, float scale) {
  for (int r = 0; r < n_rows; ++r) {
    for (int j = 0; j < group; ++j) {
      float sum = 0.0f;
      for (int d = 0; d < head_dim; ++d) sum += group_q[j * head_dim + d] * rows[r][offset + d];
      scores[j * kChunk + r] = sum / scale;
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__)

// Query heads scored together (up to a group of 4 per call).
constexpr int kHeadsAtOnce = 4;
// Key rows scored together: 3 rows x 4 heads = 12 sums, each query vector
// loaded once for the 3 rows (7 loads per 12 FMAs) and the 3 key vectors and
// 12 sums in the 16 AVX registers.
constexpr int kRowsAtOnce = 3;

// scores[j * kChunk + r] = (q_j . k_r) / scale for HEADS query heads and
// ROWS key rows (k_r at rows[r] + offset); head_dim % 8 == 0.
template <int HEADS, int ROWS>
void score_rows(float* scores, const float* group_q, const float* const* rows, std::size_t offset,
                int head_dim, __m128 scale) {
  const float* keys[ROWS];
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) keys[r] = rows[r] + offset;
  __m256 sums[ROWS][kHeadsAtOnce];
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < kHeadsAtOnce; ++j) sums[r][j] = _mm256_setzero_ps();
  }
  for (int d = 0; d < head_dim; d += 8) {
    __m256 key[ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; ++r) key[r] = _mm256_loadu_ps(keys[r] + d);
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) {
      const __m256 q = _mm256_loadu_ps(group_q + std::size_t(j) * head_dim + d);
#pragma GCC unroll 4
      for (int r = 0; r < ROWS; ++r) sums[r][j] = _mm256_fmadd_ps(q, key[r], sums[r][j]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) {
    alignas(16) float row_scores[kHeadsAtOnce];
    _mm_store_ps(
        row_scores,
        _mm_div_ps(horizontal_sums(sums[r][0], sums[r][1], sums[r][2], sums[r][3]), scale));
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) scores[j * kChunk + r] = row_scores[j];
  }
}

using ScoreRowsFn = void (*)(float*, const float*, const float* const*, std::size_t, int, __m128);
template <int ROWS>
constexpr ScoreRowsFn kScoreRows[kHeadsAtOnce] = {score_rows<1, ROWS>, score_rows<2, ROWS>,
                                                  score_rows<3, ROWS>, score_rows<4, ROWS>};

// scores[j * kChunk + r] = (q_j . k_r) / scale for the group's query heads j
// and n_rows key rows (k_r at rows[r] + offset).
void score_chunk(float* scores, const float* group_q, int group, const float* const* rows,
                 std::size_t offset, int n_rows, int head_dim, float scale) {
  if (head_dim % 8 != 0) {
    score_rows_scalar(scores, group_q, group, rows, offset, n_rows, head_dim, scale);
    return;
  }
  const __m128 scale_lanes = _mm_set1_ps(scale);
  for (int j = 0; j < group; j += kHeadsAtOnce) {
    const int heads = std::min(kHeadsAtOnce, group - j);
    const float* heads_q = group_q + std::size_t(j) * head_dim;
    int r = 0;
    for (; r + kRowsAtOnce <= n_rows; r += kRowsAtOnce) {
      kScoreRows<kRowsAtOnce>[heads - 1](scores + j * kChunk + r, heads_q, rows + r, offset,
                                         head_dim, scale_lanes);
    }
    for (; r < n_rows; ++r) {
      kScoreRows<1>[heads - 1](scores + j * kChunk + r, heads_q, rows + r, offset, head_dim,
                               scale_lanes);
    }
  }
}

#else  // portable version of the same step

void score_chunk(float* scores, const float* group_q, int group, const float* const* rows,
                 std::size_t offset, int n_rows, int head_dim, float scale) {
  score_rows_scalar(scores, group_q, group, rows, offset, n_rows, head_dim, scale);
}

#endif

// Positions [begin, end) into `partial`, chunk by chunk.
void attend_slice(const SlicePartial& partial, const float* q, const BlockRows& cache, int begin,
                  int end, int n_heads, int n_kv_heads, int head_dim) {
  const int group = n_heads / n_kv_heads;
  const float scale = std::sqrt(float(head_dim));
  std::vector<float> scores(std::size_t(n_heads) * kChunk);  // [n_heads][kChunk]
  std::vector<float> rescale(n_heads);
  const std::vector<float> no_rescale(n_heads, 1.0f);
  // Asks for the first cache line of the K (or V) rows of positions
  // [first, first + count) within the slice: reading a row's page from its
  // start lets the hardware prefetcher stream the rest of it, so touching the
  // next step's rows hides the one miss per 4 KiB row it cannot foresee.
  const auto touch_rows = [&](const float* rows, int first, int count) {
    for (int p = first; p < std::min(end, first + count); ++p) {
      __builtin_prefetch(rows + cache.row_offset(p), 0, 3);
    }
  };
  for (int t = begin; t < end;) {
    // The chunk of positions starting at t, its rows found through the block
    // table: a chunk spans blocks, so small blocks cost no more folds.
    const int rows = std::min(end - t, kChunk);
    const float* key_rows[kChunk];
    const float* value_rows[kChunk];
    for (int r = 0; r < rows; ++r) {
      const std::size_t offset = cache.row_offset(t + r);
      key_rows[r] = cache.k_rows + offset;
      value_rows[r] = cache.v_rows + offset;
    }
    // 1. Scores, a few K rows at a time, each KV head's part of them once for its group.
    for (int r = 0; r < rows; r += kKeyRowsPerStep) {
      const int step_rows = std::min(kKeyRowsPerStep, rows - r);
      touch_rows(cache.k_rows, t + r + kKeyRowsPerStep, kKeyRowsPerStep);
      for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
        score_chunk(scores.data() + std::size_t(kv_head) * group * kChunk + r,
                    q + std::size_t(kv_head) * group * head_dim, group, key_rows + r,
                    std::size_t(kv_head) * head_dim, step_rows, head_dim, scale);
      }
    }
    // 2. The online softmax: fold the chunk into each head's running max and sum.
    fold_chunk(partial, scores.data(), rows, rescale.data(), n_heads);
    // 3. Values, a few rows at a time through memory, each KV head's part of
    // them once for its group; the outputs are rescaled to the new max with
    // the first rows.
    for (int r = 0; r < rows; r += kValueRowsPerStep) {
      const int step_rows = std::min(kValueRowsPerStep, rows - r);
      touch_rows(cache.v_rows, t + r + kValueRowsPerStep, kValueRowsPerStep);
      // The next chunk's first K rows, for its step 1.
      if (r + kValueRowsPerStep >= rows) touch_rows(cache.k_rows, t + rows, kKeyRowsPerStep);
      const float* step_rescale = r == 0 ? rescale.data() : no_rescale.data();
      for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
        const std::size_t first_head = std::size_t(kv_head) * group;
        accumulate_rows(partial.o + first_head * head_dim, group, step_rescale + first_head,
                        scores.data() + first_head * kChunk + r, value_rows + r,
                        std::size_t(kv_head) * head_dim, step_rows, head_dim);
      }
    }
    t += rows;
  }
}

}  // namespace

void decode_split_context(float* out, const float* q, const BlockRows& cache, int n_ctx,
                          int n_heads, int n_kv_heads, int head_dim, ThreadPool* pool) {
  const std::size_t cache_bytes = 2 * sizeof(float) * std::size_t(n_ctx) * cache.row_stride;
  split_context(out, n_ctx, n_heads, head_dim, cache_bytes, pool,
                [&](const SlicePartial& partial, int begin, int end) {
                  attend_slice(partial, q, cache, begin, end, n_heads, n_kv_heads, head_dim);
                });
}

}  // namespace kvc::cpu::fast
