// Decode attention over a quantized paged pool (see attention_paged_quant.hpp).
//
// Each format adds a row loader (dequantize_block_rows), not a kernel copy:
// the scoring and summing loops are chapter 04's (attention_rows.hpp), run
// over a tile of block_size rows that the loader fills from the block's codes
// and scales. The tile stays in L1, so memory traffic is the quantized bytes.
#include "kernels/cpu/attention_paged_quant.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/check.hpp"
#include "kernels/cpu/attention_rows.hpp"
#include "kernels/cpu/kv_quant.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::cpu {

namespace {

// Every E4M3 code's value: a table lookup is cheaper than decoding bits.
const std::array<float, 256>& fp8_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = fp8_e4m3_to_float(static_cast<std::uint8_t>(c));
    return t;
  }();
  return table;
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
      case KvFormat::fp32:
        std::memcpy(out, codes, head_dim * sizeof(float));
        break;
      case KvFormat::fp16:
      case KvFormat::bf16: {
        const bool half = layer.dtype.format == KvFormat::fp16;
        for (int d = 0; d < head_dim; ++d) {
          std::uint16_t bits;
          std::memcpy(&bits, codes + 2 * d, 2);
          out[d] = half ? fp16_to_float(bits) : bf16_to_float(bits);
        }
        break;
      }
      case KvFormat::int8: {
        const auto* q = reinterpret_cast<const std::int8_t*>(codes);
        for (int d = 0; d < head_dim; ++d) out[d] = float(q[d]) * row_scale;
        break;
      }
      case KvFormat::fp8_e4m3: {
        const std::array<float, 256>& table = fp8_table();
        for (int d = 0; d < head_dim; ++d) out[d] = table[codes[d]] * row_scale;
        break;
      }
      case KvFormat::int4:
        if (side.layout == ScaleLayout::per_channel) {
          const float* channel_scales = block_scales + std::size_t(kv_head) * head_dim;
          for (int d = 0; d < head_dim; ++d) out[d] = float(int4_at(codes, d)) * channel_scales[d];
        } else {
          const int group = layer.dtype.group_size;
          const float* group_scales =
              block_scales + (std::size_t(r) * layer.n_kv_heads + kv_head) * (head_dim / group);
          for (int d = 0; d < head_dim; ++d) {
            out[d] = float(int4_at(codes, d)) * group_scales[d / group];
          }
        }
        break;
    }
  }
}

std::size_t attention_decode_paged_quant_scratch_floats(int variant, int n_ctx, int n_heads,
                                                        const QuantPagedLayer& layer) {
  check_variant(variant);
  // scores [group][n_ctx], then one tile [block_size][head_dim].
  return std::size_t(n_heads / layer.n_kv_heads) * n_ctx +
         std::size_t(layer.block_size) * layer.head_dim;
}

void attention_decode_paged_quant(int variant, float* out, const float* q,
                                  const QuantPagedLayer& layer, const int* block_table, int n_ctx,
                                  int n_heads, float* scratch) {
  check_variant(variant);
  KVC_CHECK(layer.block_size >= 1, "cpu::attention_decode_paged_quant: block size ",
            layer.block_size, " (must be at least 1)");
  const int head_dim = layer.head_dim;
  const int group = n_heads / layer.n_kv_heads;
  const float scale = sqrtf(float(head_dim));
  const int num_blocks = (n_ctx + layer.block_size - 1) / layer.block_size;
  const auto rows_in = [&](int b) {
    return std::min(layer.block_size, n_ctx - b * layer.block_size);
  };
  float* scores = scratch;  // [group][n_ctx]
  float* tile = scratch + std::size_t(group) * n_ctx;

  for (int kv_head = 0; kv_head < layer.n_kv_heads; ++kv_head) {
    const float* group_q = q + std::size_t(kv_head) * group * head_dim;
    float* group_out = out + std::size_t(kv_head) * group * head_dim;

    for (int b = 0; b < num_blocks; ++b) {
      dequantize_block_rows(tile, layer, layer.k, block_table[b], kv_head, rows_in(b));
      rows::score_group(scores + b * layer.block_size, n_ctx, group_q, group, tile, rows_in(b),
                        head_dim, head_dim, scale);
    }

    for (int j = 0; j < group; ++j) softmax(scores + std::size_t(j) * n_ctx, n_ctx);

    for (std::size_t i = 0; i < std::size_t(group) * head_dim; ++i) group_out[i] = 0.0f;
    for (int b = 0; b < num_blocks; ++b) {
      dequantize_block_rows(tile, layer, layer.v, block_table[b], kv_head, rows_in(b));
      rows::accumulate_group(group_out, scores + b * layer.block_size, n_ctx, group, tile,
                             rows_in(b), head_dim, head_dim);
    }
  }
}

}  // namespace kvc::cpu
