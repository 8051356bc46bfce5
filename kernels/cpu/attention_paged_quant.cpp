// Decode attention over a quantized paged pool (see attention_paged_quant.hpp).
//
// Each format adds a row loader (dequantize_block_rows), not a kernel copy:
// the scoring and summing loops are chapter 04's (attention_rows.hpp), run
// over a tile of block_size rows that the loader fills from the block's codes
// and scales. The tile stays in L1, so memory traffic is the quantized bytes.
#include "kernels/cpu/attention_paged_quant.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/check.hpp"
#include "kernels/cpu/attention_rows.hpp"
#include "kernels/cpu/kv_quant.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::cpu {

namespace {

// Unpacks n int4 codes (two per byte, low nibble first) as floats.
inline void unpack_int4(float* out, const unsigned char* packed, int n) {
  for (int j = 0; j < n / 2; ++j) {
    const auto byte = static_cast<std::int8_t>(packed[j]);
    out[2 * j] = float(static_cast<std::int8_t>(byte << 4) >> 4);  // sign-extend bits 0-3
    out[2 * j + 1] = float(byte >> 4);                             // bits 4-7, arithmetic shift
  }
}

// Rows scored at once from a transposed tile: one AVX register of sums.
constexpr int kRowsAtOnce = 8;

// scores[j * scores_stride + r] = group_q[j] . tile_t[:, r] / scale for the
// n_rows columns of a transposed key tile, tile_t: [head_dim][block_size].
// The sums of kRowsAtOnce rows live in a local array (registers) and the loop
// over them is innermost, so it vectorizes while every score stays one
// in-order sum over d: the same bits as rows::score_group.
void score_transposed(float* scores, std::size_t scores_stride, const float* group_q, int group,
                      const float* tile_t, int n_rows, int block_size, int head_dim, float scale) {
  for (int j = 0; j < group; ++j) {
    const float* head_q = group_q + std::size_t(j) * head_dim;
    for (int r0 = 0; r0 < n_rows; r0 += kRowsAtOnce) {
      const int width = std::min(kRowsAtOnce, block_size - r0);
      float sums[kRowsAtOnce] = {};
      if (width == kRowsAtOnce) {
        for (int d = 0; d < head_dim; ++d) {
          const float q_d = head_q[d];
          const float* keys_d = tile_t + std::size_t(d) * block_size + r0;
          for (int r = 0; r < kRowsAtOnce; ++r) sums[r] += q_d * keys_d[r];
        }
      } else {
        for (int d = 0; d < head_dim; ++d) {
          const float* keys_d = tile_t + std::size_t(d) * block_size + r0;
          for (int r = 0; r < width; ++r) sums[r] += head_q[d] * keys_d[r];
        }
      }
      for (int r = r0; r < std::min(n_rows, r0 + kRowsAtOnce); ++r) {
        scores[j * scores_stride + r] = sums[r - r0] / scale;
      }
    }
  }
}

// Output dimensions summed at once: four AVX registers of a head's output.
constexpr int kDimsAtOnce = 32;

// group_out[j][:] += weights[j * weights_stride + t] * tile[t][:] for the
// n_rows rows of a tile ([n_rows][head_dim]), in order of t, like
// rows::accumulate_group; but kDimsAtOnce outputs stay in registers across
// the rows instead of being loaded and stored once per row.
void accumulate_tile(float* group_out, const float* weights, std::size_t weights_stride, int group,
                     const float* tile, int n_rows, int head_dim) {
  for (int j = 0; j < group; ++j) {
    float* head_out = group_out + std::size_t(j) * head_dim;
    const float* head_weights = weights + j * weights_stride;
    int d0 = 0;
    for (; d0 + kDimsAtOnce <= head_dim; d0 += kDimsAtOnce) {
      float sums[kDimsAtOnce];
      for (int i = 0; i < kDimsAtOnce; ++i) sums[i] = head_out[d0 + i];
      for (int t = 0; t < n_rows; ++t) {
        const float weight = head_weights[t];
        const float* value = tile + std::size_t(t) * head_dim + d0;
        for (int i = 0; i < kDimsAtOnce; ++i) sums[i] += weight * value[i];
      }
      for (int i = 0; i < kDimsAtOnce; ++i) head_out[d0 + i] = sums[i];
    }
    for (int t = 0; t < n_rows && d0 < head_dim; ++t) {  // the last head_dim % 32 outputs
      const float weight = head_weights[t];
      for (int d = d0; d < head_dim; ++d)
        head_out[d] += weight * tile[std::size_t(t) * head_dim + d];
    }
  }
}

void check_variant(int variant) {
  KVC_CHECK(variant >= 0 && variant <= kPagedQuantDecodeVariants,
            "cpu::attention_decode_paged_quant: no variant ", variant, " (0 = best, 1..",
            kPagedQuantDecodeVariants, ")");
}

}  // namespace

