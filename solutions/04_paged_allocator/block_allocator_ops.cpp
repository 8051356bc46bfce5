// Solution: chapter 04, the block allocator's allocate and free.
#include "chapters/04_paged_allocator/block_allocator.hpp"
#include "common/check.hpp"

namespace kvc::ch04 {

std::optional<int> BlockAllocator::allocate() {
  if (free_list_.empty()) return std::nullopt;
  const int block = free_list_.back();
  free_list_.pop_back();
  ref_counts_[block] = 1;
  return block;
}

void BlockAllocator::free(int block) {
  // ref_count() rejects ids outside the pool; checking before touching
  // anything leaves the allocator intact when the caller is wrong.
  KVC_CHECK(ref_count(block) > 0, "free of block ", block, ", which is already free");
  if (--ref_counts_[block] == 0) free_list_.push_back(block);
}

}  // namespace kvc::ch04
