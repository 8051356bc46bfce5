// Chapter 04: the block allocator's bookkeeping. allocate() and free() are the
// chapter's exercise (block_allocator_ops.cpp); everything else lives here.
#include "chapters/04_paged_allocator/block_allocator.hpp"

#include <sstream>

#include "common/check.hpp"

namespace kvc::ch04 {

BlockAllocator::BlockAllocator(int num_blocks) {
  KVC_CHECK(num_blocks >= 1, "the block pool needs at least one block, got ", num_blocks);
  ref_counts_.assign(num_blocks, 0);
  // allocate() pops from the back, so pushing ids in descending order hands
  // out block 0 first.
  free_list_.reserve(num_blocks);
  for (int block = num_blocks - 1; block >= 0; --block) free_list_.push_back(block);
}

void BlockAllocator::share(int block) {
  KVC_CHECK(ref_count(block) > 0, "cannot share block ", block, ": it is free");
  ++ref_counts_[block];
}

int BlockAllocator::ref_count(int block) const {
  KVC_CHECK(block >= 0 && block < num_blocks(), "block id ", block, " is outside the pool of ",
            num_blocks(), " blocks");
  return ref_counts_[block];
}

void BlockAllocator::check_invariants() const {
  std::vector<bool> on_free_list(ref_counts_.size(), false);
  for (const int block : free_list_) {
    KVC_CHECK(block >= 0 && block < num_blocks(), "the free list holds block id ", block,
              ", outside the pool of ", num_blocks(), " blocks");
    KVC_CHECK(!on_free_list[block], "block ", block, " is on the free list twice");
    KVC_CHECK(ref_counts_[block] == 0, "block ", block,
              " is on the free list with reference count ", ref_counts_[block]);
    on_free_list[block] = true;
  }
  for (int block = 0; block < num_blocks(); ++block) {
    KVC_CHECK(ref_counts_[block] >= 0, "block ", block, " has reference count ",
              ref_counts_[block]);
    KVC_CHECK(ref_counts_[block] > 0 || on_free_list[block], "block ", block,
              " has no owner but is not on the free list (leaked)");
  }
}

std::string BlockAllocator::debug_string() const {
  std::ostringstream out;
  out << "blocks " << num_blocks() << ": used " << num_used() << " [";
  const char* separator = "";
  for (int block = 0; block < num_blocks(); ++block) {
    if (ref_counts_[block] == 0) continue;
    out << separator << block << ':' << ref_counts_[block];
    separator = " ";
  }
  out << "], free " << num_free();
  return out.str();
}

}  // namespace kvc::ch04
