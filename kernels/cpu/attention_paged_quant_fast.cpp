// Variant 3 of attention_decode_paged_quant: the split-context kernel of
// chapter 04's fp32 variant 4 (split_softmax.hpp: one context slice per
// thread, online softmax, slices merged) over a quantized pool.
//
// The codes are read straight from the pool inside the dot products: eight
// int8 codes are widened to int32 and converted to floats in one register
// (vpmovsxbd + vcvtdq2ps; fp16 by vcvtph2ps, bf16 and FP8 E4M3 by shifting
// their bits into a float's), every query head of the group is multiplied by
// that register, and the row's scale is applied once per row, to the
// finished score (keys) or folded into the softmax weight (values):
//   score_j(t)  = (q_j . k_codes_t) * k_scale_t / sqrt(head_dim)
//   o_j        += (p_j(t) * v_scale_t) * v_codes_t
// Packed int4 has its own loops (below): eight nibbles widened by a shift in
// each lane, a row's group scales applied to its codes in the register, and
// KIVI's per-channel key scales folded into q once per block.
// So the pool's bytes are read once, as codes, and no float copy of a row is
// written anywhere. A chunk holding attention-sink rows, and every row of a
// pool whose keys are stored before RoPE (they are turned after
// dequantizing), are dequantized into an L1 tile by dequantize_block_rows
// first, and the same loops read the tile.
// Rounds differently from variants 1-2 (FMA, the scale applied after the sum,
// a vector exp): tested by tolerance. decode_split_quant serves variant 4
// too, handing int8 pools to attention_paged_quant_int8.cpp's integer loops.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/attention_paged_quant.hpp"
#include "kernels/cpu/kv_quant.hpp"
#include "kernels/cpu/split_softmax.hpp"

