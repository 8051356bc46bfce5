// Exercise: chapter 04, block tables and slot mapping.
//
// Build with -DKVC_EXERCISES=ON and run `ctest -L ch04`.
#include "chapters/04_paged_allocator/block_table.hpp"
#include "common/check.hpp"

namespace kvc::ch04 {

// Contract: the pool row holding `position` of the sequence whose table this
// is: table.blocks[position / block_size] * block_size + position % block_size.
// With block_size 16 and blocks {5, 2}: position 0 -> 80, 17 -> 33.
// Throw kvc::Error (KVC_CHECK) when block_size < 1, position < 0, or the
// position's logical block is past the end of table.blocks.
// Hint: return a std::int64_t computed in 64 bits; a big pool has more than
// 2^31 rows.
std::int64_t slot_for(const BlockTable& /*table*/, int /*position*/, int /*block_size*/) {
  throw NotImplemented("ch04: slot_for");
}

// Contract: the blocks that hold num_tokens tokens, ceil(num_tokens /
// block_size): a partly filled last block still takes a whole block, and 0
// tokens take 0 blocks. Throw kvc::Error when block_size < 1 or
// num_tokens < 0.
int blocks_needed(int /*num_tokens*/, int /*block_size*/) {
  throw NotImplemented("ch04: blocks_needed");
}

}  // namespace kvc::ch04
