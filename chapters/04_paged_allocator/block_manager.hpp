// The bookkeeping half of the paged cache: which blocks each sequence holds.
//
// It owns the allocator and every sequence's block table, and decides where
// each new token's K, V go (a fresh block, or a private copy of a shared one),
// but never touches KV data itself. The CPU and CUDA pools both use it; they
// differ only in where their pages live and how a block is copied. The
// scheduler reads it to know what fits before it runs a step.
//
// It is also the extension point for chapter 05's prefix cache, which derives
// from it (as nano-vllm's block manager does its hashing): the sequence
// lifecycle hooks below do nothing here, and a block may be held by a cache
// as well as by tables. A block whose only holder is the cache is
// "reclaimable": not free, but the pool takes it back (reclaim()) when the
// free list runs dry, so it counts as available.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "chapters/04_paged_allocator/block_allocator.hpp"
#include "chapters/04_paged_allocator/block_table.hpp"
#include "common/check.hpp"
#include "engine/batch.hpp"
#include "engine/kv_strategy.hpp"

namespace kvc::ch04 {

using kvc::PoolExhausted;

// Copy-on-write: the caller must copy block `from`'s pages into block `to`
// (every layer, K and V) before writing to `to`.
struct BlockCopy {
  int from;
  int to;
};

struct Placement {
  std::int64_t slot;  // the pool row the token's K, V go to
  std::optional<BlockCopy> copy;
};

// Room made for a whole batch: where each token goes, and the copies to make first.
struct Reservation {
  std::vector<std::int64_t> slots;  // [n] pool row of each token of the batch
  std::vector<BlockCopy> copies;    // in order
};

// n_tokens new positions for one sequence in the next step.
struct SequenceAppend {
  int seq_id;
  int n_tokens;
};

class BlockManager {
 public:
  // Throws kvc::Error for a block size outside [1, 256] or fewer than one block.
  BlockManager(int num_blocks, int block_size);
  virtual ~BlockManager() = default;
  BlockManager(const BlockManager&) = delete;
  BlockManager& operator=(const BlockManager&) = delete;

  int block_size() const { return block_size_; }
  const BlockAllocator& allocator() const { return allocator_; }
  const BlockTable* table(int seq_id) const;

  // Blocks the next step may take: free ones, and cached ones only a cache holds.
  int num_available() const { return allocator_.num_free() + num_reclaimable_; }
  int num_reclaimable() const { return num_reclaimable_; }

  // Makes room for position `pos` of `seq_id`, which must be the next one
  // (pos == tokens held): a new block when the position starts one, a private
  // copy when its block is shared. Throws PoolExhausted, changing nothing,
  // when a block is needed and none is available.
  Placement place(int seq_id, int pos);

  // Places every token of the batch, or nothing (vLLM's allocate_slots): when
  // the batch needs more blocks than are available, returns std::nullopt and
  // changes nothing. Throws kvc::Error, changing nothing, when a sequence's
  // positions in the batch do not continue the positions it holds.
  std::optional<Reservation> try_reserve(const Batch& batch);

  // The sequence is gone: drop its references (shared blocks stay with their other owners).
  virtual void release(int seq_id);

  // EXERCISE (exercises/04_paged_allocator/block_manager_ops.cpp)
  // Blocks that appending n_tokens positions to `seq_id` would take from the
  // free list: new blocks, plus one copy when its shared last block gets written.
  int blocks_to_append(int seq_id, int n_tokens) const;

  // The same for a whole step, exactly: when every holder of a shared,
  // partly filled block writes to it this step, the last writer finds itself
  // its only holder and writes in place, so n sharers make n - 1 copies.
  int blocks_to_append(std::span<const SequenceAppend> appends) const;

  // ---- the sequence lifecycle (KVStrategy's), here without a prefix cache ----------------

  // Returns the positions of `tokens` whose K, V the pool already holds for a
  // new sequence: none here.
  virtual int begin_sequence(int seq_id, std::span<const int> tokens);
  // The longest prefix of `tokens` begin_sequence would find, changing nothing.
  virtual int cached_prefix_tokens(std::span<const int> tokens) const;
  // Computed positions other sequences may share now: nothing to do here.
  virtual void publish(int seq_id, std::span<const int> tokens);
  // The sequence has ended: here, release().
  virtual void finish_sequence(int seq_id, std::span<const int> tokens);
  // `child` starts as a copy of `parent`'s table, sharing every block.
  virtual void fork(int parent, int child);
  // True when blocks outlive their sequences for others to share (chapter 05).
  virtual bool shares_prefixes() const { return false; }

  // The allocator's invariants, and every block's reference count equal to
  // the number of tables that hold it plus one when a cache holds it. Throws kvc::Error.
  virtual void check_invariants() const;

 protected:
  // A cache gives up to num_blocks of its blocks back (least valuable first)
  // and stops holding them; the pool drops the cache's reference. Called only
  // when the free list is empty and num_reclaimable() > 0. Default: none.
  virtual std::vector<int> reclaim(int num_blocks);

  // The cache takes a reference of its own on `block` / gives its reference up.
  void cache_holds(int block);
  void cache_drops(int block);
  bool held_by_cache(int block) const { return held_by_cache_[static_cast<std::size_t>(block)]; }

  // A new sequence starts on `blocks` (held elsewhere too), which hold its first num_tokens.
  void adopt(int seq_id, std::span<const int> blocks, int num_tokens);
  // Logical block `logical` of the sequence holds the same tokens as `block`:
  // share that one instead, dropping the sequence's own copy.
  void share_instead(int seq_id, int logical, int block);

 private:
  // A block for a table: a free one, or one reclaimed from the cache.
  std::optional<int> take_block();
  void add_ref(int block);
  void drop_ref(int block);

  int block_size_;
  BlockAllocator allocator_;
  std::map<int, BlockTable> tables_;  // sequence id -> its blocks
  std::vector<bool> held_by_cache_;   // [num_blocks] a cache holds one reference
  int num_reclaimable_ = 0;           // blocks whose only reference is the cache's
};

}  // namespace kvc::ch04