void dequantize_block_rows(float* tile, const QuantPagedLayer& layer, const QuantPages& side,
                           int block, int kv_head, int n_rows) {
  const int head_dim = layer.head_dim;
  const std::size_t row_bytes = kv_row_bytes(layer.dtype, head_dim);
  const KvPoolShape shape{1, layer.n_kv_heads, head_dim, layer.block_size};
  const float* block_scales =
      side.scales + std::size_t(block) * kv_scale_floats_per_block(side.layout, layer.dtype, shape);
  for (int r = 0; r < n_rows; ++r) {
    const std::size_t row =
        (std::size_t(block) * layer.block_size + r) * layer.n_kv_heads + kv_head;
    const unsigned char* codes = side.codes + row * row_bytes;
    float* out = tile + std::size_t(r) * head_dim;
    const float row_scale = side.layout == ScaleLayout::per_token_head
                                ? block_scales[r * layer.n_kv_heads + kv_head]
                                : 0;
    switch (layer.dtype.format) {
      case NumberFormat::fp32:
        std::memcpy(out, codes, head_dim * sizeof(float));
        break;
      case NumberFormat::fp16:
      case NumberFormat::bf16: {
        const bool half = layer.dtype.format == NumberFormat::fp16;
        for (int d = 0; d < head_dim; ++d) {
          std::uint16_t bits;
          std::memcpy(&bits, codes + 2 * d, 2);
          out[d] = half ? fp16_to_float_finite(bits) : bf16_to_float(bits);
        }
        break;
      }
      case NumberFormat::int8: {
        const auto* q = reinterpret_cast<const std::int8_t*>(codes);
        for (int d = 0; d < head_dim; ++d) out[d] = float(q[d]) * row_scale;
        break;
      }
      case NumberFormat::fp8_e4m3:
        for (int d = 0; d < head_dim; ++d) out[d] = fp8_e4m3_to_float_finite(codes[d]) * row_scale;
        break;
      case NumberFormat::int4:
        unpack_int4(out, codes, head_dim);
        if (side.layout == ScaleLayout::per_channel) {
          const float* channel_scales = block_scales + std::size_t(kv_head) * head_dim;
          for (int d = 0; d < head_dim; ++d) out[d] *= channel_scales[d];
        } else {
          const int group = layer.dtype.group_size;
          const float* group_scales =
              block_scales + (std::size_t(r) * layer.n_kv_heads + kv_head) * (head_dim / group);
          for (int g = 0; g < head_dim / group; ++g) {
            for (int d = g * group; d < (g + 1) * group; ++d) out[d] *= group_scales[g];
          }
        }
        break;
    }
  }
}

void rope_key_tile(float* tile, const QuantPagedLayer& layer, int first, int n_rows) {
  for (int r = 0; r < n_rows; ++r) {
    rope_heads(tile + std::size_t(r) * layer.head_dim, 1, layer.head_dim, first + r);
  }
}

std::size_t attention_decode_paged_quant_scratch_floats(int variant, int n_ctx, int n_heads,
                                                        const QuantPagedLayer& layer) {
  check_variant(variant);
  if (variant >= 3) return 0;
  // scores [group][n_ctx], a tile [block_size][head_dim] and its transpose.
  const std::size_t tile = std::size_t(layer.block_size) * layer.head_dim;
  return std::size_t(n_heads / layer.n_kv_heads) * n_ctx + 2 * tile;
}

