// Chapter 04: the block allocator and the block-table slot mapping.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chapters/04_paged_allocator/block_allocator.hpp"
#include "chapters/04_paged_allocator/block_table.hpp"
#include "common/check.hpp"

namespace kvc::ch04 {
namespace {

// Expects `action` to throw kvc::Error with a one-line message.
template <typename Action>
void expect_one_line_error(Action action) {
  try {
    action();
    ADD_FAILURE() << "no kvc::Error thrown";
  } catch (const NotImplemented& stub) {
    ADD_FAILURE() << stub.what();  // a stub's throw is not the check the contract asks for
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()).find('\n'), std::string::npos) << error.what();
  }
}

TEST(Ch04BlockAllocator, StartsWithEveryBlockFree) {
  BlockAllocator allocator(5);
  EXPECT_EQ(allocator.num_blocks(), 5);
  EXPECT_EQ(allocator.num_free(), 5);
  EXPECT_EQ(allocator.num_used(), 0);
  for (int block = 0; block < 5; ++block) EXPECT_EQ(allocator.ref_count(block), 0);
  EXPECT_NO_THROW(allocator.check_invariants());
}

TEST(Ch04BlockAllocator, RejectsAnEmptyPool) {
  expect_one_line_error([] { BlockAllocator allocator(0); });
  expect_one_line_error([] { BlockAllocator allocator(-3); });
}

TEST(Ch04BlockAllocator, HandsOutBlocksInIdOrderUntilExhausted) {
  BlockAllocator allocator(4);
  for (int expected = 0; expected < 4; ++expected) {
    EXPECT_TRUE(allocator.can_allocate(4 - expected));
    EXPECT_EQ(allocator.allocate(), expected);
    EXPECT_EQ(allocator.ref_count(expected), 1);
    EXPECT_NO_THROW(allocator.check_invariants());
  }
  EXPECT_FALSE(allocator.can_allocate(1));
  // Running out is a result: asking again changes nothing.
  const std::string full = allocator.debug_string();
  for (int attempt = 0; attempt < 3; ++attempt) EXPECT_EQ(allocator.allocate(), std::nullopt);
  EXPECT_EQ(allocator.debug_string(), full);
  EXPECT_EQ(allocator.num_used(), 4);
  EXPECT_EQ(allocator.num_free(), 0);
  EXPECT_NO_THROW(allocator.check_invariants());
}

TEST(Ch04BlockAllocator, FreeReturnsTheBlockToThePool) {
  BlockAllocator allocator(2);
  allocator.allocate();
  allocator.allocate();
  allocator.free(1);
  EXPECT_EQ(allocator.ref_count(1), 0);
  EXPECT_EQ(allocator.num_free(), 1);
  EXPECT_NO_THROW(allocator.check_invariants());
  EXPECT_EQ(allocator.allocate(), 1);
  EXPECT_EQ(allocator.allocate(), std::nullopt);
}

TEST(Ch04BlockAllocator, ReusesTheMostRecentlyFreedBlockFirst) {
  BlockAllocator allocator(6);
  for (int i = 0; i < 5; ++i) allocator.allocate();  // blocks 0..4; 5 is still free
  allocator.free(1);
  allocator.free(3);
  EXPECT_EQ(allocator.allocate(), 3);
  EXPECT_EQ(allocator.allocate(), 1);
  EXPECT_EQ(allocator.allocate(), 5);
  EXPECT_EQ(allocator.allocate(), std::nullopt);
}

TEST(Ch04BlockAllocator, SharedBlockIsFreedByItsLastOwner) {
  BlockAllocator allocator(3);
  const int block = *allocator.allocate();
  allocator.share(block);
  allocator.share(block);
  EXPECT_EQ(allocator.ref_count(block), 3);
  EXPECT_EQ(allocator.num_used(), 1);
  allocator.free(block);
  allocator.free(block);
  EXPECT_EQ(allocator.ref_count(block), 1);
  EXPECT_EQ(allocator.num_used(), 1);
  EXPECT_NO_THROW(allocator.check_invariants());
  allocator.free(block);
  EXPECT_EQ(allocator.ref_count(block), 0);
  EXPECT_EQ(allocator.num_free(), 3);
  EXPECT_NO_THROW(allocator.check_invariants());
}

