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
// So the pool's bytes are read once, as codes, and no float copy of a row is
// written anywhere. int4 (packed, with group or per-channel scales), a chunk
// holding attention-sink rows, and every row of a pool whose keys are stored
// before RoPE (they are turned after dequantizing) are dequantized into an L1
// tile by dequantize_block_rows first, and the same loops read the tile.
// Rounds differently from variants 1-2 (FMA, the scale applied after the sum,
// a vector exp): tested by tolerance.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

// Query heads scored or summed together: 4 heads x 2 accumulators = 8
// independent FMA chains, next to the shared key or value vectors.
constexpr int kHeadsAtOnce = 4;

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

// ROWS rows (2 at most: 8 accumulators) against HEADS query heads, eight
// dimensions a step: each query vector is loaded once for the ROWS rows,
// each row's codes once for the HEADS heads.
template <int HEADS, int ROWS, typename Code>
void score_rows_heads(float* scores, const float* group_q, const Code* const* rows,
                      std::size_t offset, const float* factors, int head_dim) {
  const Code* row[ROWS];
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) row[r] = rows[r] + offset;
  __m256 acc[ROWS][HEADS];
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) acc[r][j] = _mm256_setzero_ps();
  }
  for (int d = 0; d < head_dim; d += 8) {
    __m256 key[ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < ROWS; ++r) key[r] = load8(row[r] + d);
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) {
      const __m256 q = _mm256_loadu_ps(group_q + std::size_t(j) * head_dim + d);
#pragma GCC unroll 4
      for (int r = 0; r < ROWS; ++r) acc[r][j] = _mm256_fmadd_ps(q, key[r], acc[r][j]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < HEADS; ++j) scores[j * kChunk + r] = horizontal_sum(acc[r][j]) * factors[r];
  }
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
  constexpr ScoreFn kOneRow[kHeadsAtOnce] = {
      score_rows_heads<1, 1, Code>, score_rows_heads<2, 1, Code>, score_rows_heads<3, 1, Code>,
      score_rows_heads<4, 1, Code>};
  constexpr ScoreFn kTwoRows[kHeadsAtOnce] = {
      score_rows_heads<1, 2, Code>, score_rows_heads<2, 2, Code>, score_rows_heads<3, 2, Code>,
      score_rows_heads<4, 2, Code>};
  for (int r = 0; r < n_rows; r += 2) {
    const ScoreFn* fns = n_rows - r >= 2 ? kTwoRows : kOneRow;
    for (int j = 0; j < group; j += kHeadsAtOnce) {
      fns[std::min(kHeadsAtOnce, group - j) - 1](scores + j * kChunk + r,
                                                 group_q + std::size_t(j) * head_dim, rows + r,
                                                 offset, factors + r, head_dim);
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

// ---- one slice of the context ---------------------------------------------------------------

struct Step {
  const float* q;
  const QuantPagedLayer& layer;
  const int* block_table;
  const FullPrecisionRows& sinks;
  int n_heads;
};

void prefetch_bytes(const void* first, std::size_t bytes) {
  const auto* p = static_cast<const char*>(first);
  for (std::size_t byte = 0; byte < bytes; byte += 64) __builtin_prefetch(p + byte, 0, 2);
}

// Positions [begin, end) into `partial`, chunk by chunk; Code is the pool's
// element type when its rows are read directly (read_codes), else float and
// every chunk goes through the tile.
template <typename Code>
void attend_slice(const SlicePartial& partial, const Step& s, bool read_codes, int begin, int end) {
  const QuantPagedLayer& layer = s.layer;
  const int head_dim = layer.head_dim, n_kv_heads = layer.n_kv_heads, bs = layer.block_size;
  const int group = s.n_heads / n_kv_heads;
  const float inv_sqrt_dim = 1.0f / std::sqrt(float(head_dim));
  // One pool row: every KV head's codes of one position, one side.
  const std::size_t pool_row_bytes = std::size_t(n_kv_heads) * kv_row_bytes(layer.dtype, head_dim);
  const bool scaled = layer.k.layout != ScaleLayout::none;
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
        if (scaled) __builtin_prefetch(layer.v.scales + slots[r] * n_kv_heads, 0, 2);
        if (t + rows + r < end) {
          const std::int64_t next = slot_of(t + rows + r);
          prefetch_bytes(layer.k.codes + next * pool_row_bytes, pool_row_bytes);
          if (scaled) __builtin_prefetch(layer.k.scales + next * n_kv_heads, 0, 2);
        }
      }
    }

    // 1. Scores: through memory two rows at a time, every KV head of the two.
    if (direct) {
      for (int r = 0; r < rows; r += 2) {
        const int pair = std::min(2, rows - r);
        for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
          for (int i = r; i < r + pair; ++i) {
            factors[i] = scaled ? layer.k.scales[slots[i] * n_kv_heads + kv_head] * inv_sqrt_dim
                                : inv_sqrt_dim;
          }
          score_rows(scores.data() + std::size_t(kv_head) * group * kChunk + r,
                     s.q + std::size_t(kv_head) * group * head_dim, group, k_rows + r,
                     std::size_t(kv_head) * head_dim, pair, factors.data() + r, head_dim);
        }
      }
    } else {
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
    t += rows;
  }
}

}  // namespace

void decode_split_quant(float* out, const float* q, const QuantPagedLayer& layer,
                        const int* block_table, int n_ctx, int n_heads,
                        const FullPrecisionRows& sinks, ThreadPool* pool) {
  const KvPoolShape shape{1, layer.n_kv_heads, layer.head_dim, layer.block_size};
  const std::size_t pool_bytes =
      std::size_t(kv_bytes_per_token(layer.dtype, shape) * double(n_ctx));
  const Step step{q, layer, block_table, sinks, n_heads};
  const KvFormat format = layer.dtype.format;
  split_context(out, n_ctx, n_heads, layer.head_dim, pool_bytes, pool,
                [&](const SlicePartial& partial, int begin, int end) {
                  // Keys stored before RoPE are turned in the tile before they are scored.
                  if (layer.keys_before_rope) {
                    return attend_slice<float>(partial, step, false, begin, end);
                  }
                  switch (format) {
                    case KvFormat::fp32:
                      return attend_slice<float>(partial, step, true, begin, end);
                    case KvFormat::fp16:
                      return attend_slice<Half>(partial, step, true, begin, end);
                    case KvFormat::bf16:
                      return attend_slice<Bfloat>(partial, step, true, begin, end);
                    case KvFormat::int8:
                      return attend_slice<std::int8_t>(partial, step, true, begin, end);
                    case KvFormat::fp8_e4m3:
                      return attend_slice<Fp8>(partial, step, true, begin, end);
                    case KvFormat::int4:  // packed two a byte: through the tile
                      return attend_slice<float>(partial, step, false, begin, end);
                  }
                });
}

}  // namespace kvc::cpu::fast