namespace kvc::cpu::fast {

namespace {

constexpr int kChunk = kSplitChunk;

// The pool's 16- and 8-bit float codes as element types, so the loops below
// read them like int8 codes (float(code) is the scalar decode).
struct Half {
  std::uint16_t bits;
  explicit operator float() const { return fp16_to_float_finite(bits); }
};
struct Bfloat {
  std::uint16_t bits;
  explicit operator float() const { return bf16_to_float(bits); }
};
struct Fp8 {
  std::uint8_t bits;
  explicit operator float() const { return fp8_e4m3_to_float_finite(bits); }
};
// Two int4 codes: value 2i of a row in the low nibble of its byte i, so a
// row of head_dim codes is head_dim / 2 of these, and code d is in byte d / 2.
struct PackedInt4 {
  std::uint8_t pair;
};

// Query heads scored or summed together: 4 heads x 2 accumulators = 8
// independent FMA chains, next to the shared key or value vectors.
constexpr int kHeadsAtOnce = 4;
// Key rows scored together (score_rows_heads).
constexpr int kScoreRowsAtOnce = 3;

// ---- the loops, over a chunk's rows of codes -----------------------------------------------
// A chunk is up to kChunk rows of one KV head, each anywhere in the pool:
// row r's channels are rows[r] + offset .. + head_dim - 1.

// scores[j * kChunk + r] = (q_j . row_r) * factors[r] for the group's query
// heads j and the chunk's n_rows rows r.
template <typename Code>
void score_rows_scalar(float* scores, const float* group_q, int group, const Code* const* rows,
                       std::size_t offset, int n_rows, const float* factors, int head_dim) {
  for (int r = 0; r < n_rows; ++r) {
    const Code* row = rows[r] + offset;
    for (int j = 0; j < group; ++j) {
      const float* head_q = group_q + std::size_t(j) * head_dim;
      float sum = 0.0f;
      for (int d = 0; d < head_dim; ++d) sum += head_q[d] * float(row[d]);
      scores[j * kChunk + r] = sum * factors[r];
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__)

// float and int8: split_softmax.hpp's, seen beside the ones below.
using fast::load8;
// fp16: the F16C conversion (x86-64-v3 has it).
inline __m256 load8(const Half* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// bf16: the top half of a float.
inline __m256 load8(const Bfloat* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
// E4M3 as fp8_e4m3_to_float_finite does it, eight lanes at once: exponent and
// mantissa moved into a float's fields (2^120 too small), scaled, signed.
inline __m256 load8(const Fp8* p) {
  const __m256i codes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  const __m256i fields = _mm256_slli_epi32(_mm256_and_si256(codes, _mm256_set1_epi32(0x7F)), 20);
  const __m256 magnitude = _mm256_mul_ps(_mm256_castsi256_ps(fields), _mm256_set1_ps(0x1p120f));
  const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(codes, _mm256_set1_epi32(0x80)), 24);
  return _mm256_or_ps(magnitude, _mm256_castsi256_ps(sign));
}

// One step of scoring ROWS rows against HEADS query heads: acc[r][j] +=
// q_j[d .. d+7] * key[r], each query vector loaded once for the ROWS rows.
template <int HEADS, int ROWS>
inline void fma_keys(__m256 (&acc)[ROWS][kHeadsAtOnce], const __m256 (&key)[ROWS],
                     const float* group_q, int head_dim, int d) {
#pragma GCC unroll 4
  for (int j = 0; j < HEADS; ++j) {
    const __m256 q = _mm256_loadu_ps(group_q + std::size_t(j) * head_dim + d);
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; ++r) acc[r][j] = _mm256_fmadd_ps(q, key[r], acc[r][j]);
  }
}

// scores[j * kChunk + r] = (the sum of acc[r][j]'s lanes) * factors[r]; the
// sums of four heads at once (acc[r][HEADS..3] are zeros).
template <int HEADS, int ROWS>
inline void store_scores(float* scores, const __m256 (&acc)[ROWS][kHeadsAtOnce],
                         const float* factors) {
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) {
    alignas(16) float row_scores[kHeadsAtOnce];
    _mm_store_ps(row_scores, _mm_mul_ps(horizontal_sums(acc[r][0], acc[r][1], acc[r][2], acc[r][3]),
                                        _mm_set1_ps(factors[r])));
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) scores[j * kChunk + r] = row_scores[j];
  }
}

// ROWS rows (3 at most: 12 accumulators, 3 keys and a query vector fill the
// 16 registers) against HEADS query heads, eight dimensions a step: each
// query vector is loaded once for the ROWS rows, each row's codes widened
// once for the HEADS heads.
template <int HEADS, int ROWS, typename Code>
void score_rows_heads(float* scores, const float* group_q, const Code* const* rows,
                      std::size_t offset, const float* factors, int head_dim) {
  const Code* row[ROWS];
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) row[r] = rows[r] + offset;
  __m256 acc[ROWS][kHeadsAtOnce] = {};
  for (int d = 0; d < head_dim; d += 8) {
    __m256 key[ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; ++r) key[r] = load8(row[r] + d);
    fma_keys<HEADS, ROWS>(acc, key, group_q, head_dim, d);
  }
  store_scores<HEADS, ROWS>(scores, acc, factors);
}

template <typename Code>
void score_rows(float* scores, const float* group_q, int group, const Code* const* rows,
                std::size_t offset, int n_rows, const float* factors, int head_dim) {
  if (head_dim % 16 != 0) {
    score_rows_scalar(scores, group_q, group, rows, offset, n_rows, factors, head_dim);
    return;
  }
  using ScoreFn =
      void (*)(float*, const float*, const Code* const*, std::size_t, const float*, int);
  // [rows - 1][heads - 1]
  constexpr ScoreFn kFns[kScoreRowsAtOnce][kHeadsAtOnce] = {
      {score_rows_heads<1, 1, Code>, score_rows_heads<2, 1, Code>, score_rows_heads<3, 1, Code>,
       score_rows_heads<4, 1, Code>},
      {score_rows_heads<1, 2, Code>, score_rows_heads<2, 2, Code>, score_rows_heads<3, 2, Code>,
       score_rows_heads<4, 2, Code>},
      {score_rows_heads<1, 3, Code>, score_rows_heads<2, 3, Code>, score_rows_heads<3, 3, Code>,
       score_rows_heads<4, 3, Code>}};
  for (int r = 0; r < n_rows; r += kScoreRowsAtOnce) {
    const int block_rows = std::min(kScoreRowsAtOnce, n_rows - r);
    for (int j = 0; j < group; j += kHeadsAtOnce) {
      kFns[block_rows - 1][std::min(kHeadsAtOnce, group - j) - 1](
          scores + j * kChunk + r, group_q + std::size_t(j) * head_dim, rows + r, offset,
          factors + r, head_dim);
    }
  }
}

#else  // no AVX2: the scalar loops

template <typename Code>
void score_rows(float* scores, const float* group_q, int group, const Code* const* rows,
                std::size_t offset, int n_rows, const float* factors, int head_dim) {
  score_rows_scalar(scores, group_q, group, rows, offset, n_rows, factors, head_dim);
}

#endif

// ---- packed int4 ----------------------------------------------------------------------------
// A row's codes are nibbles with a scale per group of group_size channels
// (int4-token keys, and the values of both int4 formats): the codes are
// widened to floats and multiplied by their group's scale in a register,
// once per row, before the group's query heads use them. KIVI's keys have
// one scale per (block, KV head, channel) instead: q_j . (s * c) = (q_j * s)
// . c, so the caller multiplies the group's q by the block's channel scales
// once per block and passes no scales (group_scales null), and the codes go
// into the dot products unscaled.
//   rows[r] + offset: row r's first byte; group_scales[r]: its head_dim / group_size scales

// scores[j * kChunk + r] = sum_d q_j[d] * (code_r[d] * scale_r(d)) * factor.
void score_int4_rows_scalar(float* scores, const float* group_q, int group,
                            const PackedInt4* const* rows, std::size_t offset,
                            const float* const* group_scales, int group_size, int n_rows,
                            float factor, int head_dim) {
  for (int r = 0; r < n_rows; ++r) {
    const auto* row = reinterpret_cast<const std::uint8_t*>(rows[r] + offset);
    for (int j = 0; j < group; ++j) {
      const float* head_q = group_q + std::size_t(j) * head_dim;
      float sum = 0.0f;
      for (int d = 0; d < head_dim; ++d) {
        const float scale = group_scales == nullptr ? 1.0f : group_scales[r][d / group_size];
        sum += head_q[d] * (float(int4_at(row, d)) * scale);
      }
      scores[j * kChunk + r] = sum * factor;
    }
  }
}

// o_j = o_j * rescale[j] + sum_r weights[j * kChunk + r] * code_r * scale_r.
void accumulate_int4_rows_scalar(float* o, int group, const float* rescale, const float* weights,
                                 const PackedInt4* const* rows, std::size_t offset,
                                 const float* const* group_scales, int group_size, int n_rows,
                                 int head_dim) {
  for (int j = 0; j < group; ++j) {
    float* head_o = o + std::size_t(j) * head_dim;
    for (int d = 0; d < head_dim; ++d) {
      float sum = head_o[d] * rescale[j];
      for (int r = 0; r < n_rows; ++r) {
        const auto* row = reinterpret_cast<const std::uint8_t*>(rows[r] + offset);
        sum += weights[j * kChunk + r] * (float(int4_at(row, d)) * group_scales[r][d / group_size]);
      }
      head_o[d] = sum;
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__)

// Eight codes (four bytes) as floats: the four bytes in every lane, lane i
// shifts its nibble (bits 4i..4i+3) to the top and arithmetically back down,
// which sign-extends it; then converted (exact).
inline __m256 load8(const PackedInt4* p) {
  std::int32_t word;
  std::memcpy(&word, p, sizeof(word));
  const __m256i top =
      _mm256_sllv_epi32(_mm256_set1_epi32(word), _mm256_setr_epi32(28, 24, 20, 16, 12, 8, 4, 0));
  return _mm256_cvtepi32_ps(_mm256_srai_epi32(top, 28));
}

// score_rows_heads for packed int4: ROWS rows against HEADS heads, a group
// of channels at a time, the codes scaled by the group's scale (SCALED) once
// for all heads.
template <int HEADS, int ROWS, bool SCALED>
void score_int4_heads(float* scores, const float* group_q, const PackedInt4* const* rows,
                      std::size_t offset, const float* const* group_scales, int group_size,
                      float factor, int head_dim) {
  __m256 acc[ROWS][kHeadsAtOnce] = {};
  for (int d0 = 0, g = 0; d0 < head_dim; d0 += group_size, ++g) {
    __m256 scale[ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; ++r) {
      scale[r] = SCALED ? _mm256_broadcast_ss(group_scales[r] + g) : _mm256_set1_ps(1.0f);
    }
    for (int d = d0; d < d0 + group_size; d += 8) {
      __m256 key[ROWS];
#pragma GCC unroll 4
      for (int r = 0; r < ROWS; ++r) {
        key[r] = load8(rows[r] + offset + d / 2);
        if (SCALED) key[r] = _mm256_mul_ps(key[r], scale[r]);
      }
      fma_keys<HEADS, ROWS>(acc, key, group_q, head_dim, d);
    }
  }
  float factors[ROWS];
  std::fill_n(factors, ROWS, factor);
  store_scores<HEADS, ROWS>(scores, acc, factors);
}

void score_int4_rows(float* scores, const float* group_q, int group, const PackedInt4* const* rows,
                     std::size_t offset, const float* const* group_scales, int group_size,
                     int n_rows, float factor, int head_dim) {
  if (head_dim % 16 != 0 || (group_scales != nullptr && group_size % 8 != 0)) {
    score_int4_rows_scalar(scores, group_q, group, rows, offset, group_scales, group_size, n_rows,
                           factor, head_dim);
    return;
  }
  using ScoreFn = void (*)(float*, const float*, const PackedInt4* const*, std::size_t,
                           const float* const*, int, float, int);
  // [scaled][rows - 1][heads - 1]
  constexpr ScoreFn kFns[2][2][kHeadsAtOnce] = {
      {{score_int4_heads<1, 1, false>, score_int4_heads<2, 1, false>, score_int4_heads<3, 1, false>,
        score_int4_heads<4, 1, false>},
       {score_int4_heads<1, 2, false>, score_int4_heads<2, 2, false>, score_int4_heads<3, 2, false>,
        score_int4_heads<4, 2, false>}},
      {{score_int4_heads<1, 1, true>, score_int4_heads<2, 1, true>, score_int4_heads<3, 1, true>,
        score_int4_heads<4, 1, true>},
       {score_int4_heads<1, 2, true>, score_int4_heads<2, 2, true>, score_int4_heads<3, 2, true>,
        score_int4_heads<4, 2, true>}}};
  const bool scaled = group_scales != nullptr;
  for (int r = 0; r < n_rows; r += 2) {
    const int pair = std::min(2, n_rows - r);
    for (int j = 0; j < group; j += kHeadsAtOnce) {
      kFns[scaled][pair - 1][std::min(kHeadsAtOnce, group - j) - 1](
          scores + j * kChunk + r, group_q + std::size_t(j) * head_dim, rows + r, offset,
          scaled ? group_scales + r : nullptr, scaled ? group_size : head_dim, factor, head_dim);
    }
  }
}

// accumulate_rows_heads for packed int4: each row's codes widened and
// multiplied by their group's scale once for all HEADS heads (group_size % 16
// == 0, so a step of sixteen dimensions stays in one group).
template <int HEADS>
void accumulate_int4_heads(float* o, int head_dim, const float* rescale, const float* weights,
                           const PackedInt4* const* rows, std::size_t offset,
                           const float* const* group_scales, int group_size, int n_rows) {
  accumulate_heads<HEADS>(
      o, head_dim, rescale, weights, n_rows,
      [rows, offset, group_scales, group_size](int r, int d, __m256& v0, __m256& v1) {
        const PackedInt4* value = rows[r] + offset + d / 2;
        const __m256 scale = _mm256_broadcast_ss(group_scales[r] + d / group_size);
        v0 = _mm256_mul_ps(load8(value), scale);
        v1 = _mm256_mul_ps(load8(value + 4), scale);
      });
}

void accumulate_int4_rows(float* o, int group, const float* rescale, const float* weights,
                          const PackedInt4* const* rows, std::size_t offset,
                          const float* const* group_scales, int group_size, int n_rows,
                          int head_dim) {
  if (head_dim % 16 != 0 || group_size % 16 != 0) {
    accumulate_int4_rows_scalar(o, group, rescale, weights, rows, offset, group_scales, group_size,
                                n_rows, head_dim);
    return;
  }
  using AccumulateFn = void (*)(float*, int, const float*, const float*, const PackedInt4* const*,
                                std::size_t, const float* const*, int, int);
  constexpr AccumulateFn kByHeads[kHeadsAtOnce] = {
      accumulate_int4_heads<1>, accumulate_int4_heads<2>, accumulate_int4_heads<3>,
      accumulate_int4_heads<4>};
  for (int j = 0; j < group; j += kHeadsAtOnce) {
    kByHeads[std::min(kHeadsAtOnce, group - j) - 1](o + std::size_t(j) * head_dim, head_dim,
                                                    rescale + j, weights + j * kChunk, rows, offset,
                                                    group_scales, group_size, n_rows);
  }
}

#else  // no AVX2: the scalar loops

void score_int4_rows(float* scores, const float* group_q, int group, const PackedInt4* const* rows,
                     std::size_t offset, const float* const* group_scales, int group_size,
                     int n_rows, float factor, int head_dim) {
  score_int4_rows_scalar(scores, group_q, group, rows, offset, group_scales, group_size, n_rows,
                         factor, head_dim);
}

void accumulate_int4_rows(float* o, int group, const float* rescale, const float* weights,
                          const PackedInt4* const* rows, std::size_t offset,
                          const float* const* group_scales, int group_size, int n_rows,
                          int head_dim) {
  accumulate_int4_rows_scalar(o, group, rescale, weights, rows, offset, group_scales, group_size,
                              n_rows, head_dim);
}

#endif

// ---- one slice of the context ---------------------------------------------------------------

struct Step {
  const float* q;
  const QuantPagedLayer& layer;
  const int* block_table;
  const FullPrecisionRows& sinks;
  int n_heads;
};

// Positions [begin, end) into `partial`, chunk by chunk; Code is the pool's
// element type when its rows are read directly (read_codes), else float and
// every chunk goes through the tile.
template <typename Code>
void attend_slice(const SlicePartial& partial, const Step& s, bool read_codes, int begin, int end) {
  constexpr bool kInt4 = std::is_same_v<Code, PackedInt4>;
  const QuantPagedLayer& layer = s.layer;
  const int head_dim = layer.head_dim, n_kv_heads = layer.n_kv_heads, bs = layer.block_size;
  const int group = s.n_heads / n_kv_heads;
  const float inv_sqrt_dim = 1.0f / std::sqrt(float(head_dim));
  // One pool row: every KV head's codes of one position, one side.
  const std::size_t pool_row_bytes = std::size_t(n_kv_heads) * kv_row_bytes(layer.dtype, head_dim);
  // One KV head's codes, in Code elements: head_dim, or head_dim / 2 packed int4.
  const std::size_t head_codes = kv_row_bytes(layer.dtype, head_dim) / sizeof(Code);
  const bool scaled = layer.k.layout != ScaleLayout::none;
  // Scales of one pool row for a per-token layout (0 for none and per-channel).
  const auto scales_per_row = [&](ScaleLayout scales) -> std::size_t {
    if (scales != ScaleLayout::per_token_head && scales != ScaleLayout::per_token_group) return 0;
    const KvPoolShape shape{1, n_kv_heads, head_dim, bs};
    return kv_scale_floats_per_block(scales, layer.dtype, shape) / bs;
  };
  const std::size_t k_scales_per_row = scales_per_row(layer.k.layout);
  const std::size_t v_scales_per_row = scales_per_row(layer.v.layout);
  // int4: channels per scale, and the scales of one (row, KV head).
  const int group_size = layer.dtype.group_size;
  const int groups_per_head = kInt4 ? head_dim / group_size : 0;
  std::vector<float> q_scaled(kInt4 ? std::size_t(group) * head_dim
                                    : 0);  // KIVI: q * channel scales
  const float* k_group_scales[kChunk];
  const float* v_group_scales[kChunk];
  std::vector<float> scores(std::size_t(s.n_heads) * kChunk);  // [n_heads][kChunk]
  std::vector<float> weights(std::size_t(group) * kChunk);     // [group][kChunk]
  std::vector<float> rescale(s.n_heads);
  std::vector<float> factors(kChunk);
  std::vector<float> tile(std::size_t(bs) * head_dim);  // [block_size][head_dim]
  const auto slot_of = [&](int t) { return std::int64_t(s.block_table[t / bs]) * bs + t % bs; };

  // The chunk's rows: pool slots, and where each row's codes (or tile row) start.
  std::int64_t slots[kChunk];
  const Code* k_rows[kChunk];
  const Code* v_rows[kChunk];
  const float* tile_rows[kChunk];
  for (int r = 0; r < kChunk; ++r) tile_rows[r] = tile.data() + std::size_t(r % bs) * head_dim;

  // Rows first..first+rows-1 of block `block`, KV head `kv_head`, of one side,
  // as floats in tile rows 0..rows-1, the fp32 sink rows in place of their codes.
  const auto load_tile = [&](const QuantPages& side, const float* sink_rows, int t, int rows,
                             int kv_head) {
    const int first = t % bs;
    dequantize_block_rows(tile.data(), layer, side, s.block_table[t / bs], kv_head, first + rows);
    std::memmove(tile.data(), tile.data() + std::size_t(first) * head_dim,
                 std::size_t(rows) * head_dim * sizeof(float));
    for (int r = 0; r < std::min(rows, s.sinks.n_rows - t); ++r) {
      std::memcpy(tile.data() + std::size_t(r) * head_dim,
                  sink_rows + (std::size_t(t + r) * n_kv_heads + kv_head) * head_dim,
                  head_dim * sizeof(float));
    }
    if (layer.keys_before_rope && &side == &layer.k) rope_key_tile(tile.data(), layer, t, rows);
  };

  for (int t = begin; t < end;) {
    // Codes are read where they lie, so a chunk may span blocks; the tile
    // holds one block's rows. Sink rows (positions < sinks.n_rows <=
    // block_size) only ever open a chunk.
    const bool direct = read_codes && t >= s.sinks.n_rows;
    const int rows = direct ? std::min(end - t, kChunk) : std::min({end - t, bs - t % bs, kChunk});
    if (direct) {
      for (int r = 0; r < rows; ++r) {
        slots[r] = slot_of(t + r);
        k_rows[r] = reinterpret_cast<const Code*>(layer.k.codes + slots[r] * pool_row_bytes);
        v_rows[r] = reinterpret_cast<const Code*>(layer.v.codes + slots[r] * pool_row_bytes);
        // This row's V, and the next chunk's K, while this chunk's K is
        // scored; their scales too (they live apart from the codes).
        prefetch_bytes(v_rows[r], pool_row_bytes);
        if (v_scales_per_row > 0) {
          __builtin_prefetch(layer.v.scales + slots[r] * v_scales_per_row, 0, 2);
        }
        if (t + rows + r < end) {
          const std::int64_t next = slot_of(t + rows + r);
          prefetch_bytes(layer.k.codes + next * pool_row_bytes, pool_row_bytes);
          if (k_scales_per_row > 0) {
            __builtin_prefetch(layer.k.scales + next * k_scales_per_row, 0, 2);
          }
        }
      }
    }

    // 1. Scores: through memory three rows at a time, every KV head of the three.
    if constexpr (kInt4) {
      for (int kv_head = 0; direct && kv_head < n_kv_heads; ++kv_head) {
        float* head_scores = scores.data() + std::size_t(kv_head) * group * kChunk;
        const float* group_q = s.q + std::size_t(kv_head) * group * head_dim;
        const std::size_t offset = kv_head * head_codes;
        if (layer.k.layout != ScaleLayout::per_channel) {
          for (int r = 0; r < rows; ++r) {
            k_group_scales[r] = layer.k.scales + slots[r] * k_scales_per_row +
                                std::size_t(kv_head) * groups_per_head;
          }
          score_int4_rows(head_scores, group_q, group, k_rows, offset, k_group_scales, group_size,
                          rows, inv_sqrt_dim, head_dim);
          continue;
        }
        // KIVI: the channel scales are the block's, so q takes them once per
        // block of the chunk, and the codes are scored unscaled.
        for (int r0 = 0; r0 < rows;) {
          const int r1 = r0 + std::min(rows - r0, bs - (t + r0) % bs);
          const float* channel_scales =
              layer.k.scales + (std::size_t(slots[r0] / bs) * n_kv_heads + kv_head) * head_dim;
          for (int j = 0; j < group; ++j) {
            for (int d = 0; d < head_dim; ++d) {
              q_scaled[std::size_t(j) * head_dim + d] =
                  group_q[std::size_t(j) * head_dim + d] * channel_scales[d];
            }
          }
          score_int4_rows(head_scores + r0, q_scaled.data(), group, k_rows + r0, offset, nullptr,
                          group_size, r1 - r0, inv_sqrt_dim, head_dim);
          r0 = r1;
        }
      }
    } else if (direct) {
      for (int r = 0; r < rows; r += kScoreRowsAtOnce) {
        const int block_rows = std::min(kScoreRowsAtOnce, rows - r);
        for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
          for (int i = r; i < r + block_rows; ++i) {
            factors[i] = scaled ? layer.k.scales[slots[i] * n_kv_heads + kv_head] * inv_sqrt_dim
                                : inv_sqrt_dim;
          }
          score_rows(scores.data() + std::size_t(kv_head) * group * kChunk + r,
                     s.q + std::size_t(kv_head) * group * head_dim, group, k_rows + r,
                     std::size_t(kv_head) * head_dim, block_rows, factors.data() + r, head_dim);
        }
      }
    }
    if (!direct) {
      std::fill(factors.begin(), factors.end(), inv_sqrt_dim);
      for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
        load_tile(layer.k, s.sinks.k, t, rows, kv_head);
        score_rows(scores.data() + std::size_t(kv_head) * group * kChunk,
                   s.q + std::size_t(kv_head) * group * head_dim, group, tile_rows, 0, rows,
                   factors.data(), head_dim);
      }
    }

    // 2. The online softmax.
    fold_chunk(partial, scores.data(), rows, rescale.data(), s.n_heads);

    // 3. Values, each KV head's rows once for its group; a row's scale rides on its weight.
    for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
      const std::size_t first_head = std::size_t(kv_head) * group;
      const float* head_weights = scores.data() + first_head * kChunk;
      float* o = partial.o + first_head * head_dim;
      if (!direct) {
        load_tile(layer.v, s.sinks.v, t, rows, kv_head);
        accumulate_rows(o, group, rescale.data() + first_head, head_weights, tile_rows, 0, rows,
                        head_dim);
        continue;
      }
      if constexpr (kInt4) {
        for (int r = 0; r < rows; ++r) {
          v_group_scales[r] =
              layer.v.scales + slots[r] * v_scales_per_row + std::size_t(kv_head) * groups_per_head;
        }
        accumulate_int4_rows(o, group, rescale.data() + first_head, head_weights, v_rows,
                             kv_head * head_codes, v_group_scales, group_size, rows, head_dim);
      } else {
        if (scaled) {
          for (int r = 0; r < rows; ++r) {
            const float v_scale = layer.v.scales[slots[r] * n_kv_heads + kv_head];
            for (int j = 0; j < group; ++j) {
              weights[j * kChunk + r] = head_weights[j * kChunk + r] * v_scale;
            }
          }
          head_weights = weights.data();
        }
        accumulate_rows(o, group, rescale.data() + first_head, head_weights, v_rows,
                        std::size_t(kv_head) * head_dim, rows, head_dim);
      }
    }
    t += rows;
  }
}

}  // namespace

