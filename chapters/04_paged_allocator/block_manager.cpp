#include "chapters/04_paged_allocator/block_manager.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace kvc::ch04 {

BlockManager::BlockManager(int num_blocks, int block_size)
    : block_size_(block_size), allocator_(num_blocks) {
  KVC_CHECK(block_size >= 1 && block_size <= 256,
            "paged KV cache: block size must be in [1, 256], got ", block_size);
}

const BlockTable* BlockManager::table(int seq_id) const {
  const auto it = tables_.find(seq_id);
  return it == tables_.end() ? nullptr : &it->second;
}

Placement BlockManager::place(int seq_id, int pos) {
  BlockTable& table = tables_[seq_id];
  KVC_CHECK(pos <= table.num_tokens, "paged KV cache: sequence ", seq_id, " position ", pos,
            " skips ahead of the ", table.num_tokens, " positions cached");
  Placement placement{};
  const std::size_t logical = pos / block_size_;
  if (logical == table.blocks.size()) {
    const auto block = allocator_.allocate();
    if (!block) {
      if (table.blocks.empty()) tables_.erase(seq_id);
      throw PoolExhausted("paged KV cache: all " + std::to_string(allocator_.num_blocks()) +
                          " blocks are in use (sequence " + std::to_string(seq_id) +
                          " needs one more for position " + std::to_string(pos) + ")");
    }
    table.blocks.push_back(*block);
  }
  int& block = table.blocks[logical];
  if (allocator_.ref_count(block) > 1) {
    // Copy-on-write: the block is shared with a fork; give this sequence its own copy.
    const auto copy = allocator_.allocate();
    if (!copy) {
      throw PoolExhausted("paged KV cache: no free block to copy shared block " +
                          std::to_string(block) + " for sequence " + std::to_string(seq_id));
    }
    placement.copy = BlockCopy{block, *copy};
    allocator_.free(block);
    block = *copy;
  }
  table.num_tokens = std::max(table.num_tokens, pos + 1);
  placement.slot = slot_for(table, pos, block_size_);
  return placement;
}

void BlockManager::release(int seq_id) {
  const auto it = tables_.find(seq_id);
  if (it == tables_.end()) return;
  for (int block : it->second.blocks) allocator_.free(block);
  tables_.erase(it);
}

void BlockManager::fork(int parent, int child) {
  KVC_CHECK(tables_.count(parent) == 1, "paged KV cache: cannot fork unknown sequence ", parent);
  KVC_CHECK(tables_.count(child) == 0, "paged KV cache: fork target ", child, " already exists");
  const BlockTable& source = tables_.at(parent);
  for (int block : source.blocks) allocator_.share(block);
  tables_[child] = source;
}

void BlockManager::check_invariants() const {
  allocator_.check_invariants();
  std::vector<int> owners(allocator_.num_blocks(), 0);
  for (const auto& [seq, t] : tables_) {
    KVC_CHECK(static_cast<int>(t.blocks.size()) == blocks_needed(t.num_tokens, block_size_),
              "paged KV cache: sequence ", seq, " holds ", t.blocks.size(), " blocks for ",
              t.num_tokens, " tokens");
    for (int block : t.blocks) ++owners.at(block);
  }
  for (int b = 0; b < allocator_.num_blocks(); ++b) {
    KVC_CHECK(owners[b] == allocator_.ref_count(b), "paged KV cache: block ", b, " is held by ",
              owners[b], " tables but has reference count ", allocator_.ref_count(b));
  }
}

}  // namespace kvc::ch04
