// Chapter 04: the paged KV cache (PagedAttention, Kwon et al., SOSP 2023).
//
// One pool of fixed-size blocks per layer, shared by every sequence:
//   k_pages: [n_layers][num_blocks][block_size][n_kv_heads][head_dim]   (v_pages the same)
// A sequence holds only the blocks its tokens fill (its BlockTable), taken
// from the BlockAllocator one block at a time as it grows and returned when it
// ends, so memory follows the tokens actually held instead of the maximum
// context. Forked sequences share blocks and copy one only when they write to it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "chapters/02_contiguous_kv_cache/attention_kernel.hpp"
#include "chapters/04_paged_allocator/block_manager.hpp"
#include "common/config.hpp"
#include "common/kv_dtype.hpp"
#include "common/kv_memory.hpp"
#include "engine/kv_strategy.hpp"

namespace kvc::ch04 {

// The shape of the pool, and how its pages store numbers.
struct PagedLayout {
  int n_layers = 0;
  int num_blocks = 0;
  int block_size = 0;  // tokens per block
  int n_kv_heads = 0;
  int head_dim = 0;
  KvDtype dtype;  // NEW (ch07): the pages' format and scales; fp32 (no scales) by default

  int kv_dim() const { return n_kv_heads * head_dim; }
  // Values (not bytes) of one side (K or V) of one block of one layer.
  std::size_t values_per_block() const { return static_cast<std::size_t>(block_size) * kv_dim(); }
  std::size_t values_per_layer() const { return values_per_block() * num_blocks; }
  // Where `block` of `layer` starts in the K (or V) pages, in values.
  std::size_t block_offset(int layer, int block) const {
    return layer * values_per_layer() + block * values_per_block();
  }
  KvPoolShape shape() const { return {n_layers, n_kv_heads, head_dim, block_size}; }
  // One block's K and V in every layer, scales included (common/kv_dtype.hpp counts
  // them, as the calculator does): what a sequence pays per block it holds.
  std::size_t kv_bytes_per_block() const {
    return static_cast<std::size_t>(kvc::kv_bytes_per_block(dtype, shape()));
  }
};

// ---- EXERCISE (exercises/04_paged_allocator/paged_attention_ops.cpp) --------------------

// Attention of one token at position `pos` over its sequence's positions
// 0..pos, read through the block table from one layer's pages
// (layer_k_pages: [num_blocks][block_size][n_kv_heads][head_dim]).
// Same bits as chapter 02's decode_attention over the same rows.
//   q, out: [n_heads][head_dim]; scratch: paged_decode_scratch_floats(pos + 1, n_heads) floats.
void paged_decode_attention(float* out, const float* q, const PagedLayout& layout,
                            const float* layer_k_pages, const float* layer_v_pages,
                            const BlockTable& table, int pos, int n_heads, float* scratch);
// One score per query head and position: [n_heads][n_ctx], n_ctx = pos + 1.
inline std::size_t paged_decode_scratch_floats(int n_ctx, int n_heads) {
  return static_cast<std::size_t>(n_ctx) * n_heads;
}

// ---- the strategy -------------------------------------------------------------------------

// A paged cache on any device: the block bookkeeping the scheduler reads
// (what fits) and drives (fork, release), over pages the device keeps.
// PagedKVCache (CPU) and PagedKVCacheCuda differ only in where the pages live:
// this class does the seam's bookkeeping (reserve, the sequence lifecycle)
// once, and they copy blocks and prepare their kernels' metadata.
class PagedKVStrategy : public KVStrategy {
 public:
  bool keeps_history() const override { return true; }
  // The blocks held right now (by sequences, or by a prefix cache), not the whole pool.
  std::size_t kv_bytes_reserved() const override {
    return blocks_->allocator().num_used() * layout_.kv_bytes_per_block();
  }

  int begin_sequence(int seq_id, std::span<const int> tokens) override {
    return blocks_->begin_sequence(seq_id, tokens);
  }
  // Places the batch (BlockManager::try_reserve: all or nothing), copies the
  // blocks copy-on-write asks for, then lets the device prepare what attend() reads.
  // Throws PoolExhausted, changing nothing, when the batch does not fit.
  void reserve(const Batch& batch) final;
  void publish(int seq_id, std::span<const int> tokens) override {
    blocks_->publish(seq_id, tokens);
  }
  void finish_sequence(int seq_id, std::span<const int> tokens) override {
    blocks_->finish_sequence(seq_id, tokens);
    forget_free_blocks();
  }
  void release(int seq_id) override {
    blocks_->release(seq_id);
    forget_free_blocks();
  }