void decode_split_quant(int variant, float* out, const float* q, const QuantPagedLayer& layer,
                        const int* block_table, int n_ctx, int n_heads,
                        const FullPrecisionRows& sinks, ThreadPool* pool) {
  const KvPoolShape shape{1, layer.n_kv_heads, layer.head_dim, layer.block_size};
  const std::size_t pool_bytes =
      std::size_t(kv_bytes_per_token(layer.dtype, shape) * double(n_ctx));
  const Step step{q, layer, block_table, sinks, n_heads};
  const NumberFormat format = layer.dtype.format;
  const bool integer_int8 = variant == 4 && format == NumberFormat::int8 && sinks.n_rows == 0 &&
                            !layer.keys_before_rope &&
                            int8_integer_loops_run(layer.head_dim, n_heads / layer.n_kv_heads);
  split_context(out, n_ctx, n_heads, layer.head_dim, pool_bytes, pool,
                [&](const SlicePartial& partial, int begin, int end) {
                  if (integer_int8) {
                    return attend_int8_slice(partial, q, layer, block_table, n_heads, begin, end);
                  }
                  // Keys stored before RoPE are turned in the tile before they are scored.
                  if (layer.keys_before_rope) {
                    return attend_slice<float>(partial, step, false, begin, end);
                  }
                  switch (format) {
                    case NumberFormat::fp32:
                      return attend_slice<float>(partial, step, true, begin, end);
                    case NumberFormat::fp16:
                      return attend_slice<Half>(partial, step, true, begin, end);
                    case NumberFormat::bf16:
                      return attend_slice<Bfloat>(partial, step, true, begin, end);
                    case NumberFormat::int8:
                      return attend_slice<std::int8_t>(partial, step, true, begin, end);
                    case NumberFormat::fp8_e4m3:
                      return attend_slice<Fp8>(partial, step, true, begin, end);
                    case NumberFormat::int4:
                      return attend_slice<PackedInt4>(partial, step, true, begin, end);
                  }
                });
}

}  // namespace kvc::cpu::fast
