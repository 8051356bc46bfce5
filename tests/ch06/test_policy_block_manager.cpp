// Chapter 06: every policy's cache plugged into chapter 05's block manager,
// through the same random sequence lifecycles as chapter 05's caches: under
// pressure the pool takes cached blocks back by the policy, and every block a
// hit hands out still holds the tokens it was cached for.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chapters/05_radix_cache/prefix_caching_blocks.hpp"
#include "chapters/06_lru_eviction/policy_radix_cache.hpp"
#include "tests/ch05/lifecycle_driver.hpp"

namespace kvc::ch06 {
namespace {

using ch05::testing::Driver;

class Ch06PolicyBlockManager : public ::testing::TestWithParam<EvictionPolicy> {};

TEST_P(Ch06PolicyBlockManager, RandomLifecyclesKeepInvariantsAndReusedBlocksHoldTheirTokens) {
  const std::string policy(eviction_policy_name(GetParam()));
  for (const int block_size : {1, 4}) {
    for (const std::uint64_t ttl : {0, 50}) {
      SCOPED_TRACE(policy + " block size " + std::to_string(block_size) + " ttl " +
                   std::to_string(ttl));
      Driver driver(/*num_blocks=*/48, block_size, make_evicting_cache(policy, block_size, ttl),
                    200 + block_size);
      driver.run(2000);
      if (HasFatalFailure()) return;
      EXPECT_GT(driver.hits_, 100);
      EXPECT_GT(driver.blocks_.stats().evicted_blocks, 50) << "the small pool must reclaim";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryPolicy, Ch06PolicyBlockManager,
                         ::testing::ValuesIn(kEvictionPolicies), [](const auto& info) {
                           return std::string(eviction_policy_name(info.param));
                         });

// Runs `tokens` as sequence `seq` from start to finish and leaves its full blocks cached.
void run_and_finish(ch05::PrefixCachingBlockManager& blocks, int seq,
                    const std::vector<int>& tokens) {
  const int cached = blocks.begin_sequence(seq, tokens);
  Batch batch;
  for (int p = cached; p < static_cast<int>(tokens.size()); ++p)
    batch.add(tokens[p], seq, p, false);
  ASSERT_TRUE(blocks.try_reserve(batch).has_value());
  blocks.finish_sequence(seq, tokens);
  blocks.check_invariants();
}

std::vector<int> run_of(int first, int n) {
  std::vector<int> tokens(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) tokens[static_cast<std::size_t>(i)] = first + i;
  return tokens;
}

// A pinned system prompt survives a pool that must reclaim everything else,
// under the pool's own allocation, and becomes evictable again when unpinned.
TEST(Ch06BlockManagerPins, APinnedPrefixIsNeverReclaimedAndUnpinningReleasesIt) {
  ch05::PrefixCachingBlockManager blocks(/*num_blocks=*/8, /*block_size=*/4,
                                         make_evicting_cache("lru", 4));
  const std::vector<int> system = run_of(1, 8);  // 2 blocks
  run_and_finish(blocks, 0, system);
  EXPECT_EQ(blocks.pin(/*pin_id=*/0, system), 8);
  EXPECT_EQ(blocks.num_reclaimable(), 0) << "pinned blocks are not available";
  EXPECT_EQ(blocks.num_available(), 6);
  EXPECT_THROW(blocks.pin(0, system), Error) << "pin 0 is already held";
  for (int seq = 1; seq <= 6; ++seq) run_and_finish(blocks, seq, run_of(100 * seq, 8));
  EXPECT_EQ(blocks.cache().peek_prefix(system), 8) << "the pinned prompt is still cached";
  EXPECT_GT(blocks.stats().evicted_blocks, 0);
  blocks.unpin(0);
  EXPECT_EQ(blocks.num_reclaimable(), 8);
  blocks.check_invariants();
}

// Invalidation through the pool: what the cache forgets, and no sequence
// holds, is free at once; a running sequence's blocks stay its own.
TEST(Ch06BlockManagerInvalidation, ForgottenBlocksAreFreedOnlyWhenNoSequenceHoldsThem) {
  ch05::PrefixCachingBlockManager blocks(/*num_blocks=*/16, /*block_size=*/4,
                                         make_evicting_cache("lru", 4, /*ttl=*/3));
  run_and_finish(blocks, 0, run_of(1, 8));
  run_and_finish(blocks, 1, run_of(50, 8));
  const auto expire = [](ch05::PrefixCache& cache) {
    return static_cast<PolicyRadixCache&>(cache).expire();
  };
  EXPECT_TRUE(blocks.invalidate(expire).empty()) << "nothing is older than 3 ticks yet";
  const std::vector<int> running = run_of(50, 9);  // shares sequence 1's blocks, and runs on
  ASSERT_EQ(blocks.begin_sequence(2, running), 8);
  // Each match and insert is one tick: sequences 3 and 4 age sequence 0's blocks past the TTL.
  run_and_finish(blocks, 3, run_of(200, 4));
  run_and_finish(blocks, 4, run_of(300, 4));
  const int free_before = blocks.allocator().num_free();
  const std::vector<int> dropped = blocks.invalidate(expire);
  EXPECT_EQ(dropped.size(), 2u) << "sequence 0's two blocks expired; sequence 1's are locked";
  EXPECT_EQ(blocks.allocator().num_free(), free_before + 2);
  const std::vector<int> cleared = blocks.invalidate(
      [](ch05::PrefixCache& cache) { return static_cast<PolicyRadixCache&>(cache).clear(); });
  EXPECT_EQ(cleared.size(), 2u) << "clear() takes the two unlocked blocks left, not the locked";
  EXPECT_EQ(blocks.cache().size_info().total_blocks(), 2);
  EXPECT_EQ(blocks.stats().dropped_blocks, 4);
  blocks.check_invariants();
  blocks.release(2);
  blocks.check_invariants();
}

}  // namespace
}  // namespace kvc::ch06
