// Chapter 05: the block manager with a prefix cache plugged in, driven through
// random sequence lifecycles on a small pool (lifecycle_driver.hpp). Every
// block a hit hands out must still hold the tokens it was cached for, and
// every invariant (reference counts with the cache's, locks, the cache's own)
// holds after every operation.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "chapters/05_radix_cache/prefix_caching_blocks.hpp"
#include "tests/ch05/lifecycle_driver.hpp"

namespace kvc::ch05 {
namespace {

using testing::Driver;

class Ch05PrefixCachingBlocks : public ::testing::TestWithParam<std::string> {};

TEST_P(Ch05PrefixCachingBlocks, RandomLifecyclesKeepInvariantsAndReusedBlocksHoldTheirTokens) {
  for (int block_size : {1, 2, 4}) {
    Driver driver(/*num_blocks=*/48, block_size, make_prefix_cache(GetParam(), block_size),
                  100 + block_size);
    driver.run(6000);
    if (HasFatalFailure()) return;
    const PrefixCacheStats& stats = driver.blocks_.stats();
    EXPECT_GT(driver.hits_, 300) << "block size " << block_size;
    EXPECT_GT(stats.evicted_blocks, 100) << "the small pool must reclaim cached blocks";
    EXPECT_GT(stats.inserted_blocks, 100);
  }
}

INSTANTIATE_TEST_SUITE_P(Caches, Ch05PrefixCachingBlocks, ::testing::Values("radix", "hash"));

// Only blocks the cache alone holds count as available, and taking one back
// (when the free list is empty) makes it free for the new sequence.
TEST(Ch05PrefixCachingBlocksEdges, CachedBlocksAreAvailableAndReclaimedOnlyWhenNothingIsFree) {
  PrefixCachingBlockManager blocks(/*num_blocks=*/4, /*block_size=*/2,
                                   make_prefix_cache("radix", 2));
  const std::vector<int> a = {1, 2, 3, 4, 5};  // 2 full blocks + 1
  Batch batch;
  for (int p = 0; p < 5; ++p) batch.add(a[p], 0, p, false);
  ASSERT_EQ(blocks.begin_sequence(0, a), 0);
  ASSERT_TRUE(blocks.try_reserve(batch));
  blocks.finish_sequence(0, a);
  EXPECT_EQ(blocks.allocator().num_free(), 2) << "the partial block went back, 2 are cached";
  EXPECT_EQ(blocks.num_reclaimable(), 2);
  EXPECT_EQ(blocks.num_available(), 4);
  EXPECT_EQ(blocks.cache().size_info().evictable_blocks, 2);

  EXPECT_EQ(blocks.begin_sequence(1, a), 4) << "a hit locks both blocks";
  EXPECT_EQ(blocks.num_reclaimable(), 0);
  EXPECT_EQ(blocks.num_available(), 2);
  EXPECT_EQ(blocks.cache().size_info().protected_blocks, 2);
  blocks.release(1);
  EXPECT_EQ(blocks.num_reclaimable(), 2);

  Batch other;
  for (int p = 0; p < 8; ++p) other.add(9, 2, p, false);
  ASSERT_EQ(blocks.begin_sequence(2, std::vector<int>(8, 9)), 0);
  ASSERT_TRUE(blocks.try_reserve(other)) << "4 blocks: 2 free, 2 taken back from the cache";
  EXPECT_EQ(blocks.stats().evicted_blocks, 2);
  EXPECT_EQ(blocks.cache().size_info().total_blocks(), 0);
  blocks.check_invariants();
}

TEST(Ch05PrefixCachingBlocksEdges, BadInputIsAOneLineError) {
  EXPECT_THROW(PrefixCachingBlockManager(8, 4, make_prefix_cache("radix", 2)), Error)
      << "a cache keyed by 2-token blocks over a pool of 4-token blocks";
  PrefixCachingBlockManager blocks(8, 4, make_prefix_cache("hash", 4));
  EXPECT_THROW(blocks.begin_sequence(0, std::vector<int>{}), Error);
  EXPECT_EQ(blocks.begin_sequence(0, std::vector<int>{1}), 0) << "BOS alone: nothing to match";
  blocks.release(0);
  blocks.check_invariants();
}

}  // namespace
}  // namespace kvc::ch05
