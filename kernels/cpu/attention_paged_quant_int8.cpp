// Variant 4 of attention_decode_paged_quant over an int8 pool: variant 3's
// split-context kernel with the multiplications done in integers, as
// llama.cpp's q8_0 dot products do, instead of widening every code to a
// float.
//
// Variant 3 turns each int8 code into a float (two instructions) and spends
// an FMA lane on it per query head. Here the other operand is made integer
// too, so one instruction multiplies int16 pairs and adds neighbours into
// int32 lanes: vpmaddwd (AVX2, 16 products, plus an add) or, where the build
// machine has AVX-512 VNNI, vpdpwssd (32 products, accumulated in place).
//   keys:   q_j ~ q_scale_j * q16_j (int16, once per call), so
//           score_j(t) = (q16_j . k_codes_t) * q_scale_j * k_scale_t / sqrt(head_dim)
//   values: a chunk's weights w_j(t) = p_j(t) * v_scale_t ~ w_scale_j * w16_j(t)
//           (int16 against the chunk's largest), two rows' codes interleaved
//           so a lane pair holds one channel of rows t and t+1:
//           o_j += w_scale_j * sum_t w16_j(t) * v_codes_t
// The sums are exact int32 (a score adds head_dim products of magnitude at
// most 32767 * 128, under 2^31 for head_dim <= 512; a value lane 32), so the
// AVX2, AVX-512 and scalar loops give the same sums, and the only new error
// is q's and the weights' rounding to int16, at most half of 1/32767 of
// their largest element (int8's own rounding: half of 1/127): tested against
// dequantize-then-reference by tolerance.
// Keys are scored four rows at a time, every KV head of them (address
// order), values summed one KV head at a time down the chunk's rows, and the
// rows two chunks ahead are prefetched a little at a time through each pass.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/attention_paged_quant.hpp"
#include "kernels/cpu/split_softmax.hpp"

namespace kvc::cpu::fast {

namespace {

constexpr int kChunk = kSplitChunk;
constexpr float kInt16Max = 32767.0f;
// Key rows scored per step, every KV head of them (the AVX-512 score
// kernel's four rows): more measured slower here, 8 by 1.1x and 16 by 1.6x at 16K.
constexpr int kScoreRows = 4;
// How far ahead rows are prefetched; the pool's blocks lie anywhere, so the
// hardware prefetcher cannot see them coming.
constexpr int kPrefetchChunks = 2;

// codes[i] = round(x[i] / scale) with scale = max |x| / 32767; returns the
// scale (0, and zero codes, when x is all zeros). Both paths round to nearest
// even (cvtps2dq, lrint), so they give the same codes.
float quantize_int16(std::int16_t* codes, const float* x, int n) {
#if defined(__AVX2__)
  if (n % 8 == 0) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    __m256 lanes = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
      lanes = _mm256_max_ps(lanes, _mm256_andnot_ps(sign_bit, _mm256_loadu_ps(x + i)));
    }
    __m128 half = _mm_max_ps(_mm256_castps256_ps128(lanes), _mm256_extractf128_ps(lanes, 1));
    half = _mm_max_ps(half, _mm_movehl_ps(half, half));
    const float max_abs = _mm_cvtss_f32(_mm_max_ss(half, _mm_movehdup_ps(half)));
    const __m256 to_code = _mm256_set1_ps(max_abs > 0.0f ? kInt16Max / max_abs : 0.0f);
    for (int i = 0; i < n; i += 8) {
      const __m256i wide = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), to_code));
      _mm_storeu_si128(
          reinterpret_cast<__m128i*>(codes + i),
          _mm_packs_epi32(_mm256_castsi256_si128(wide), _mm256_extracti128_si256(wide, 1)));
    }
    return max_abs / kInt16Max;
  }
#endif
  float max_abs = 0.0f;
  for (int i = 0; i < n; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
  const float to_code = max_abs > 0.0f ? kInt16Max / max_abs : 0.0f;
  for (int i = 0; i < n; ++i) codes[i] = std::int16_t(std::lrint(x[i] * to_code));
  return max_abs / kInt16Max;
}

// The chunk's rows of one KV head: where each row's int8 codes start.
//   rows[r] + offset: row r's head_dim codes, r < n_rows (for the values an
//   odd chunk counts one more row, a copy of its last with weight 0, so they
//   are read in pairs)
struct ChunkRows {
  const std::int8_t* const* rows;
  std::size_t offset;
  int n_rows;
};