TEST(Ch04BlockAllocator, CallerMistakesThrowAndCorruptNothing) {
  BlockAllocator allocator(4);
  allocator.allocate();  // 0
  allocator.allocate();  // 1
  allocator.share(1);
  allocator.free(0);
  const std::string before = allocator.debug_string();
  expect_one_line_error([&] { allocator.free(0); });  // double free
  expect_one_line_error([&] { allocator.free(3); });  // never allocated
  expect_one_line_error([&] { allocator.free(-1); });
  expect_one_line_error([&] { allocator.free(4); });
  expect_one_line_error([&] { allocator.share(2); });  // free block
  expect_one_line_error([&] { allocator.share(4); });
  expect_one_line_error([&] { allocator.ref_count(-1); });
  expect_one_line_error([&] { allocator.ref_count(4); });
  EXPECT_EQ(allocator.debug_string(), before);
  EXPECT_NO_THROW(allocator.check_invariants());
  // The pool still works: the refused double free did not put 0 on the list twice.
  EXPECT_EQ(allocator.allocate(), 0);
  EXPECT_EQ(allocator.allocate(), 2);
  EXPECT_EQ(allocator.allocate(), 3);
  EXPECT_EQ(allocator.allocate(), std::nullopt);
}

TEST(Ch04BlockAllocator, DebugStringListsUsedBlocksWithTheirCounts) {
  BlockAllocator allocator(8);
  for (int i = 0; i < 5; ++i) allocator.allocate();
  allocator.share(1);
  allocator.free(2);
  allocator.free(3);
  EXPECT_EQ(allocator.debug_string(), "blocks 8: used 3 [0:1 1:2 4:1], free 5");
  EXPECT_EQ(BlockAllocator(2).debug_string(), "blocks 2: used 0 [], free 2");
}

// --- Randomized operations against a shadow model --------------------------

// Portable across standard libraries, unlike std::uniform_int_distribution.
int pick(std::mt19937& rng, std::size_t n) {
  return static_cast<int>(rng() % n);
}

// The test's own record of ownership: each sequence holds references to
// blocks (a block appears once per reference); a block's expected reference
// count is how many references all sequences hold to it.
struct ShadowPool {
  std::vector<std::vector<int>> sequences;
  std::vector<int> ref_counts;  // [num_blocks]

  explicit ShadowPool(int num_blocks) : ref_counts(num_blocks, 0) {}

  int num_free() const {
    int free_blocks = 0;
    for (const int count : ref_counts) free_blocks += count == 0 ? 1 : 0;
    return free_blocks;
  }

  // A random existing sequence, or a new empty one.
  std::vector<int>& some_owner(std::mt19937& rng) {
    const int index = pick(rng, sequences.size() + 1);
    if (index == static_cast<int>(sequences.size())) sequences.emplace_back();
    return sequences[index];
  }
};

void expect_matches(const BlockAllocator& allocator, const ShadowPool& shadow) {
  ASSERT_NO_THROW(allocator.check_invariants()) << allocator.debug_string();
  ASSERT_EQ(allocator.num_free(), shadow.num_free());
  ASSERT_EQ(allocator.num_used(), allocator.num_blocks() - shadow.num_free());
  std::vector<int> ref_counts(allocator.num_blocks());
  for (int block = 0; block < allocator.num_blocks(); ++block) {
    ref_counts[block] = allocator.ref_count(block);
  }
  ASSERT_EQ(ref_counts, shadow.ref_counts);
}

struct RandomRunCounts {
  int allocations = 0;
  int exhausted = 0;  // allocate() returned nullopt
  int refused = 0;    // a deliberate mistake threw
};

void free_sequence(BlockAllocator& allocator, ShadowPool& shadow, int index) {
  for (const int block : shadow.sequences[index]) {
    allocator.free(block);
    --shadow.ref_counts[block];
  }
  shadow.sequences.erase(shadow.sequences.begin() + index);
}