void attention_decode_paged_quant(int variant, float* out, const float* q,
                                  const QuantPagedLayer& layer, const int* block_table, int n_ctx,
                                  int n_heads, float* scratch, const FullPrecisionRows& sinks,
                                  ThreadPool* pool) {
  check_variant(variant);
  if (variant == 0) variant = 2;
  KVC_CHECK(layer.block_size >= 1, "cpu::attention_decode_paged_quant: block size ",
            layer.block_size, " (must be at least 1)");
  if (variant >= 3) {
    fast::decode_split_quant(variant, out, q, layer, block_table, n_ctx, n_heads, sinks, pool);
    return;
  }
  const int head_dim = layer.head_dim;
  const int group = n_heads / layer.n_kv_heads;
  const float scale = sqrtf(float(head_dim));
  const int num_blocks = (n_ctx + layer.block_size - 1) / layer.block_size;
  const auto rows_in = [&](int b) {
    return std::min(layer.block_size, n_ctx - b * layer.block_size);
  };
  float* scores = scratch;  // [group][n_ctx]
  float* tile = scratch + std::size_t(group) * n_ctx;
  float* tile_t = tile + std::size_t(layer.block_size) * head_dim;
  // Logical block b's rows of one KV head as floats, the fp32 sink rows in
  // place of their codes; keys stored before RoPE get it here, sinks included.
  const auto load_tile = [&](const QuantPages& side, const float* sink_rows, int b, int kv_head) {
    dequantize_block_rows(tile, layer, side, block_table[b], kv_head, rows_in(b));
    const int first = b * layer.block_size;
    for (int t = first; t < std::min(sinks.n_rows, first + rows_in(b)); ++t) {
      std::memcpy(tile + std::size_t(t - first) * head_dim,
                  sink_rows + (std::size_t(t) * layer.n_kv_heads + kv_head) * head_dim,
                  head_dim * sizeof(float));
    }
    if (layer.keys_before_rope && &side == &layer.k) rope_key_tile(tile, layer, first, rows_in(b));
  };

  for (int kv_head = 0; kv_head < layer.n_kv_heads; ++kv_head) {
    const float* group_q = q + std::size_t(kv_head) * group * head_dim;
    float* group_out = out + std::size_t(kv_head) * group * head_dim;

    for (int b = 0; b < num_blocks; ++b) {
      const int n_rows = rows_in(b);
      load_tile(layer.k, sinks.k, b, kv_head);
      if (variant == 1) {
        rows::score_group(scores + b * layer.block_size, n_ctx, group_q, group, tile, n_rows,
                          head_dim, head_dim, scale);
        continue;
      }
      // Rows past n_rows are zeros: scored, never stored.
      for (int r = 0; r < layer.block_size; ++r) {
        for (int d = 0; d < head_dim; ++d) {
          tile_t[std::size_t(d) * layer.block_size + r] =
              r < n_rows ? tile[std::size_t(r) * head_dim + d] : 0.0f;
        }
      }
      score_transposed(scores + b * layer.block_size, n_ctx, group_q, group, tile_t, n_rows,
                       layer.block_size, head_dim, scale);
    }

    for (int j = 0; j < group; ++j) softmax(scores + std::size_t(j) * n_ctx, n_ctx);

    for (std::size_t i = 0; i < std::size_t(group) * head_dim; ++i) group_out[i] = 0.0f;
    for (int b = 0; b < num_blocks; ++b) {
      load_tile(layer.v, sinks.v, b, kv_head);
      if (variant == 1) {
        rows::accumulate_group(group_out, scores + b * layer.block_size, n_ctx, group, tile,
                               rows_in(b), head_dim, head_dim);
      } else {
        accumulate_tile(group_out, scores + b * layer.block_size, n_ctx, group, tile, rows_in(b),
                        head_dim);
      }
    }
  }
}

}  // namespace kvc::cpu
