// Chapter 06: invalidation — session end, namespaces, clear, isolation keys —
// and the counters, on hand-built trees.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "common/check.hpp"
#include "tests/ch06/tree_builder.hpp"

namespace kvc::ch06 {
namespace {

using testing::TreeBuilder;
using V = std::vector<int>;

V sorted(V v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Ch06Invalidation, SessionEndDropsOnlyThatSessionsPrivateBranch) {
  TreeBuilder t(EvictionPolicy::kLru);
  t.insert({1, 2}, {.session = 1});
  t.insert({1, 2, 3}, {.session = 2});  // [1 2] is now shared by sessions 1 and 2
  t.insert({1, 2, 4, 5}, {.session = 1});
  t.insert({9});  // no session
  EXPECT_EQ(t.cache.history(t.cache.match_prefix(V{1, 2, 4, 5}, {.session = 1}).handle).session, 1);
  EXPECT_EQ(TreeBuilder::tokens_of(t.cache.end_session(1)), (V{5, 4}));
  EXPECT_TRUE(t.cache.end_session(1).empty());
  EXPECT_EQ(TreeBuilder::tokens_of(t.cache.end_session(2)), (V{3}));
  EXPECT_TRUE(t.cache.end_session(2).empty());  // [1 2] is shared: no session's alone
  EXPECT_EQ(sorted(TreeBuilder::tokens_of(t.cache.clear())), (V{1, 2, 9}));
  EXPECT_EQ(t.cache.counters().dropped_blocks, 6);
  t.cache.check_invariants();
}

TEST(Ch06Invalidation, AnotherSessionsMatchMakesAPrivatePrefixShared) {
  TreeBuilder t(EvictionPolicy::kLru);
  t.insert({20, 21}, {.session = 1});
  t.match({20}, {.session = 2});  // session 2 reads [20]: the split leaves [21] private
  EXPECT_EQ(TreeBuilder::tokens_of(t.cache.end_session(1)), (V{21}));
  EXPECT_EQ(t.cache.size_info().total_blocks(), 1);
  // An anonymous request using a session's prefix shares it too.
  t.insert({30, 31}, {.session = 3});
  t.match({30, 31});
  EXPECT_TRUE(t.cache.end_session(3).empty());
}

TEST(Ch06Invalidation, SessionEndLeavesLockedBlocks) {
  TreeBuilder t(EvictionPolicy::kLfu);
  const ch05::PrefixHandle running = t.insert({6, 7}, {.session = 3});
  t.insert({6, 7, 8}, {.session = 3});
  t.cache.lock(running);
  EXPECT_EQ(TreeBuilder::tokens_of(t.cache.end_session(3)), (V{8}));
  t.cache.unlock(running);
  EXPECT_EQ(TreeBuilder::tokens_of(t.cache.end_session(3)), (V{7, 6}));
  EXPECT_THROW(t.cache.end_session(0), Error);
  EXPECT_THROW(t.match({1}, {.session = -1}), Error);
}

TEST(Ch06Invalidation, ANamespaceIsClearedOnSwitchKeepingWhatOthersUse) {
  TreeBuilder t(EvictionPolicy::kFifo);
  t.insert({1, 2, 3}, {.tag = "repo-a"});
  t.insert({1, 2, 8}, {.tag = "repo-b"});  // [1 2] is used by both
  t.insert({4, 5}, {.tag = "repo-a"});
  EXPECT_TRUE(t.cache.clear_tag("repo-c").empty());
  EXPECT_EQ(TreeBuilder::tokens_of(t.cache.clear_tag("repo-a")), (V{3, 5, 4}));
  EXPECT_EQ(TreeBuilder::tokens_of(t.cache.clear_tag("repo-b")), (V{8}));
  EXPECT_EQ(t.cache.size_info().total_blocks(), 2);
  EXPECT_THROW(t.cache.clear_tag(""), Error);
  t.cache.check_invariants();
}

TEST(Ch06Invalidation, ClearTakesEverythingUnlocked) {
  for (const EvictionPolicy policy : kEvictionPolicies) {
    TreeBuilder t(policy);
    const ch05::PrefixHandle held = t.insert({1, 2});
    t.insert({1, 2, 3});
    t.insert({4});
    t.cache.lock(held);
    EXPECT_EQ(sorted(TreeBuilder::tokens_of(t.cache.clear())), (V{3, 4}));
    const ch05::SizeInfo sizes = t.cache.size_info();
    EXPECT_EQ(sizes.protected_blocks, 2);
    EXPECT_EQ(sizes.evictable_blocks, 0);
    t.cache.unlock(held);
    EXPECT_EQ(TreeBuilder::tokens_of(t.cache.clear()), (V{2, 1}));
    t.cache.check_invariants();
  }
}

// vLLM's cache_salt: tenants with different keys never share a block, so one
// cannot tell from a fast first token that another sent the same prompt.
TEST(Ch06Invalidation, TenantsWithDifferentIsolationKeysNeverShare) {
  PolicyRadixCache cache(2, EvictionPolicy::kLru);
  const V prompt = {5, 6, 7, 8, 9};
  const RequestTags alice{.isolation_key = "alice"};
  const RequestTags bob{.isolation_key = "bob"};
  EXPECT_THROW(cache.insert(prompt, V{10}, alice), Error);  // too few blocks: nothing changes
  EXPECT_EQ(cache.num_nodes(), 1);
  EXPECT_THROW(cache.history(ch05::PrefixHandle{1}), Error);
  EXPECT_EQ(cache.insert(prompt, V{10, 11}, alice).cached_tokens, 0);
  EXPECT_EQ(cache.peek_prefix(prompt, bob), 0);
  EXPECT_EQ(cache.peek_prefix(prompt), 0);  // nor the default tenant
  const ch05::PrefixMatch bob_first = cache.match_prefix(prompt, bob);
  EXPECT_EQ(bob_first.matched_tokens, 0);
  EXPECT_TRUE(bob_first.handle.empty());
  const ch05::InsertResult bob_insert = cache.insert(prompt, V{20, 21, 22}, bob);
  EXPECT_TRUE(bob_insert.cached_blocks.empty());
  EXPECT_TRUE(bob_insert.duplicate_blocks.empty());
  EXPECT_EQ(cache.match_prefix(prompt, alice).blocks, (V{10, 11}));
  EXPECT_EQ(cache.match_prefix(prompt, bob).blocks, (V{20, 21}));
  EXPECT_EQ(cache.peek_prefix(prompt, bob), 4);
  EXPECT_EQ(sorted(cache.held_blocks()), (V{10, 11, 20, 21}));
  cache.check_invariants();
  // One pool, one clock: eviction ranks both tenants' blocks together.
  EXPECT_EQ(cache.evict(2), (V{11, 10}));
  EXPECT_EQ(cache.match_prefix(prompt, alice).matched_tokens, 0);
  EXPECT_EQ(cache.match_prefix(prompt, bob).matched_tokens, 4);
}

TEST(Ch06Invalidation, CountersCountHitsMissesAndBlocksHandedBack) {
  TreeBuilder t(EvictionPolicy::kLru);
  t.insert({1, 2, 3});
  t.match({1, 2});
  t.match({1, 2, 3, 4});
  t.match({7});
  EXPECT_EQ(t.cache.counters().hits, 2);
  EXPECT_EQ(t.cache.counters().misses, 1);
  EXPECT_EQ(t.cache.counters().hit_tokens, 5);
  t.evict(1);
  t.cache.clear();
  EXPECT_EQ(t.cache.counters().evicted_blocks, 1);
  EXPECT_EQ(t.cache.counters().dropped_blocks, 2);
}

}  // namespace
}  // namespace kvc::ch06
