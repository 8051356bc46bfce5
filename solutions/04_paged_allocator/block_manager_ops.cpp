// Solution: chapter 04, the BlockManager: what the next step costs.
#include <algorithm>

#include "chapters/04_paged_allocator/block_manager.hpp"

namespace kvc::ch04 {

int BlockManager::blocks_to_append(int seq_id, int n_tokens) const {
  if (n_tokens <= 0) return 0;
  const BlockTable* t = table(seq_id);
  if (!t) return blocks_needed(n_tokens, block_size_);
  const int held = static_cast<int>(t->blocks.size());
  const int fresh = std::max(0, blocks_needed(t->num_tokens + n_tokens, block_size_) - held);
  const bool writes_shared_last_block =
      t->num_tokens % block_size_ != 0 && allocator_.ref_count(t->blocks.back()) > 1;
  return fresh + (writes_shared_last_block ? 1 : 0);
}

}  // namespace kvc::ch04
