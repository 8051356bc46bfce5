// Chapter 06: each policy's eviction order on hand-built trees, and what every
// policy shares: leaves first, locked and pinned blocks never, expired first.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "chapters/05_radix_cache/radix_cache.hpp"
#include "chapters/06_lru_eviction/eviction_policy.hpp"
#include "common/check.hpp"
#include "tests/ch06/tree_builder.hpp"

namespace kvc::ch06 {
namespace {

using testing::TreeBuilder;
using V = std::vector<int>;

TEST(Ch06Policy, NamesParseBothWays) {
  for (const EvictionPolicy policy : kEvictionPolicies) {
    EXPECT_EQ(parse_eviction_policy(eviction_policy_name(policy)), policy);
  }
  EXPECT_EQ(eviction_policy_names(), "lru, lfu, fifo, priority, slru");
  try {
    parse_eviction_policy("mru");
    FAIL() << "mru parsed";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "unknown eviction policy 'mru' (expected one of lru, lfu, fifo, "
                 "priority, slru)");
  }
  EXPECT_THROW(make_evicting_cache("LRU", 16), Error);
  EXPECT_THROW(make_evicting_cache("lru", 0), Error);
  const auto cache = make_evicting_cache("slru", 16);
  EXPECT_EQ(cache->block_size(), 16);
  EXPECT_EQ(cache->name(), "radix");
}

// Three branches A = [1 2], B = [3 4], C = [5 6], inserted in that order.
TreeBuilder three_branches(EvictionPolicy policy) {
  TreeBuilder t(policy);
  t.insert({1, 2});
  t.insert({3, 4});
  t.insert({5, 6});
  return t;
}

TEST(Ch06Policy, LruTakesTheLeastRecentlyUsedBranchFromItsEnd) {
  TreeBuilder t = three_branches(EvictionPolicy::kLru);
  t.match({1, 2});  // A is now the most recent
  EXPECT_EQ(t.evict(3), (V{4, 3, 6}));
  EXPECT_EQ(t.evict(9), (V{5, 2, 1}));
}

TEST(Ch06Policy, LfuTakesTheFewestHitsAndBreaksTiesByRecency) {
  TreeBuilder t = three_branches(EvictionPolicy::kLfu);
  for (int i = 0; i < 3; ++i) t.match({1, 2});
  t.match({5, 6});
  t.match({3, 4});  // B and C have one hit each; C's is older
  t.match({3, 4});  // now B has two
  EXPECT_EQ(t.cache.history(t.match({1})).hits, 4);
  // A [1] was just hit a fourth time, its [2] three times: C (1 hit) goes
  // first, then B (2), then A from its end.
  EXPECT_EQ(t.evict(6), (V{6, 5, 4, 3, 2, 1}));
}

TEST(Ch06Policy, FifoTakesTheOldestInsertionWhateverItsUse) {
  TreeBuilder t = three_branches(EvictionPolicy::kFifo);
  for (int i = 0; i < 5; ++i) t.match({1, 2});
  EXPECT_EQ(t.evict(4), (V{2, 1, 4, 3}));
  t.insert({7});
  EXPECT_EQ(t.evict(2), (V{6, 5}));
  EXPECT_EQ(t.evict(2), (V{7}));
}

TEST(Ch06Policy, PriorityTakesTheLowestLevelFirstAndLruWithinIt) {
  TreeBuilder t(EvictionPolicy::kPriority);
  t.insert({1}, {.priority = 2});
  t.insert({2}, {.priority = 0});
  t.insert({3}, {.priority = 1});
  t.insert({4}, {.priority = 0});
  t.match({2});                   // within priority 0, [4] is now the least recently used
  t.match({3}, {.priority = 5});  // a use raises a node to the user's priority, never lowers it
  t.match({1}, {.priority = 0});
  EXPECT_EQ(t.cache.history(t.match({3})).priority, 5);
  EXPECT_EQ(t.evict(4), (V{4, 2, 1, 3}));
}

TEST(Ch06Policy, SlruTakesProbationaryBeforeProtectedLruWithinEach) {
  TreeBuilder t = three_branches(EvictionPolicy::kSlru);
  t.match({1, 2});
  t.match({1, 2});  // A: hit twice, protected
  t.match({3, 4});  // B: hit once, still probationary
  t.match({5, 6});
  t.match({5, 6});                                      // C: protected, and more recent than A
  t.insert({7});                                        // D: never hit
  EXPECT_EQ(t.cache.history(t.match({1, 2})).hits, 3);  // A is now the most recent
  // Probationary B then D (B is older), then protected C before A.
  EXPECT_EQ(t.evict(7), (V{4, 3, 7, 6, 5, 2, 1}));
}

// The lesson's example (README section 3): one tree, five orders.
TEST(Ch06Policy, TheLessonsTreeInEveryOrder) {
  const auto order = [](EvictionPolicy policy) {
    TreeBuilder t(policy);
    t.insert({1, 2}, {.priority = 2});  // A, clock 1
    t.insert({3, 4});                   // B, 2
    t.insert({5, 6}, {.priority = 1});  // C, 3
    t.match({1, 2});                    // 4
    t.match({1, 2});                    // 5: A hit twice
    t.match({3, 4});                    // 6: B hit once
    t.insert({7});                      // D, 7
    return t.evict(7);
  };
  EXPECT_EQ(order(EvictionPolicy::kLru), (V{6, 5, 2, 1, 4, 3, 7}));
  EXPECT_EQ(order(EvictionPolicy::kLfu), (V{6, 5, 7, 4, 3, 2, 1}));
  EXPECT_EQ(order(EvictionPolicy::kFifo), (V{2, 1, 4, 3, 6, 5, 7}));
  EXPECT_EQ(order(EvictionPolicy::kPriority), (V{4, 3, 7, 6, 5, 2, 1}));
  EXPECT_EQ(order(EvictionPolicy::kSlru), (V{6, 5, 4, 3, 7, 2, 1}));
}

// A stem [1 2] inserted first, its extension [1 2 3 4] next, then C = [7 8].
// Every policy ranks the stem below its extension or above it; either way the
// extension must go first, and the stem only once it is a leaf.
TEST(Ch06Policy, EveryPolicyTakesLeavesBeforeTheirPrefixes) {
  for (const EvictionPolicy policy : kEvictionPolicies) {
    SCOPED_TRACE(eviction_policy_name(policy));
    TreeBuilder t(policy);
    t.insert({1, 2});
    t.insert({1, 2, 3, 4});
    t.insert({7, 8});
    t.match({7, 8});
    const V first = t.evict(1);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_NE(first[0], 1);
    EXPECT_NE(first[0], 2);
    V all = first;
    for (const int token : t.evict(10)) all.push_back(token);
    // 2 goes after 3 and 4, 1 after 2, 7 after 8.
    const auto at = [&all](int token) {
      return std::find(all.begin(), all.end(), token) - all.begin();
    };
    EXPECT_EQ(all.size(), 6u);
    EXPECT_LT(at(4), at(3));
    EXPECT_LT(at(3), at(2));
    EXPECT_LT(at(2), at(1));
    EXPECT_LT(at(8), at(7));
    t.cache.check_invariants();
  }
}

TEST(Ch06Policy, FifoWouldPreferTheOlderStemButTakesItsExtensionFirst) {
  TreeBuilder t(EvictionPolicy::kFifo);
  t.insert({1, 2});
  t.insert({1, 2, 3, 4});
  t.insert({7, 8});
  EXPECT_EQ(t.evict(6), (V{4, 3, 2, 1, 8, 7}));
}

TEST(Ch06Policy, EveryPolicyLeavesLockedAndPinnedPrefixesAlone) {
  for (const EvictionPolicy policy : kEvictionPolicies) {
    SCOPED_TRACE(eviction_policy_name(policy));
    TreeBuilder t = three_branches(policy);
    const ch05::PrefixHandle a = t.match({1, 2});
    const ch05::PrefixHandle c = t.match({5});  // splits C: the pin covers [5] only
    t.cache.lock(a);
    t.cache.pin(c);
    EXPECT_EQ(t.cache.num_pins(), 1);
    EXPECT_EQ(t.cache.size_info().protected_blocks, 3);
    EXPECT_EQ(t.cache.size_info().evictable_blocks, 3);
    EXPECT_EQ(t.evict(10), (V{4, 3, 6}));  // (FIFO and LRU agree here)
    EXPECT_EQ(t.cache.size_info().evictable_blocks, 0);
    EXPECT_TRUE(t.cache.clear().empty());
    t.cache.unlock(a);
    EXPECT_EQ(t.evict(10), (V{2, 1}));
    t.cache.unpin(c);
    EXPECT_EQ(t.cache.num_pins(), 0);
    EXPECT_EQ(t.evict(10), (V{5}));
    EXPECT_THROW(t.cache.unpin(c), Error);
    t.cache.check_invariants();
  }
}

TEST(Ch06Policy, AnUnpinWithoutAPinThrows) {
  TreeBuilder t(EvictionPolicy::kLru);
  const ch05::PrefixHandle a = t.insert({1, 2});
  EXPECT_THROW(t.cache.unpin(a), Error);
  EXPECT_NO_THROW(t.cache.unpin(ch05::PrefixHandle{}));  // the empty prefix: nothing to do
  t.cache.pin(a);
  t.cache.pin(a);
  t.cache.unpin(a);
  EXPECT_TRUE(t.cache.clear().empty());
  t.cache.unpin(a);
  EXPECT_EQ(t.cache.clear().size(), 2u);
}

// ttl 2: an entry unused for more than 2 ticks is expired, and goes first
// under every policy, however often it was hit.
TEST(Ch06Policy, ExpiredEntriesGoFirstUnderEveryPolicy) {
  for (const EvictionPolicy policy : kEvictionPolicies) {
    SCOPED_TRACE(eviction_policy_name(policy));
    TreeBuilder t(policy, /*ttl=*/2);
    t.insert({1}, {.priority = 9});                             // clock 1
    for (int i = 0; i < 3; ++i) t.match({1}, {.priority = 9});  // clock 2..4: hit 3 times
    t.insert({2});                                              // 5
    t.insert({3});                                              // 6
    t.insert({4});  // 7: [1] was last used at 4, 3 ticks ago
    EXPECT_EQ(t.cache.now(), 7u);
    EXPECT_EQ(t.evict(1), (V{1}));
    t.cache.check_invariants();
  }
}

TEST(Ch06Policy, ExpireDropsExactlyTheEntriesOlderThanTheTtl) {
  TreeBuilder t(EvictionPolicy::kLfu, /*ttl=*/2);
  t.insert({1, 2});                       // 1
  t.insert({1, 2, 3});                    // 2: [1 2] used again
  t.insert({5});                          // 3
  t.insert({6});                          // 4
  EXPECT_TRUE(t.cache.expire().empty());  // [1 2 3] is 2 ticks old: not more than the ttl
  t.insert({7});                          // 5
  EXPECT_EQ(t.evict(0), V{});
  EXPECT_EQ(TreeBuilder::tokens_of(t.cache.expire()), (V{3, 2, 1}));
  EXPECT_EQ(TreeBuilder::tokens_of(t.cache.expire()), V{});
  t.match({9});  // 6: ages pass with every match and insert
  EXPECT_EQ(TreeBuilder::tokens_of(t.cache.expire()), (V{5}));
  EXPECT_EQ(t.cache.counters().dropped_blocks, 4);
  EXPECT_EQ(t.cache.counters().evicted_blocks, 0);
}

TEST(Ch06Policy, WithoutATtlNothingExpires) {
  TreeBuilder t(EvictionPolicy::kLru);
  t.insert({1});
  for (int i = 0; i < 100; ++i) t.match({2});
  EXPECT_TRUE(t.cache.expire().empty());
}

// LRU is chapter 05's order, block for block.
TEST(Ch06Policy, LruIsChapter05sOrder) {
  ch05::RadixCache plain(2);
  PolicyRadixCache lru(2, EvictionPolicy::kLru);
  const std::vector<std::vector<int>> requests = {
      {1, 2, 3, 4, 5, 6}, {1, 2, 3, 4, 9, 9}, {7, 7, 1, 2}, {1, 2, 3, 4}, {7, 7, 8, 8, 8}, {1, 2}};
  int next_block = 0;
  for (const auto& tokens : requests) {
    std::vector<int> blocks;
    for (std::size_t i = 0; i < tokens.size() / 2; ++i) blocks.push_back(next_block++);
    EXPECT_EQ(plain.insert(tokens, blocks).cached_blocks, lru.insert(tokens, blocks).cached_blocks);
    EXPECT_EQ(plain.match_prefix(requests[0]).blocks, lru.match_prefix(requests[0]).blocks);
  }
  for (int n : {1, 2, 1, 3, 10}) EXPECT_EQ(plain.evict(n), lru.evict(n));
  EXPECT_EQ(lru.size_info().total_blocks(), 0);
}

}  // namespace
}  // namespace kvc::ch06