  // Which blocks each sequence holds. blocks().fork(parent, child) starts a
  // sequence sharing all of parent's blocks (parallel sampling); the first
  // write to a shared block copies it (copy-on-write).
  BlockManager& blocks() { return *blocks_; }
  const BlockManager& blocks() const { return *blocks_; }
  const PagedLayout& layout() const { return layout_; }

 protected:
  // The pool's shape comes from `blocks` (chapter 04's BlockManager, or a
  // chapter 05 one that caches prefixes); its pages store `dtype`.
  PagedKVStrategy(const ModelConfig& config, const KvDtype& dtype,
                  std::unique_ptr<BlockManager> blocks)
      : layout_{config.n_layers,      blocks->allocator().num_blocks(),
                blocks->block_size(), config.n_kv_heads,
                config.head_dim(),    dtype},
        blocks_(std::move(blocks)) {}

  // Copy-on-write: block copy.from's pages (every layer, K and V) into copy.to.
  virtual void copy_block(const BlockCopy& copy) = 0;
  // The batch is placed: slots[i] is token i's pool row. Keep what attend() needs.
  virtual void prepare(const Batch& batch, std::vector<std::int64_t> slots) = 0;
  // Blocks went back to the free list (a device keeping per-block state drops it).
  virtual void forget_free_blocks() {}

  PagedLayout layout_;
  std::unique_ptr<BlockManager> blocks_;
};

class PagedKVCache final : public PagedKVStrategy {
 public:
  // A pool of num_blocks blocks of block_size tokens. Throws kvc::Error for a
  // block size outside [1, 256] or fewer than one block. `kernel` picks the
  // decode attention attend() runs (chapter 02's list).
  PagedKVCache(const ModelConfig& config, int num_blocks, int block_size, ThreadPool* pool,
               ch02::AttentionKernel kernel = ch02::AttentionKernel::kLoop);
  // The pool `blocks` describes, bookkept by it.
  PagedKVCache(const ModelConfig& config, std::unique_ptr<BlockManager> blocks, ThreadPool* pool,
               ch02::AttentionKernel kernel = ch02::AttentionKernel::kLoop);

  std::string name() const override {
    return blocks_->shares_prefixes() ? "05 paged cache + prefix cache" : "04 paged cache";
  }
  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override;

 private:
  void copy_block(const BlockCopy& copy) override;
  void prepare(const Batch& batch, std::vector<std::int64_t> slots) override;

  ModelConfig config_;
  ThreadPool* pool_;
  ch02::AttentionKernel kernel_;
  KvFloats k_pages_;                 // [n_layers][num_blocks][block_size][n_kv_heads][head_dim]
  KvFloats v_pages_;                 // same
  std::vector<std::int64_t> slots_;  // [n] the batch's pool rows, from reserve()
};

// The batch's block tables as a GPU paged kernel reads them: one row per
// sequence of the batch, as wide as the longest table (chapter 04's and
// chapter 07's CUDA caches upload them once per forward).
struct BatchBlockTables {
  std::vector<int> tables;  // [sequences][max_blocks]; entries past a table's end: 0, unread
  std::vector<int> rows;    // [n] each token's row of tables
  int max_blocks = 1;
};
BatchBlockTables batch_block_tables(const Batch& batch, const BlockManager& blocks);

// The most blocks a pool may have, as the programs' --kv-blocks allow.
inline constexpr int kMaxPoolBlocks = 1 << 30;

// A pool of num_blocks blocks on the device (the CPU's PagedKVCache, or the
// GPU's). The tuned kernels run on the CPU only: asking for one on the GPU
// throws kvc::Error.
std::unique_ptr<PagedKVStrategy> make_paged_cache(
    const ModelConfig& config, const DeviceContext& device, int num_blocks, int block_size,
    ch02::AttentionKernel kernel = ch02::AttentionKernel::kLoop);
// The pool `blocks` describes, on the device.
std::unique_ptr<PagedKVStrategy> make_paged_cache(
    const ModelConfig& config, const DeviceContext& device, std::unique_ptr<BlockManager> blocks,
    ch02::AttentionKernel kernel = ch02::AttentionKernel::kLoop);

// The chapter's strategy with a pool big enough for `max_seqs` sequences of
// the model's full context (what the tour and the end-to-end tests use).
std::unique_ptr<KVStrategy> make_strategy(
    const ModelConfig& config, const DeviceContext& device, int block_size = 16, int max_seqs = 1,
    ch02::AttentionKernel kernel = ch02::AttentionKernel::kLoop);

}  // namespace kvc::ch04