void random_step(BlockAllocator& allocator, ShadowPool& shadow, std::mt19937& rng,
                 RandomRunCounts& counts) {
  const int num_sequences = static_cast<int>(shadow.sequences.size());
  // Out of 18: 7 allocate, 6 free, 2 share, 1 fork, 1 finish, 1 mistake.
  const int action = pick(rng, 18);
  if (action < 7) {  // allocate into a random (or new) sequence
    const std::optional<int> block = allocator.allocate();
    if (shadow.num_free() == 0) {
      ASSERT_EQ(block, std::nullopt);
      ++counts.exhausted;
      return;
    }
    ASSERT_TRUE(block.has_value());
    ASSERT_GE(*block, 0);
    ASSERT_LT(*block, allocator.num_blocks());
    ASSERT_EQ(shadow.ref_counts[*block], 0) << "handed out block " << *block << ", which is owned";
    shadow.ref_counts[*block] = 1;
    shadow.some_owner(rng).push_back(*block);
    ++counts.allocations;
  } else if (action < 13) {  // free one reference held by a random sequence
    if (num_sequences == 0) return;
    const int index = pick(rng, num_sequences);
    std::vector<int>& owned = shadow.sequences[index];
    const int reference = pick(rng, owned.size());
    const int block = owned[reference];
    allocator.free(block);
    --shadow.ref_counts[block];
    owned.erase(owned.begin() + reference);
    if (owned.empty()) shadow.sequences.erase(shadow.sequences.begin() + index);
  } else if (action < 15) {  // a random sequence takes a reference to a random used block
    std::vector<int> used;
    for (int block = 0; block < allocator.num_blocks(); ++block) {
      if (shadow.ref_counts[block] > 0) used.push_back(block);
    }
    if (used.empty()) return;
    const int block = used[pick(rng, used.size())];
    allocator.share(block);
    ++shadow.ref_counts[block];
    shadow.some_owner(rng).push_back(block);
  } else if (action < 16) {  // fork: a new sequence shares every block of a random one
    if (num_sequences == 0) return;
    const std::vector<int> forked = shadow.sequences[pick(rng, num_sequences)];
    for (const int block : forked) {
      allocator.share(block);
      ++shadow.ref_counts[block];
    }
    shadow.sequences.push_back(forked);
  } else if (action < 17) {  // a random sequence finishes
    if (num_sequences == 0) return;
    free_sequence(allocator, shadow, pick(rng, num_sequences));
  } else {  // a mistake: free or share a free block or an id outside the pool
    std::vector<int> free_blocks;
    for (int block = 0; block < allocator.num_blocks(); ++block) {
      if (shadow.ref_counts[block] == 0) free_blocks.push_back(block);
    }
    const int outside = pick(rng, 2) == 0 ? -1 : allocator.num_blocks();
    const int block = free_blocks.empty() || pick(rng, 4) == 0
                          ? outside
                          : free_blocks[pick(rng, free_blocks.size())];
    // expect_matches() after the step proves the refusal changed nothing.
    if (pick(rng, 2) == 0) {
      ASSERT_THROW(allocator.free(block), Error) << "block " << block;
    } else {
      ASSERT_THROW(allocator.share(block), Error) << "block " << block;
    }
    ++counts.refused;
  }
}

