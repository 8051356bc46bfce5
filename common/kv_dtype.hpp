// How a KV cache stores its numbers: one host-side description every part of
// the course can read (no CUDA headers), so a 4-bit format and its scales can
// be expressed and their bytes counted exactly. The number format itself is
// common/number_format.hpp's, shared with the weights; this adds the scales.
//
//   name         bits  key scales                 value scales
//   fp32         32    none                       none
//   fp16, bf16   16    none                       none
//   int8          8    per (token, KV head)       per (token, KV head)
//   fp8           8    per (token, KV head)       per (token, KV head)     (E4M3, max 448)
//   int4-token    4    per (token, head, group)   per (token, head, group)
//   int4          4    per (block, head, channel) per (token, head, group) (KIVI)
//
// Scales are fp32. A "group" is group_size consecutive channels of one head's
// row; KIVI's per-channel key scales cover the tokens of one cache block.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/number_format.hpp"

namespace kvc {

enum class ScaleLayout {
  none,             // the values are the numbers themselves
  per_token_head,   // one scale per (token, KV head): head_dim values
  per_token_group,  // one scale per (token, KV head, group of group_size channels)
  per_channel,      // one scale per (block, KV head, channel): block_size values
};

struct KvDtype {
  NumberFormat format = NumberFormat::fp32;
  ScaleLayout key_scales = ScaleLayout::none;
  ScaleLayout value_scales = ScaleLayout::none;
  int group_size = 0;  // channels per scale for per_token_group, else 0

  int bits() const { return format_bits(format); }  // per stored value: 32, 16, 8 or 4
  std::string name() const;                         // the --kv-dtype spelling, e.g. "int4"
  bool is_float() const { return key_scales == ScaleLayout::none; }
};

// The --kv-dtype names, in the order of the table above.
std::span<const char* const> kv_dtype_names();

// The format called `name` for heads of head_dim channels. group_size applies
// to the int4 formats (0: 32, or the whole head row when head_dim < 32).
// Throws kvc::Error for an unknown name, a group size given to another
// format, or a group that does not divide head_dim into an even number of
// channels (int4 packs two per byte).
KvDtype parse_kv_dtype(const std::string& name, int head_dim, int group_size = 0);

// The shape of a paged KV pool, as the byte count needs it.
struct KvPoolShape {
  int n_layers = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int block_size = 0;  // tokens per block
};

// Bytes of one side (K or V) of one (token, KV head) row's values, scales excluded.
std::int64_t kv_row_bytes(const KvDtype& dtype, int head_dim);

// fp32 scales of one side of one block of one layer, all KV heads.
std::int64_t kv_scale_floats_per_block(ScaleLayout layout, const KvDtype& dtype,
                                       const KvPoolShape& shape);

// Everything one block of the pool holds, K and V, every layer: values plus
// scales. Checked 64-bit arithmetic: throws kvc::Error on overflow or a
// non-positive dimension.
std::int64_t kv_bytes_per_block(const KvDtype& dtype, const KvPoolShape& shape);

// kv_bytes_per_block / block_size: what one cached token costs on average.
double kv_bytes_per_token(const KvDtype& dtype, const KvPoolShape& shape);

}  // namespace kvc
