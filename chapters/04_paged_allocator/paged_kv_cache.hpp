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
#include <map>
#include <memory>
#include <vector>

#include "chapters/04_paged_allocator/block_allocator.hpp"
#include "chapters/04_paged_allocator/block_table.hpp"
#include "common/check.hpp"
#include "common/config.hpp"
#include "engine/kv_strategy.hpp"

namespace kvc::ch04 {

// The pool ran out of blocks: a result for the scheduler (wait, preempt), not a crash.
class PoolExhausted : public Error {
 public:
  using Error::Error;
};

// The shape of the pool.
struct PagedLayout {
  int n_layers = 0;
  int num_blocks = 0;
  int block_size = 0;  // tokens per block
  int n_kv_heads = 0;
  int head_dim = 0;

  int kv_dim() const { return n_kv_heads * head_dim; }
  std::size_t floats_per_block() const { return static_cast<std::size_t>(block_size) * kv_dim(); }
  std::size_t floats_per_layer() const { return floats_per_block() * num_blocks; }
};

// ---- EXERCISE (exercises/04_paged_allocator/paged_attention_ops.cpp) --------------------

// Attention of one token at position `pos` over its sequence's positions
// 0..pos, read through the block table from one layer's pages
// (layer_k_pages: [num_blocks][block_size][n_kv_heads][head_dim]).
//   q, out: [n_heads][head_dim]; scratch: paged_decode_scratch_floats(...) floats.
void paged_decode_attention(float* out, const float* q, const PagedLayout& layout,
                            const float* layer_k_pages, const float* layer_v_pages,
                            const BlockTable& table, int pos, int n_heads, float* scratch);
std::size_t paged_decode_scratch_floats(const PagedLayout& layout, int n_ctx, int n_heads);

// ---- the strategy -------------------------------------------------------------------------

class PagedKVCache final : public KVStrategy {
 public:
  // A pool of num_blocks blocks of block_size tokens. Throws kvc::Error for a
  // block size outside [1, 256] or fewer than one block.
  PagedKVCache(const ModelConfig& config, int num_blocks, int block_size, ThreadPool* pool);

  std::string name() const override { return "04 paged cache"; }
  bool keeps_history() const override { return true; }
  // Throws PoolExhausted when a token needs a new block and none is free;
  // the tokens of the batch placed before it stay placed.
  void attend(int layer, const Batch& batch, const float* q, const float* k, const float* v,
              float* out) override;
  // The blocks sequences hold right now (the pool itself is pool_bytes()).
  std::size_t kv_bytes_reserved() const override;
  void release(int seq_id) override;

  // `child` starts as a copy of `parent` sharing all its blocks (parallel
  // sampling); the first write to a shared block copies it (copy-on-write).
  void fork(int parent, int child);

  // New blocks `seq_id` needs to append n_tokens more positions.
  int blocks_to_append(int seq_id, int n_tokens) const;

  std::size_t pool_bytes() const;
  const PagedLayout& layout() const { return layout_; }
  const BlockAllocator& allocator() const { return allocator_; }
  const BlockTable* table(int seq_id) const;

  // The allocator's invariants, and every block's reference count equal to
  // the number of block tables that hold it. Throws kvc::Error.
  void check_invariants() const;

 private:
  // Makes room for position `pos` of `seq_id` (a new block, or a private copy
  // of a shared one) and returns the pool row its K, V go to.
  std::int64_t place(int seq_id, int pos);
  void copy_block(int from, int to);

  ModelConfig config_;
  PagedLayout layout_;
  ThreadPool* pool_;
  BlockAllocator allocator_;
  std::map<int, BlockTable> tables_;  // sequence id -> its blocks
  std::vector<float> k_pages_;        // [n_layers][num_blocks][block_size][n_kv_heads][head_dim]
  std::vector<float> v_pages_;        // same
  std::vector<std::int64_t> slots_;   // [n] the batch's pool rows, placed at layer 0
};

// The chapter's strategy with a pool big enough for `max_seqs` sequences of
// the model's full context (what the demos and the end-to-end tests use).
std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          int block_size = 16, int max_seqs = 1);

}  // namespace kvc::ch04
