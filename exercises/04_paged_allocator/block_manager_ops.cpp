// Exercise: chapter 04, the BlockManager: what the next step costs.
//
// Before every step the scheduler asks each running sequence how many free
// blocks its next tokens will take, and preempts until the sum fits. Count
// too few and the pool runs dry in the middle of a forward pass; count too
// many and sequences are preempted for nothing.
//
// Build and test with scripts/check-exercises.sh 4 (see exercises/README.md).
#include "chapters/04_paged_allocator/block_manager.hpp"

namespace kvc::ch04 {

// Contract: the blocks that appending n_tokens positions to `seq_id` takes
// from the free list (0 when n_tokens <= 0):
//   - a sequence with no table yet needs blocks_needed(n_tokens, block_size());
//   - otherwise, the new blocks past the ones it holds:
//     blocks_needed(num_tokens + n_tokens) - blocks held (never negative);
//   - plus 1 when its first new token lands in its partly filled last block
//     and that block is shared (reference count > 1, after a fork): place()
//     will copy it first (copy-on-write).
// Hint: table(seq_id) is nullptr for an unknown sequence;
// allocator().ref_count(block) says how many holders a block has.
// Expected time: 20 minutes.
int BlockManager::blocks_to_append(int /*seq_id*/, int /*n_tokens*/) const {
  throw NotImplemented("ch04: BlockManager::blocks_to_append");
}

}  // namespace kvc::ch04
