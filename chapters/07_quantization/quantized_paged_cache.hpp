// Chapter 07: the paged cache of chapter 04, quantized on write.
//
// Same blocks, block tables and copy-on-write (ch04::BlockManager); each
// block's K and V rows are stored in a common/kv_dtype.hpp format, with their
// fp32 scales beside the pages, and attention dequantizes them inside its
// loop (cpu::attention_decode_paged_quant), block by block:
//   k_codes:  [n_layers][num_blocks][block_size][n_kv_heads][row_bytes]   (v_codes the same)
//   k_scales: [n_layers][num_blocks][kv_scale_floats_per_block(key layout)]
// KIVI's per-channel keys need a block's tokens to share a scale, so until a
// block is full its keys are also kept in fp32 (key_staging_) and the block is
// requantized from them on each write: the full-precision window of the most
// recent tokens, at most one block per sequence.
//
// Attention sinks: with sink_tokens > 0 the first sink_tokens positions of
// every sequence are also kept in fp32 (sink_rows_, keyed like the window by
// the sequence's first block, so forks share them and copy-on-write copies
// them), and attention reads those instead of their codes.
//
// Keys before RoPE (KVQuant, Hooper et al. 2024): RoPE turns each channel
// pair (2i, 2i+1) by an angle that grows with the position, so a channel that
// is large in every token is smeared over its pair, differently at each
// position, and per-channel scales fit the keys worse. With keys_before_rope
// the cache stores every key unrotated (codes, KIVI's fp32 window and the sink
// rows alike) and attention turns each key row back by its position after
// dequantizing it (QuantPagedLayer::keys_before_rope). The seam hands
// attend() keys already turned by the forward pass, so store() turns them back
// (rope_heads inverse, at the token's position): the transpose of the same
// rotation, which adds two roundings per channel (about 1e-7 relative), far
// below any format's step. Getting the pre-RoPE keys through the seam instead
// would change the forward pass every chapter shares for one option.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "common/kv_dtype.hpp"
#include "common/kv_memory.hpp"
#include "kernels/cpu/attention_paged_quant.hpp"

namespace kvc::ch07 {

// The options the lesson measures beside the format.
struct QuantOptions {
  int sink_tokens = 0;    // first positions of each sequence also kept in fp32
  bool hadamard = false;  // rotate K, V (and q, and back the output) per head by a Hadamard matrix
  bool keys_before_rope = false;  // store keys unrotated; attention turns them by RoPE (KVQuant)
};

class QuantizedPagedKVCache final : public ch04::PagedKVStrategy {
 public:
  // Throws kvc::Error for a block size outside [1, 256], fewer than one
  // block, sink_tokens outside [0, block_size], a Hadamard rotation of a
  // head_dim that is not a power of two, or hadamard with keys_before_rope.
  QuantizedPagedKVCache(const ModelConfig& config, const KvDtype& dtype, int num_blocks,
                        int block_size, ThreadPool* pool, const QuantOptions& options = {});

  std::string name() const override { return "07 quantized paged cache (" + dtype_.name() + ")"; }
  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override;
  // Held blocks at kv_bytes_per_block(dtype), plus the fp32 window of unfilled
  // KIVI key blocks and the fp32 sink rows.
  std::size_t kv_bytes_reserved() const override;

  const KvDtype& dtype() const { return dtype_; }
  KvPoolShape shape() const;
  // One layer of the pool as the kernels read it.
  cpu::QuantPagedLayer layer_view(int layer) const;

  // Quantizes the K, V rows ([n_kv_heads * head_dim] each) of the token at
  // `position` into pool row `slot` of `layer`, as attend() does after placing
  // it; k as attention sees it (after RoPE). A block's rows must arrive in
  // order (KIVI requantizes rows 0..slot's row).
  void store(int layer, std::int64_t slot, int position, const float* k, const float* v);
  // The fp32 sink rows of `layer` for the sequence whose first block is `first_block`.
  cpu::FullPrecisionRows sink_rows(int layer, int first_block) const;

 private:
  void copy_block(const ch04::BlockCopy& copy) override;
  void prepare(const Batch& batch, std::vector<std::int64_t> slots) override;
  // The fp32 window and sink rows of blocks that went back to the free list.
  void forget_free_blocks() override;
  std::size_t sink_floats_per_layer() const;

  ModelConfig config_;
  KvDtype dtype_;
  ThreadPool* pool_;
  std::size_t row_bytes_;           // one (token, KV head) row of one side
  std::size_t k_scales_per_block_;  // fp32 scales, one layer
  std::size_t v_scales_per_block_;
  // Page-aligned like chapter 04's pool (common/kv_memory.hpp), so a format
  // is never timed against fp32 pages that sit better in memory than its own.
  KvBytes k_codes_, v_codes_;
  KvFloats k_scales_, v_scales_;
  // block -> its keys in fp32, [n_layers][block_size][n_kv_heads * head_dim], while not full
  std::map<int, std::vector<float>> key_staging_;
  int sink_tokens_;
  bool hadamard_;
  bool keys_before_rope_;
  std::vector<float> unrotated_k_;  // keys_before_rope: one token's keys, RoPE undone
  std::vector<float> rotated_;      // hadamard: the batch's rotated q, k, v
  // first block -> [n_layers][K, V][sink_tokens][n_kv_heads * head_dim] in fp32
  std::map<int, std::vector<float>> sink_rows_;
  std::vector<std::int64_t> slots_;  // [n] the batch's pool rows, from reserve()
};

// Throws kvc::Error (one line) when a pool on `device` cannot hold `kv_dtype`
// with `options`: on the GPU only fp32, int8 and fp8, without sinks or a
// Hadamard rotation. Needs no device, so a program can ask before it starts one.
void check_device_runs(Device device, const KvDtype& kv_dtype, const QuantOptions& options = {});

// The chapter's strategy: a pool for `max_seqs` sequences of the model's full
// context. On --device cuda: fp32 is chapter 04's GPU pool, int8 and fp8 the
// GPU quantized pool (quantized_paged_cache_cuda.hpp); any other format, sinks
// or a Hadamard rotation throw kvc::Error before the device is touched.
std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          const KvDtype& kv_dtype, int block_size = 16,
                                          int max_seqs = 1, const QuantOptions& options = {});

// A pool of exactly `num_blocks` blocks, as chapter 04's scheduler sizes it
// (ch04_serve --kv-dtype); the same errors as make_strategy.
std::unique_ptr<ch04::PagedKVStrategy> make_paged_pool(const ModelConfig& config,
                                                       const DeviceContext& device,
                                                       const KvDtype& kv_dtype, int num_blocks,
                                                       int block_size,
                                                       const QuantOptions& options = {});

}  // namespace kvc::ch07
