// Exercise: chapter 04, the block allocator's allocate and free.
//
// Build and test with scripts/check-exercises.sh 4 (see exercises/README.md);
// the randomized test there checks your allocator after every one of thousands of operations.
//
// The state (block_allocator.hpp):
//   free_list_   ids of the free blocks; allocate() takes from the back
//   ref_counts_  [num_blocks] owners of each block; 0 means free
// A block is free exactly when its count is 0, and then it is on the free list
// exactly once. check_invariants() verifies this; keep it true.
#include "chapters/04_paged_allocator/block_allocator.hpp"
#include "common/check.hpp"

namespace kvc::ch04 {

// Contract: O(1). Take the block at the back of free_list_, give it reference
// count 1 and return its id. When no block is free return std::nullopt: the
// caller decides what to do (wait, preempt a sequence); it is not an error.
// The constructor filled the list in descending order, so a fresh allocator
// hands out 0, 1, 2, ...; a freed block is the next one handed out.
// Expected time: 20 minutes (with free).
std::optional<int> BlockAllocator::allocate() {
  throw NotImplemented("ch04: BlockAllocator::allocate");
}

// Contract: O(1). Drop one reference to `block`. A shared block (count > 1)
// stays in use; when the count reaches 0 the block goes back on the free list.
// Throw kvc::Error (KVC_CHECK) for an id outside the pool or a block that is
// already free — and throw before changing anything, so a caller's mistake
// never corrupts the pool.
// Hint: ref_count(block) already rejects ids outside the pool.
void BlockAllocator::free(int /*block*/) {
  throw NotImplemented("ch04: BlockAllocator::free");
}

}  // namespace kvc::ch04