// The two loops, vector (AVX2, and AVX-512 VNNI inside where built) or
// scalar, giving the same exact sums:
//   score_int8:      scores[j * kChunk + r] = (q16_j . codes_r) * head_factors[j] * row_factors[r]
//   accumulate_int8: sums[j][d] += sum_r w16_j(r) * codes_r[d]
//     sums: [group][head_dim] int32; weights: [group][kChunk] int16, zero past the chunk's rows
// The vector loops take what int8_integer_loops_run admits (head_dim a
// multiple of 16, group of 4) and, for the values, rows in pairs.

#if defined(__AVX2__)

// Query heads at once: 4 heads x ROWS rows of int32 accumulators.
constexpr int kHeadsAtOnce = 4;
// Key rows at once: 8 accumulators, 2 rows, a query vector and a product
// stay in the 16 registers.
constexpr int kScoreRowsAtOnce = 2;

inline __m256i widen16(const std::int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// The four lanes' totals of a, b, c, d, in that order.
inline __m128i horizontal_sums(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i sums = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
}

// scores[j * kChunk + r] for one row r and the four heads j: the lanes of
// a, b, c, d (one head each) summed, times head_factors[j] and row_factor.
inline void store_row_scores(float* scores, __m256i a, __m256i b, __m256i c, __m256i d,
                             const float* head_factors, float row_factor) {
  alignas(16) float row_scores[kHeadsAtOnce];
  const __m128 sums = _mm_cvtepi32_ps(horizontal_sums(a, b, c, d));
  _mm_store_ps(row_scores,
               _mm_mul_ps(_mm_mul_ps(sums, _mm_loadu_ps(head_factors)), _mm_set1_ps(row_factor)));
#pragma GCC unroll 4
  for (int j = 0; j < kHeadsAtOnce; ++j) scores[j * kChunk] = row_scores[j];
}

template <int ROWS>
void score_int8_heads(float* scores, const std::int16_t* group_q, const std::int8_t* const* rows,
                      std::size_t offset, const float* head_factors, const float* row_factors,
                      int head_dim) {
  __m256i acc[ROWS][kHeadsAtOnce] = {};
  for (int d = 0; d < head_dim; d += 16) {
    __m256i key[ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; ++r) key[r] = widen16(rows[r] + offset + d);
#pragma GCC unroll 4
    for (int j = 0; j < kHeadsAtOnce; ++j) {
      const __m256i q = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(group_q + std::size_t(j) * head_dim + d));
#pragma GCC unroll 4
      for (int r = 0; r < ROWS; ++r) {
        acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(q, key[r]));
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) {
    store_row_scores(scores + r, acc[r][0], acc[r][1], acc[r][2], acc[r][3], head_factors,
                     row_factors[r]);
  }
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 extract intrinsics trip -Wuninitialized on their own
// placeholder operand (GCC bug 105593, fixed in 13); only in these loops.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// AVX-512 VNNI: vpdpwssd multiplies 32 int16 pairs and adds them into the
// accumulator in one instruction; the same exact int32 sums as the AVX2 loops.
constexpr int kScoreRowsAtOnce512 = 4;

inline __m512i widen32(const std::int8_t* p) {
  return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

inline __m256i halves_added(__m512i a) {
  return _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
}

template <int ROWS>
void score_int8_heads512(float* scores, const std::int16_t* group_q, const std::int8_t* const* rows,
                         std::size_t offset, const float* head_factors, const float* row_factors,
                         int head_dim) {
  __m512i acc[ROWS][kHeadsAtOnce] = {};
  for (int d = 0; d < head_dim; d += 32) {
    __m512i key[ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; ++r) key[r] = widen32(rows[r] + offset + d);
#pragma GCC unroll 4
    for (int j = 0; j < kHeadsAtOnce; ++j) {
      const __m512i q = _mm512_loadu_si512(group_q + std::size_t(j) * head_dim + d);
#pragma GCC unroll 4
      for (int r = 0; r < ROWS; ++r) acc[r][j] = _mm512_dpwssd_epi32(acc[r][j], q, key[r]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) {
    store_row_scores(scores + r, halves_added(acc[r][0]), halves_added(acc[r][1]),
                     halves_added(acc[r][2]), halves_added(acc[r][3]), head_factors,
                     row_factors[r]);
  }
}

// Channels d..d+7 and d+16..d+23 in one register's lanes, d+8..d+15 and
// d+24..d+31 in the other: how vpunpck{l,h}bw interleave within 128-bit lanes.
inline __m512i load_lanes(const std::int32_t* sums, int first, int second) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums + first))),
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums + second)), 1);
}
inline void store_lanes(std::int32_t* sums, int first, int second, __m512i lanes) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + first), _mm512_castsi512_si256(lanes));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + second),
                      _mm512_extracti64x4_epi64(lanes, 1));
}

