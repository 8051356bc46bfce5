// The bookkeeping half of the paged cache: which blocks each sequence holds.
//
// It owns the allocator and every sequence's block table, and decides where
// each new token's K, V go (a fresh block, or a private copy of a shared one),
// but never touches KV data itself. The CPU and CUDA pools both use it; they
// differ only in where their pages live and how a block is copied. The
// scheduler reads it to know what fits before it runs a step.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "chapters/04_paged_allocator/block_allocator.hpp"
#include "chapters/04_paged_allocator/block_table.hpp"
#include "common/check.hpp"

namespace kvc::ch04 {

// The pool ran out of blocks: a result for the scheduler (wait, preempt), not a crash.
class PoolExhausted : public Error {
 public:
  using Error::Error;
};

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

class BlockManager {
 public:
  // Throws kvc::Error for a block size outside [1, 256] or fewer than one block.
  BlockManager(int num_blocks, int block_size);

  int block_size() const { return block_size_; }
  const BlockAllocator& allocator() const { return allocator_; }
  const BlockTable* table(int seq_id) const;

  // Makes room for position `pos` of `seq_id` (a new block when the position
  // starts one; a private copy when its block is shared) and returns where it
  // goes. Positions must arrive in order (pos <= tokens held). Throws
  // PoolExhausted, changing nothing, when a block is needed and none is free.
  Placement place(int seq_id, int pos);

  // The sequence is gone: drop its references (shared blocks stay with their other owners).
  void release(int seq_id);

  // `child` starts as a copy of `parent`'s table, sharing every block.
  void fork(int parent, int child);

  // EXERCISE (exercises/04_paged_allocator/block_manager_ops.cpp)
  // Blocks that appending n_tokens positions to `seq_id` would take from the
  // free list: new blocks, plus one copy when its shared last block gets written.
  int blocks_to_append(int seq_id, int n_tokens) const;

  // The allocator's invariants, and every block's reference count equal to
  // the number of tables that hold it. Throws kvc::Error.
  void check_invariants() const;

 private:
  int block_size_;
  BlockAllocator allocator_;
  std::map<int, BlockTable> tables_;  // sequence id -> its blocks
};

}  // namespace kvc::ch04
