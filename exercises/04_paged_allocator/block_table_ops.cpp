// Exercise: chapter 04, block tables and slot mapping.
//
// Build and test with scripts/check-exercises.sh 4 (see exercises/README.md).
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
// num_tokens < 0. Any num_tokens up to INT_MAX must work.
// Hint: the usual (num_tokens + block_size - 1) / block_size overflows int
// when num_tokens is near INT_MAX (a request size can come from a user);
// divide first, then add one for a remainder.
// Expected time: 10 minutes (with slot_for).
int blocks_needed(int /*num_tokens*/, int /*block_size*/) {
  throw NotImplemented("ch04: blocks_needed");
}

}  // namespace kvc::ch04
