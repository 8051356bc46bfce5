// Chapter 05: hand-built cases for both prefix caches — block edges, splits,
// locks against eviction, LRU order, repeated inserts, caller mistakes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chapters/05_radix_cache/prefix_cache.hpp"
#include "tests/support/test_support.hpp"

namespace kvc::ch05 {
namespace {

using Blocks = std::vector<int>;
using Tokens = std::vector<int>;

using ::kvc::testing::expect_one_line_kvc_error;

class Edges : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<PrefixCache> make(int block_size) {
    return make_prefix_cache(GetParam(), block_size);
  }
};

void expect_sizes(const PrefixCache& cache, int evictable, int protected_blocks) {
  EXPECT_EQ(cache.size_info().evictable_blocks, evictable);
  EXPECT_EQ(cache.size_info().protected_blocks, protected_blocks);
  EXPECT_NO_THROW(cache.check_invariants());
}

TEST_P(Edges, OnlyWholeBlocksAreCached) {
  const auto cache = make(4);
  // 3 tokens: less than a block, nothing to cache (the one id is the partial block).
  const InsertResult short_insert = cache->insert(Tokens{1, 2, 3}, Blocks{10});
  EXPECT_EQ(short_insert.cached_tokens, 0);
  EXPECT_TRUE(short_insert.handle.empty());
  expect_sizes(*cache, 0, 0);
  EXPECT_EQ(cache->match_prefix(Tokens{1, 2, 3}).matched_tokens, 0);
  // 4 tokens: one block.
  cache->insert(Tokens{1, 2, 3, 4}, Blocks{11});
  expect_sizes(*cache, 1, 0);
  // 5 tokens: one whole block, already cached, and a partial one that is ignored.
  const InsertResult five = cache->insert(Tokens{1, 2, 3, 4, 5}, Blocks{11, 12});
  EXPECT_EQ(five.cached_tokens, 4);
  EXPECT_EQ(five.cached_blocks, Blocks{11});
  EXPECT_TRUE(five.duplicate_blocks.empty());
  expect_sizes(*cache, 1, 0);
  // A match never ends inside a block.
  for (const Tokens& query : {Tokens{1, 2, 3}, Tokens{1, 2, 3, 4}, Tokens{1, 2, 3, 4, 5, 6, 7}}) {
    const PrefixMatch match = cache->match_prefix(query);
    EXPECT_EQ(match.matched_tokens, query.size() >= 4 ? 4 : 0);
    EXPECT_EQ(match.blocks, query.size() >= 4 ? Blocks{11} : Blocks{});
  }
}

TEST_P(Edges, APromptOfOneToken) {
  const auto per_token = make(1);
  EXPECT_EQ(per_token->insert(Tokens{7}, Blocks{3}).cached_tokens, 0);
  expect_sizes(*per_token, 1, 0);
  EXPECT_EQ(per_token->match_prefix(Tokens{7}).blocks, Blocks{3});
  EXPECT_EQ(per_token->match_prefix(Tokens{8}).matched_tokens, 0);

  const auto per_16 = make(16);
  EXPECT_EQ(per_16->insert(Tokens{7}, Blocks{3}).cached_tokens, 0);
  expect_sizes(*per_16, 0, 0);
  EXPECT_EQ(per_16->match_prefix(Tokens{7}).matched_tokens, 0);
  EXPECT_EQ(per_16->match_prefix(Tokens{}).matched_tokens, 0);
}

TEST_P(Edges, AMatchEndingInsideARunReturnsExactlyThatPrefix) {
  const auto cache = make(2);
  cache->insert(Tokens{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Blocks{0, 1, 2, 3, 4, 5});
  const PrefixMatch match = cache->match_prefix(Tokens{1, 2, 3, 4, 5, 6, 0, 0});
  EXPECT_EQ(match.blocks, (Blocks{0, 1, 2}));
  EXPECT_EQ(match.matched_tokens, 6);
  // Locking the handle protects the 3 matched blocks, not the 3 after them.
  cache->lock(match.handle);
  expect_sizes(*cache, 3, 3);
  EXPECT_EQ(cache->evict(10), (Blocks{5, 4, 3}));
  expect_sizes(*cache, 0, 3);
  cache->unlock(match.handle);
  expect_sizes(*cache, 3, 0);
}

TEST_P(Edges, AnInsertDivergingInsideARunSharesItsPrefix) {
  const auto cache = make(2);
  cache->insert(Tokens{1, 2, 3, 4, 5, 6, 7, 8}, Blocks{0, 1, 2, 3});
  const InsertResult second = cache->insert(Tokens{1, 2, 3, 4, 9, 9, 9}, Blocks{0, 1, 7, 8});
  EXPECT_EQ(second.cached_blocks, (Blocks{0, 1}));
  EXPECT_EQ(second.cached_tokens, 4);
  EXPECT_TRUE(second.duplicate_blocks.empty());
  expect_sizes(*cache, 5, 0);
  EXPECT_EQ(cache->match_prefix(Tokens{1, 2, 3, 4, 9, 9}).blocks, (Blocks{0, 1, 7}));
  EXPECT_EQ(cache->match_prefix(Tokens{1, 2, 3, 4, 5, 6, 7, 8}).blocks, (Blocks{0, 1, 2, 3}));
}

// With block_size 2, "1 2 | 3 4" and "1 9 | 3 4" start with the same token
// but not the same block: both must stay cached and reachable.
TEST_P(Edges, SiblingsThatShareAFirstTokenButNotAFirstBlock) {
  const auto cache = make(2);
  cache->insert(Tokens{1, 2, 3, 4}, Blocks{0, 1});
  EXPECT_EQ(cache->insert(Tokens{1, 9, 3, 4}, Blocks{2, 3}).cached_tokens, 0);
  expect_sizes(*cache, 4, 0);
  EXPECT_EQ(cache->match_prefix(Tokens{1, 2, 3, 4}).blocks, (Blocks{0, 1}));
  EXPECT_EQ(cache->match_prefix(Tokens{1, 9, 3, 4}).blocks, (Blocks{2, 3}));
  EXPECT_EQ(cache->match_prefix(Tokens{1, 5, 3, 4}).matched_tokens, 0);
}

TEST_P(Edges, ReinsertingACachedSequenceReportsAllOfItCached) {
  const auto cache = make(4);
  const Tokens tokens = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  cache->insert(tokens, Blocks{0, 1, 2});
  // The same prompt computed again by a request that did not match first:
  // its own blocks are duplicates (the partial third is the caller's to free).
  const InsertResult again = cache->insert(tokens, Blocks{5, 6, 7});
  EXPECT_EQ(again.cached_tokens, 8);
  EXPECT_EQ(again.cached_blocks, (Blocks{0, 1}));
  EXPECT_EQ(again.duplicate_blocks, (Blocks{5, 6}));
  expect_sizes(*cache, 2, 0);
  // A request that started on the match passes the cache's own blocks back.
  const InsertResult reused = cache->insert(tokens, Blocks{0, 1, 9});
  EXPECT_EQ(reused.cached_tokens, 8);
  EXPECT_TRUE(reused.duplicate_blocks.empty());
  expect_sizes(*cache, 2, 0);
}

TEST_P(Edges, NothingLockedIsEverEvicted) {
  const auto cache = make(1);
  const InsertResult a = cache->insert(Tokens{1, 2, 3}, Blocks{0, 1, 2});
  cache->insert(Tokens{1, 2, 4, 5}, Blocks{0, 1, 3, 4});
  cache->insert(Tokens{6}, Blocks{5});
  cache->lock(a.handle);
  cache->lock(a.handle);  // two requests run on the same prefix
  expect_sizes(*cache, 3, 3);
  EXPECT_EQ(cache->evict(100), (Blocks{4, 3, 5}));  // LRU leaf order; 0, 1, 2 stay
  expect_sizes(*cache, 0, 3);
  EXPECT_EQ(cache->match_prefix(Tokens{1, 2, 3}).blocks, (Blocks{0, 1, 2}));
  cache->unlock(a.handle);
  EXPECT_TRUE(cache->evict(100).empty());  // one lock is still held
  cache->unlock(a.handle);
  expect_sizes(*cache, 3, 0);
  EXPECT_EQ(cache->evict(100), (Blocks{2, 1, 0}));  // a prefix only after its extensions
  expect_sizes(*cache, 0, 0);
}

TEST_P(Edges, EvictsTheLeastRecentlyUsedLeafFirst) {
  const auto cache = make(2);
  cache->insert(Tokens{1, 1, 2, 2}, Blocks{0, 1});
  cache->insert(Tokens{3, 3, 4, 4}, Blocks{2, 3});
  cache->insert(Tokens{5, 5}, Blocks{4});
  cache->match_prefix(Tokens{1, 1, 2, 2});  // now the most recent
  EXPECT_EQ(cache->evict(1), Blocks{3});
  EXPECT_EQ(cache->evict(2), (Blocks{2, 4}));
  EXPECT_EQ(cache->evict(5), (Blocks{1, 0}));
  EXPECT_TRUE(cache->evict(1).empty());
  expect_sizes(*cache, 0, 0);
}

TEST_P(Edges, CallerMistakesThrowAndChangeNothing) {
  expect_one_line_kvc_error([this] { make(0); });
  const auto cache = make(2);
  const InsertResult a = cache->insert(Tokens{1, 2, 3, 4}, Blocks{0, 1});
  const std::string before = cache->debug_string();
  expect_one_line_kvc_error([&] { cache->insert(Tokens{5, 6, 7, 8}, Blocks{2}); });     // too few
  expect_one_line_kvc_error([&] { cache->insert(Tokens{5, 6, 7}, Blocks{2, 3, 4}); });  // too many
  expect_one_line_kvc_error([&] { cache->insert(Tokens{5, 6}, Blocks{-1}); });
  expect_one_line_kvc_error([&] { cache->unlock(a.handle); });  // never locked
  expect_one_line_kvc_error([&] { cache->lock(PrefixHandle{-1}); });
  expect_one_line_kvc_error([&] { cache->lock(PrefixHandle{1000}); });
  expect_one_line_kvc_error([&] { cache->evict(-1); });
  EXPECT_EQ(cache->debug_string(), before);
  expect_sizes(*cache, 2, 0);
  cache->lock(PrefixHandle{});  // the empty prefix: nothing to protect
  cache->unlock(PrefixHandle{});
  expect_sizes(*cache, 2, 0);
}

TEST_P(Edges, MetadataGrowsWithTheCache) {
  const auto cache = make(4);
  const std::size_t empty = cache->metadata_bytes();
  Tokens tokens;
  Blocks blocks;
  for (int i = 0; i < 64; ++i) {
    tokens.push_back(i);
    if (tokens.size() % 4 == 0) blocks.push_back(static_cast<int>(blocks.size()));
  }
  cache->insert(tokens, blocks);
  EXPECT_GT(cache->metadata_bytes(), empty + blocks.size() * 4 * sizeof(int));
}

INSTANTIATE_TEST_SUITE_P(BothCaches, Edges, ::testing::Values("radix", "hash"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kvc::ch05
