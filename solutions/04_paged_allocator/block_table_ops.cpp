// Solution: chapter 04, block tables and slot mapping.
#include "chapters/04_paged_allocator/block_table.hpp"
#include "common/check.hpp"

namespace kvc::ch04 {

std::int64_t slot_for(const BlockTable& table, int position, int block_size) {
  KVC_CHECK(block_size >= 1, "block size must be at least 1, got ", block_size);
  KVC_CHECK(position >= 0, "position ", position, " is negative");
  const int logical_block = position / block_size;
  KVC_CHECK(logical_block < static_cast<int>(table.blocks.size()), "position ", position,
            " is in logical block ", logical_block, " but the block table has only ",
            table.blocks.size(), " blocks");
  // 64-bit: num_blocks * block_size rows can pass 2^31 in a large pool.
  return static_cast<std::int64_t>(table.blocks[logical_block]) * block_size +
         position % block_size;
}

int blocks_needed(int num_tokens, int block_size) {
  KVC_CHECK(block_size >= 1, "block size must be at least 1, got ", block_size);
  KVC_CHECK(num_tokens >= 0, "token count ", num_tokens, " is negative");
  // Round up: a partly filled last block still takes a whole block.
  return num_tokens / block_size + (num_tokens % block_size == 0 ? 0 : 1);
}

}  // namespace kvc::ch04
