// Chapter 04: the block allocator — OS-style paging for the KV cache.
//
// The KV pool is cut into num_blocks fixed-size physical blocks of block_size
// tokens. A sequence owns a list of blocks (its block table) and grows one
// block at a time, so at most block_size - 1 slots per sequence sit unused.
// Blocks carry reference counts so sequences can share them (parallel
// sampling forks, later the prefix cache) and copy only on write.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kvc::ch04 {

class BlockAllocator {
 public:
  // All blocks start free. Throws kvc::Error when num_blocks < 1.
  explicit BlockAllocator(int num_blocks);

  int num_blocks() const { return static_cast<int>(ref_counts_.size()); }
  int num_free() const { return static_cast<int>(free_list_.size()); }
  int num_used() const { return num_blocks() - num_free(); }
  bool can_allocate(int n) const { return n <= num_free(); }

  // EXERCISE (exercises/04_paged_allocator/block_allocator_ops.cpp)
  // O(1): takes a block from the free list and gives it reference count 1.
  // Running out is a result, not an error: std::nullopt when no block is free.
  std::optional<int> allocate();

  // EXERCISE: drops one reference; at zero the block goes back on the free
  // list. Throws kvc::Error for an id out of range or a block that is free.
  void free(int block);

  // Another owner now shares `block` (a forked sequence): one more reference.
  // Throws kvc::Error for an id out of range or a free block.
  void share(int block);

  int ref_count(int block) const;

  // Every block is either free (count 0, on the free list exactly once) or
  // used (count > 0, not on the list). Throws kvc::Error naming the first
  // violation. Tests call it after every operation.
  void check_invariants() const;

  // "blocks 8: used 3 [0:1 1:2 4:1], free 5" — for debugging and lessons.
  std::string debug_string() const;

 private:
  std::vector<int> free_list_;   // ids of free blocks; allocate() pops from the back
  std::vector<int> ref_counts_;  // [num_blocks] owners of each block; 0 = free
};

}  // namespace kvc::ch04
