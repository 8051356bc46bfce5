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
#include <vector>

#include "kernels/cpu/attention_rows.hpp"
#include "kernels/cpu/split_softmax.hpp"

namespace kvc::cpu::fast {

namespace {

constexpr int kChunk = kSplitChunk;

#if defined(__AVX2__) && defined(__FMA__)

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

#endif

// Positions [begin, end) into `partial`, chunk by chunk.
void attend_slice(const SlicePartial& partial, const float* q, const BlockRows& cache, int begin,
                  int end, int n_heads, int n_kv_heads, int head_dim) {
  const int group = n_heads / n_kv_heads;
  const float scale = std::sqrt(float(head_dim));
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
    fold_chunk(partial, scores.data(), rows, rescale.data(), n_heads);
    // 3. Values, each KV head's rows once for its group.
    const float* value_rows[kChunk];
    for (int r = 0; r < rows; ++r) value_rows[r] = cache.v_rows + row_offset + r * cache.row_stride;
    for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
      const std::size_t first_head = std::size_t(kv_head) * group;
      accumulate_rows(partial.o + first_head * head_dim, group, rescale.data() + first_head,
                      scores.data() + first_head * kChunk, value_rows,
                      std::size_t(kv_head) * head_dim, rows, head_dim);
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