void accumulate_int8_heads512(std::int32_t* sums, int head_dim, const std::int16_t* weights,
                              const ChunkRows& c) {
  for (int d = 0; d < head_dim; d += 32) {
    __m512i low[kHeadsAtOnce], high[kHeadsAtOnce];
#pragma GCC unroll 4
    for (int j = 0; j < kHeadsAtOnce; ++j) {
      low[j] = load_lanes(sums + j * head_dim, d, d + 16);
      high[j] = load_lanes(sums + j * head_dim, d + 8, d + 24);
    }
    for (int r = 0; r < c.n_rows; r += 2) {
      const __m256i a =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.rows[r] + c.offset + d));
      const __m256i b =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.rows[r + 1] + c.offset + d));
      const __m512i pairs_low = _mm512_cvtepi8_epi16(_mm256_unpacklo_epi8(a, b));
      const __m512i pairs_high = _mm512_cvtepi8_epi16(_mm256_unpackhi_epi8(a, b));
#pragma GCC unroll 4
      for (int j = 0; j < kHeadsAtOnce; ++j) {
        std::int32_t pair;
        std::memcpy(&pair, weights + j * kChunk + r, sizeof(pair));
        const __m512i w = _mm512_set1_epi32(pair);
        low[j] = _mm512_dpwssd_epi32(low[j], pairs_low, w);
        high[j] = _mm512_dpwssd_epi32(high[j], pairs_high, w);
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < kHeadsAtOnce; ++j) {
      store_lanes(sums + j * head_dim, d, d + 16, low[j]);
      store_lanes(sums + j * head_dim, d + 8, d + 24, high[j]);
    }
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

void score_int8(float* scores, const std::int16_t* group_q, int group, const ChunkRows& c,
                const float* head_factors, const float* row_factors, int head_dim) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  if (head_dim % 32 == 0) {
    for (int r = 0; r < c.n_rows; r += kScoreRowsAtOnce512) {
      for (int j = 0; j < group; j += kHeadsAtOnce) {
        constexpr void (*kByRows[kScoreRowsAtOnce512])(
            float*, const std::int16_t*, const std::int8_t* const*, std::size_t, const float*,
            const float*, int) = {score_int8_heads512<1>, score_int8_heads512<2>,
                                  score_int8_heads512<3>, score_int8_heads512<4>};
        kByRows[std::min(kScoreRowsAtOnce512, c.n_rows - r) - 1](
            scores + j * kChunk + r, group_q + std::size_t(j) * head_dim, c.rows + r, c.offset,
            head_factors + j, row_factors + r, head_dim);
      }
    }
    return;
  }
#endif
  for (int r = 0; r < c.n_rows; r += kScoreRowsAtOnce) {
    for (int j = 0; j < group; j += kHeadsAtOnce) {
      const auto score =
          c.n_rows - r >= kScoreRowsAtOnce ? score_int8_heads<2> : score_int8_heads<1>;
      score(scores + j * kChunk + r, group_q + std::size_t(j) * head_dim, c.rows + r, c.offset,
            head_factors + j, row_factors + r, head_dim);
    }
  }
}

// Sixteen output channels of the four heads a step, two rows at a time: their
// codes interleaved byte by byte and widened, so vpmaddwd's neighbour pairs
// are (row t, row t+1) of one channel, against the pair's two weights.
void accumulate_int8_heads(std::int32_t* sums, int head_dim, const std::int16_t* weights,
                           const ChunkRows& c) {
  for (int d = 0; d < head_dim; d += 16) {
    __m256i low[kHeadsAtOnce], high[kHeadsAtOnce];  // channels d..d+7, d+8..d+15
#pragma GCC unroll 4
    for (int j = 0; j < kHeadsAtOnce; ++j) {
      low[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums + j * head_dim + d));
      high[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sums + j * head_dim + d + 8));
    }
    for (int r = 0; r < c.n_rows; r += 2) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c.rows[r] + c.offset + d));
      const __m128i b =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(c.rows[r + 1] + c.offset + d));
      const __m256i pairs_low = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b));
      const __m256i pairs_high = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, b));
#pragma GCC unroll 4
      for (int j = 0; j < kHeadsAtOnce; ++j) {
        // Weights r and r + 1 of head j, little-endian: one int32 of two int16s.
        std::int32_t pair;
        std::memcpy(&pair, weights + j * kChunk + r, sizeof(pair));
        const __m256i w = _mm256_set1_epi32(pair);
        low[j] = _mm256_add_epi32(low[j], _mm256_madd_epi16(pairs_low, w));
        high[j] = _mm256_add_epi32(high[j], _mm256_madd_epi16(pairs_high, w));
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < kHeadsAtOnce; ++j) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + j * head_dim + d), low[j]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + j * head_dim + d + 8), high[j]);
    }
  }
}

