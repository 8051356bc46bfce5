// Paged decode attention over a quantized KV pool (chapter 07): the contract
// of cpu::attention_decode_paged (ops.hpp), with every K and V row stored in
// one of common/kv_dtype.hpp's formats and dequantized inside the loop, block
// by block, so the pool's bytes are read once, already small.
#pragma once

#include <cstddef>

#include "common/kv_dtype.hpp"

namespace kvc {
class ThreadPool;
}

namespace kvc::cpu {

// One side (K or V) of one layer of the pool.
//   codes:  [num_blocks][block_size][n_kv_heads][kv_row_bytes(dtype, head_dim)]
//   scales: [num_blocks][kv_scale_floats_per_block(layout, ...)], per block:
//     per_token_head  [block_size][n_kv_heads]
//     per_token_group [block_size][n_kv_heads][head_dim / group_size]
//     per_channel     [n_kv_heads][head_dim]   (over the block's tokens)
struct QuantPages {
  const unsigned char* codes = nullptr;
  const float* scales = nullptr;
  ScaleLayout layout = ScaleLayout::none;
};

struct QuantPagedLayer {
  KvDtype dtype;
  QuantPages k, v;
  int block_size = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  // Keys stored before RoPE (KVQuant): every key row read (codes or sink row)
  // is turned by rope_heads at its position in the sequence before it is scored.
  bool keys_before_rope = false;
};

// Rows 0..n_rows-1 of physical block `block`, KV head `kv_head`, as floats:
// tile: [n_rows][head_dim]. What every kernel below reads, and what tests
// dequantize a whole pool with.
void dequantize_block_rows(float* tile, const QuantPagedLayer& layer, const QuantPages& side,
                           int block, int kv_head, int n_rows);

// keys_before_rope: turns the n_rows key rows of a tile ([n_rows][head_dim]),
// the sequence's positions first.., by RoPE at their positions.
void rope_key_tile(float* tile, const QuantPagedLayer& layer, int first, int n_rows);

// The first n_rows positions of a sequence kept in fp32 (attention sinks),
// read instead of the pool's rows for those positions:
//   k, v: [n_rows][n_kv_heads][head_dim]
struct FullPrecisionRows {
  const float* k = nullptr;
  const float* v = nullptr;
  int n_rows = 0;
};

// Variants:
//   1: dequantize each block's K (then V) rows of one KV head into an L1 tile
//      and run chapter 04's grouped loops over it (any format; fp32 gives the
//      same bits as attention_decode_paged).
//   2: the same, but keys are scored from a transposed tile ([head_dim][block_size]),
//      so the innermost loop runs over a block's rows and vectorizes while each
//      score stays one in-order sum over head_dim; values are summed 32 output
//      dimensions at a time, held in registers across the block's rows. Every
//      sum keeps variant 1's order: the same bits.
//   3: chapter 04's split-context variant 4 over the codes
//      (attention_paged_quant_fast.cpp): the context split across `pool`,
//      online softmax; int8, fp8, fp16, bf16 (and fp32) rows are read as codes
//      inside the AVX2 dot products, eight widened to floats per register and
//      shared by the group's query heads, the row's scale applied once per
//      row; packed int4 likewise, its group scales applied to the widened
//      codes and KIVI's per-channel key scales to q once per block. Every
//      format goes through variant 1's tile when keys_before_rope (the rows
//      must be turned by RoPE before they are scored). Rounds differently (FMA, vector exp): tested
//      against the reference by tolerance.
//   4: variant 3 with an int8 pool's products done in integers
//      (attention_paged_quant_int8.cpp): q and each chunk's softmax weights
//      rounded to int16, and vpmaddwd (or, where the build machine has
//      AVX-512 VNNI, vpdpwssd) multiplies int16 pairs against the widened
//      codes, summing exactly in int32 (llama.cpp's q8_0 dot products do the
//      same). Other formats, sinks, keys stored
//      before RoPE and heads its vector loops do not fit run variant 3.
//      Tested by tolerance. The fast one.
// Variant 0 picks 2, so a cache that calls it keeps variant 1's bits. Only
// variants 3 and 4 use `pool`. Throws kvc::Error for an unknown variant.
//   q, out:      [n_heads][head_dim]; the token attends to positions 0..n_ctx-1
//   block_table: [ceil(n_ctx / block_size)]
//   scratch:     attention_decode_paged_quant_scratch_floats(...) floats
constexpr int kPagedQuantDecodeVariants = 4;
constexpr int kFastPagedQuantDecode = 4;
void attention_decode_paged_quant(int variant, float* out, const float* q,
                                  const QuantPagedLayer& layer, const int* block_table, int n_ctx,
                                  int n_heads, float* scratch, const FullPrecisionRows& sinks = {},
                                  ThreadPool* pool = nullptr);
std::size_t attention_decode_paged_quant_scratch_floats(int variant, int n_ctx, int n_heads,
                                                        const QuantPagedLayer& layer);

namespace fast {
struct SlicePartial;
// Variants 3 and 4 (attention_paged_quant_fast.cpp); keep their per-slice state themselves.
void decode_split_quant(int variant, float* out, const float* q, const QuantPagedLayer& layer,
                        const int* block_table, int n_ctx, int n_heads,
                        const FullPrecisionRows& sinks, ThreadPool* pool);
// Variant 4's slice of an int8 pool without sinks (attention_paged_quant_int8.cpp):
// positions [begin, end) folded into `partial`. Runs only where
// int8_integer_loops_run(head_dim, group): on AVX2 builds where its vector
// loops fit (head_dim a multiple of 16, up to 512; group a multiple of 4),
// on others for head_dim up to 512 (int32 sums stay exact).
bool int8_integer_loops_run(int head_dim, int group);
void attend_int8_slice(const SlicePartial& partial, const float* q, const QuantPagedLayer& layer,
                       const int* block_table, int n_heads, int begin, int end);
}  // namespace fast

}  // namespace kvc::cpu
