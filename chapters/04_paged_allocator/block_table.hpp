// Block tables and slot mapping: where each token of a sequence lives in the
// paged KV pool.
//
//   logical block b of a sequence = tokens b*block_size .. (b+1)*block_size - 1
//   block_table[b]                = the physical block holding them
//   slot of position p            = block_table[p / block_size] * block_size + p % block_size
//
// A slot indexes the pool's rows: k_pages viewed as [num_blocks * block_size][kv_dim].
// This is the metadata vLLM's and FlashInfer's paged kernels take.
#pragma once

#include <cstdint>
#include <vector>

namespace kvc::ch04 {

struct BlockTable {
  std::vector<int> blocks;  // [logical block] -> physical block id
  int num_tokens = 0;       // positions written so far
};

// EXERCISE (exercises/04_paged_allocator/block_table_ops.cpp)
// The pool row that holds `position` of the sequence whose table this is.
// Throws kvc::Error when the position's block is not in the table.
std::int64_t slot_for(const BlockTable& table, int position, int block_size);

// EXERCISE too: blocks needed to hold num_tokens tokens, ceil(num_tokens / block_size),
// for every num_tokens up to INT_MAX (no overflow). Throws kvc::Error for bad arguments.
int blocks_needed(int num_tokens, int block_size);

}  // namespace kvc::ch04