void accumulate_int8(std::int32_t* sums, int group, const std::int16_t* weights, const ChunkRows& c,
                     int head_dim) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  if (head_dim % 32 == 0) {
    for (int j = 0; j < group; j += kHeadsAtOnce) {
      accumulate_int8_heads512(sums + std::size_t(j) * head_dim, head_dim, weights + j * kChunk, c);
    }
    return;
  }
#endif
  for (int j = 0; j < group; j += kHeadsAtOnce) {
    accumulate_int8_heads(sums + std::size_t(j) * head_dim, head_dim, weights + j * kChunk, c);
  }
}

#else  // no AVX2: the same sums, one product at a time

void score_int8(float* scores, const std::int16_t* group_q, int group, const ChunkRows& c,
                const float* head_factors, const float* row_factors, int head_dim) {
  for (int r = 0; r < c.n_rows; ++r) {
    const std::int8_t* row = c.rows[r] + c.offset;
    for (int j = 0; j < group; ++j) {
      const std::int16_t* head_q = group_q + std::size_t(j) * head_dim;
      std::int32_t sum = 0;
      for (int d = 0; d < head_dim; ++d) sum += std::int32_t(head_q[d]) * row[d];
      scores[j * kChunk + r] = float(sum) * head_factors[j] * row_factors[r];
    }
  }
}

void accumulate_int8(std::int32_t* sums, int group, const std::int16_t* weights, const ChunkRows& c,
                     int head_dim) {
  for (int j = 0; j < group; ++j) {
    for (int d = 0; d < head_dim; ++d) {
      std::int32_t sum = sums[std::size_t(j) * head_dim + d];
      for (int r = 0; r < c.n_rows; ++r) {
        sum += std::int32_t(weights[j * kChunk + r]) * c.rows[r][c.offset + d];
      }
      sums[std::size_t(j) * head_dim + d] = sum;
    }
  }
}

#endif

}  // namespace

bool int8_integer_loops_run(int head_dim, [[maybe_unused]] int group) {
#if defined(__AVX2__)
  // Elsewhere v3's float loops beat the scalar integer ones (stories260K's
  // 8-channel heads: 0.88 vs 0.77 of fp32 end to end in ch04_serve).
  return head_dim % 16 == 0 && group % kHeadsAtOnce == 0 && head_dim <= 512;
#else
  return head_dim <= 512;
#endif
}