TEST(Ch04BlockAllocator, RandomOperationsMatchAShadowModel) {
  constexpr int kOperations = 20000;
  // Every pool size from 1 to 64 blocks, each with its own seed.
  for (int num_blocks = 1; num_blocks <= 64; ++num_blocks) {
    const std::uint32_t seed = 1000 + num_blocks;
    SCOPED_TRACE("num_blocks " + std::to_string(num_blocks) + ", seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    BlockAllocator allocator(num_blocks);
    ShadowPool shadow(num_blocks);
    RandomRunCounts counts;
    for (int step = 0; step < kOperations; ++step) {
      random_step(allocator, shadow, rng, counts);
      expect_matches(allocator, shadow);
      if (testing::Test::HasFatalFailure()) {
        ADD_FAILURE() << "at step " << step << ": " << allocator.debug_string();
        return;
      }
    }
    // Every path ran: the pool filled up, and mistakes were refused.
    EXPECT_GT(counts.allocations, num_blocks);
    EXPECT_GT(counts.exhausted, 0);
    EXPECT_GT(counts.refused, 0);
    while (!shadow.sequences.empty()) free_sequence(allocator, shadow, 0);
    EXPECT_EQ(allocator.num_free(), num_blocks);
    EXPECT_NO_THROW(allocator.check_invariants());
  }
}

// --- Block tables -----------------------------------------------------------

TEST(Ch04SlotFor, BlockSize16) {
  const BlockTable table{{5, 2, 9}, 40};
  EXPECT_EQ(slot_for(table, 0, 16), 80);
  EXPECT_EQ(slot_for(table, 15, 16), 95);
  EXPECT_EQ(slot_for(table, 16, 16), 32);
  EXPECT_EQ(slot_for(table, 40, 16), 152);  // past num_tokens but inside block 9
  EXPECT_EQ(slot_for(table, 47, 16), 159);
  expect_one_line_error([&] { slot_for(table, 48, 16); });
  expect_one_line_error([&] { slot_for(table, -1, 16); });
}

TEST(Ch04SlotFor, BlockSize1IsTheTableItself) {
  const BlockTable table{{3, 0, 7}, 3};
  EXPECT_EQ(slot_for(table, 0, 1), 3);
  EXPECT_EQ(slot_for(table, 1, 1), 0);
  EXPECT_EQ(slot_for(table, 2, 1), 7);
  expect_one_line_error([&] { slot_for(table, 3, 1); });
}

TEST(Ch04SlotFor, BlockSize7) {
  const BlockTable table{{4, 1}, 14};
  EXPECT_EQ(slot_for(table, 0, 7), 28);
  EXPECT_EQ(slot_for(table, 6, 7), 34);
  EXPECT_EQ(slot_for(table, 7, 7), 7);
  EXPECT_EQ(slot_for(table, 13, 7), 13);
  expect_one_line_error([&] { slot_for(table, 14, 7); });
}

TEST(Ch04SlotFor, EmptyTableAndBadBlockSize) {
  expect_one_line_error([] { slot_for(BlockTable{}, 0, 16); });
  expect_one_line_error([] { slot_for(BlockTable{{0}, 1}, 0, 0); });
}

TEST(Ch04SlotFor, SlotsAre64BitInAPoolPast2To31Rows) {
  const BlockTable table{{200'000'000}, 1};
  EXPECT_EQ(slot_for(table, 3, 16), std::int64_t{3'200'000'003});
}

TEST(Ch04SlotFor, DistinctPositionsLandInDistinctRowsOfTheirBlocks) {
  // Any permutation of physical blocks: every position gets its own row, and
  // the row lies inside the block the table names.
  for (const int block_size : {1, 7, 16}) {
    std::vector<int> blocks{6, 0, 3, 5, 1, 4, 2};
    const BlockTable table{blocks, static_cast<int>(blocks.size()) * block_size};
    std::set<std::int64_t> slots;
    for (int position = 0; position < table.num_tokens; ++position) {
      const std::int64_t slot = slot_for(table, position, block_size);
      EXPECT_EQ(slot / block_size, blocks[position / block_size]) << position;
      slots.insert(slot);
    }
    EXPECT_EQ(slots.size(), static_cast<std::size_t>(table.num_tokens)) << block_size;
  }
}

TEST(Ch04BlocksNeeded, RoundsUpToWholeBlocks) {
  EXPECT_EQ(blocks_needed(0, 16), 0);
  EXPECT_EQ(blocks_needed(1, 16), 1);
  EXPECT_EQ(blocks_needed(16, 16), 1);
  EXPECT_EQ(blocks_needed(17, 16), 2);
  EXPECT_EQ(blocks_needed(5, 1), 5);
  EXPECT_EQ(blocks_needed(14, 7), 2);
  EXPECT_EQ(blocks_needed(15, 7), 3);
  EXPECT_EQ(blocks_needed(2'147'483'647, 256), 8'388'608);  // no overflow at INT_MAX
  expect_one_line_error([] { blocks_needed(10, 0); });
  expect_one_line_error([] { blocks_needed(-1, 16); });
}

}  // namespace
}  // namespace kvc::ch04
