// Chapter 06: every policy's cache plugged into chapter 05's block manager,
// through the same random sequence lifecycles as chapter 05's caches: under
// pressure the pool takes cached blocks back by the policy, and every block a
// hit hands out still holds the tokens it was cached for.
#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace kvc::ch06