void attend_int8_slice(const SlicePartial& partial, const float* q, const QuantPagedLayer& layer,
                       const int* block_table, int n_heads, int begin, int end) {
  const int head_dim = layer.head_dim, n_kv_heads = layer.n_kv_heads, bs = layer.block_size;
  const int group = n_heads / n_kv_heads;
  const std::size_t pool_row_bytes = std::size_t(n_kv_heads) * head_dim;  // one position, one side
  const float inv_sqrt_dim = 1.0f / std::sqrt(float(head_dim));

  std::vector<std::int16_t> q16(std::size_t(n_heads) * head_dim);
  std::vector<float> q_scales(n_heads);
  for (int h = 0; h < n_heads; ++h) {
    q_scales[h] =
        quantize_int16(&q16[std::size_t(h) * head_dim], q + std::size_t(h) * head_dim, head_dim);
  }
  std::vector<float> scores(std::size_t(n_heads) * kChunk);  // [n_heads][kChunk]
  std::vector<float> rescale(n_heads);
  std::vector<float> k_factors(std::size_t(n_kv_heads) * kChunk);  // [n_kv_heads][kChunk]
  // The chunk's softmax weights as int16 and their scales, and one KV head's
  // group's exact sums over the chunk's values.
  std::vector<float> weights(kChunk, 0.0f);  // one head's, zeros past the chunk's rows
  std::vector<std::int16_t> weights16(std::size_t(n_heads) * kChunk);  // [n_heads][kChunk]
  std::vector<float> w_scales(n_heads);
  std::vector<std::int32_t> sums(std::size_t(group) * head_dim);  // [group][head_dim]
  float v_scales[kChunk];
  std::int64_t slots[kChunk];
  std::int64_t ahead_slots[kChunk];  // the chunk kPrefetchChunks ahead
  const std::int8_t* k_rows[kChunk + 1];
  const std::int8_t* v_rows[kChunk + 1];
  const auto slot_of = [&](int t) { return std::int64_t(block_table[t / bs]) * bs + t % bs; };
  const auto codes_at = [&](const QuantPages& side, std::int64_t slot) {
    return reinterpret_cast<const std::int8_t*>(side.codes + slot * pool_row_bytes);
  };

  for (int t = begin; t < end;) {
    const int rows = std::min(end - t, kChunk);
    for (int r = 0; r < rows; ++r) {
      slots[r] = slot_of(t + r);
      k_rows[r] = codes_at(layer.k, slots[r]);
      v_rows[r] = codes_at(layer.v, slots[r]);
      for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
        k_factors[kv_head * kChunk + r] =
            layer.k.scales[slots[r] * n_kv_heads + kv_head] * inv_sqrt_dim;
      }
    }
    k_rows[rows] = k_rows[rows - 1];  // an odd chunk's last pair, weighted 0
    v_rows[rows] = v_rows[rows - 1];
    const int first_ahead = t + kPrefetchChunks * kChunk;
    const int n_ahead = std::max(0, std::min(end - first_ahead, kChunk));
    for (int i = 0; i < n_ahead; ++i) ahead_slots[i] = slot_of(first_ahead + i);

    // 1. Scores, kScoreRows rows at a time, every KV head of them: the keys
    // are read in address order, and the keys of the same rows
    // kPrefetchChunks ahead are asked for meanwhile, spread over the pass
    // (the same prefetches in one burst per chunk made it 1.4x slower at 32K).
    for (int r = 0; r < rows; r += kScoreRows) {
      const int step_rows = std::min(kScoreRows, rows - r);
      for (int i = r; i < std::min(n_ahead, r + kScoreRows); ++i) {
        prefetch_bytes(codes_at(layer.k, ahead_slots[i]), pool_row_bytes);
        __builtin_prefetch(layer.k.scales + ahead_slots[i] * n_kv_heads, 0, 2);
      }
      for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
        const int first_head = kv_head * group;
        score_int8(scores.data() + std::size_t(first_head) * kChunk + r,
                   q16.data() + std::size_t(first_head) * head_dim, group,
                   ChunkRows{k_rows + r, std::size_t(kv_head) * head_dim, step_rows},
                   q_scales.data() + first_head, k_factors.data() + kv_head * kChunk + r, head_dim);
      }
    }

    // 2. The online softmax.
    fold_chunk(partial, scores.data(), rows, rescale.data(), n_heads);

    // 3. Values. First every head's weights (softmax weight times the row's
    // scale) as int16; then one KV head's group at a time down the chunk's
    // rows (measured faster here than rows in address order), the exact sums,
    // and o = o * rescale + sums * w_scale. The head's values kPrefetchChunks
    // ahead are asked for meanwhile.
    std::fill(weights.begin() + rows, weights.end(), 0.0f);
    const int paired_rows = rows + rows % 2;
    for (int i = 0; i < n_ahead; ++i) {
      __builtin_prefetch(layer.v.scales + ahead_slots[i] * n_kv_heads, 0, 2);
    }
    for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
      for (int r = 0; r < rows; ++r) v_scales[r] = layer.v.scales[slots[r] * n_kv_heads + kv_head];
      for (int h = kv_head * group; h < (kv_head + 1) * group; ++h) {
        const float* p = scores.data() + std::size_t(h) * kChunk;
        for (int r = 0; r < rows; ++r) weights[r] = p[r] * v_scales[r];
        w_scales[h] = quantize_int16(&weights16[std::size_t(h) * kChunk], weights.data(), kChunk);
      }
    }
    for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
      const std::size_t first_head = std::size_t(kv_head) * group;
      for (int i = 0; i < n_ahead; ++i) {
        prefetch_bytes(codes_at(layer.v, ahead_slots[i]) + std::size_t(kv_head) * head_dim,
                       head_dim);
      }
      std::fill(sums.begin(), sums.end(), 0);
      accumulate_int8(sums.data(), group, &weights16[first_head * kChunk],
                      ChunkRows{v_rows, std::size_t(kv_head) * head_dim, paired_rows}, head_dim);
      for (int j = 0; j < group; ++j) {
        const std::size_t h = first_head + j;
        float* o = partial.o + h * head_dim;
        const std::int32_t* sum = &sums[std::size_t(j) * head_dim];
        for (int d = 0; d < head_dim; ++d) o[d] = o[d] * rescale[h] + float(sum[d]) * w_scales[h];
      }
    }
    t += rows;
  }
}

}  // namespace kvc::cpu::fast
