// Belady's MIN on block traces: the traces a run makes, and the optimum
// checked against an exhaustive search over every possible caching decision.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <random>
#include <vector>

#include "chapters/06_lru_eviction/belady.hpp"
#include "common/check.hpp"

namespace kvc::ch06 {
namespace {

BlockTrace trace_of(const std::vector<BlockAccess>& accesses) {
  BlockTrace t;
  t.block_size = 1;
  t.accesses = accesses;
  for (const BlockAccess& a : accesses) {
    t.distinct_blocks = std::max(t.distinct_blocks, a.block + 1);
    t.prompt_tokens += a.lookup ? 1 : 0;
  }
  return t;
}

// The most lookup hits any caching of at most `capacity` blocks gets: after
// every access, keep any subset of what was cached plus the block just
// accessed. Exhaustive, with a memo over (position, cached set).
long long brute_force_hits(const BlockTrace& t, int capacity) {
  const std::size_t n = t.accesses.size();
  const std::uint32_t sets = 1u << t.distinct_blocks;
  std::vector<long long> best((n + 1) * sets, 0);  // [position][cached set]
  for (std::size_t i = n; i-- > 0;) {
    const BlockAccess& a = t.accesses[i];
    const std::uint32_t bit = 1u << a.block;
    for (std::uint32_t cached = 0; cached < sets; ++cached) {
      const long long hit = a.lookup && (cached & bit) != 0 ? 1 : 0;
      const std::uint32_t may_keep = cached | bit;
      long long most = 0;
      for (std::uint32_t keep = may_keep;; keep = (keep - 1) & may_keep) {
        if (std::popcount(keep) <= capacity) most = std::max(most, best[(i + 1) * sets + keep]);
        if (keep == 0) break;
      }
      best[i * sets + cached] = hit + most;
    }
  }
  return best[0];
}

TEST(Ch06BlockTrace, LooksUpPromptBlocksAndStoresTheRest) {
  // Block size 2, at most 2 new tokens. The first completion: prompt 1 2 3
  // 4, answer 5 6. Its lookup covers the prompt but its last token: one
  // block, (1 2). It computed (fed) 5 positions, as 6 ended it at the limit:
  // (3 4) is stored, (5 6) is not. The third (prompt 7 8 3 4 1) sampled 2,
  // then BOS: it fed every token it holds.
  const std::vector<std::vector<int>> completions = {
      {1, 2, 3, 4, 5, 6}, {1, 2, 3, 4, 9, 5}, {7, 8, 3, 4, 1, 2}};
  const std::vector<int> prompts = {4, 4, 5};
  const BlockTrace t = block_trace(completions, prompts, 2, 2);
  const std::vector<BlockAccess> expected = {
      {0, true}, {1, false},               // (1 2) looked up, (3 4) stored
      {0, true}, {1, false},               // the same: (3 4) is not in the prompt's lookup
      {2, true}, {3, true},  {4, false}};  // (3 4) after (7 8) is another block
  EXPECT_EQ(t.accesses, expected);
  EXPECT_EQ(t.distinct_blocks, 5);
  EXPECT_EQ(t.prompt_tokens, 13);
  EXPECT_EQ(belady_hits(t, 1), 1);
  EXPECT_DOUBLE_EQ(belady_hit_rate(t, 1), 2.0 / 13.0);
  EXPECT_EQ(belady_hits(t, 0), 0);
}

TEST(Ch06BlockTrace, RefusesInconsistentInput) {
  const std::vector<std::vector<int>> completions = {{1, 2, 3}};
  EXPECT_THROW(block_trace(completions, std::vector<int>{0}, 2, 1), Error);
  EXPECT_THROW(block_trace(completions, std::vector<int>{4}, 2, 1), Error);
  EXPECT_THROW(block_trace(completions, std::vector<int>{1, 1}, 2, 1), Error);
  EXPECT_THROW(block_trace(completions, std::vector<int>{2}, 0, 1), Error);
  EXPECT_THROW(belady_hits(block_trace(completions, std::vector<int>{2}, 1, 1), -1), Error);
}

TEST(Ch06Belady, DropsTheBlockNeededFarthestAway) {
  // Lookups a b c a b d a, room for 2: after a b, c is needed never again, so
  // it is not kept; a and b hit; d is not kept; a hits again. LRU would hit once.
  const BlockTrace t =
      trace_of({{0, true}, {1, true}, {2, true}, {0, true}, {1, true}, {3, true}, {0, true}});
  EXPECT_EQ(belady_hits(t, 2), 3);
  EXPECT_EQ(belady_hits(t, 1), 2);  // keep a throughout
  EXPECT_EQ(brute_force_hits(t, 2), 3);
}

TEST(Ch06Belady, AStoreBringsItsBlockBackForFree) {
  // a is looked up, then stored (recomputed) before its next use: keeping it
  // in between is worth nothing, so the one slot goes to b, which hits.
  // (MIN that counted the store as a use would keep a and hit nothing.)
  const BlockTrace t = trace_of({{0, true}, {1, true}, {0, false}, {1, true}});
  EXPECT_EQ(belady_hits(t, 1), 1);
  EXPECT_EQ(brute_force_hits(t, 1), 1);
}

TEST(Ch06Belady, EqualsExhaustiveSearchOnRandomTraces) {
  std::mt19937_64 rng(2026);
  for (int round = 0; round < 3000; ++round) {
    const int blocks = 1 + static_cast<int>(rng() % 5);
    const int length = 1 + static_cast<int>(rng() % 12);
    std::vector<BlockAccess> accesses;
    for (int i = 0; i < length; ++i) {
      accesses.push_back({static_cast<int>(rng() % blocks), rng() % 4 != 0});
    }
    const BlockTrace t = trace_of(accesses);
    for (int capacity = 0; capacity <= blocks; ++capacity) {
      ASSERT_EQ(belady_hits(t, capacity), brute_force_hits(t, capacity))
          << "round " << round << ", capacity " << capacity;
    }
  }
}

TEST(Ch06Belady, UnboundedHitsEveryRepeatedLookup) {
  std::mt19937_64 rng(7);
  std::vector<BlockAccess> accesses;
  for (int i = 0; i < 500; ++i) accesses.push_back({static_cast<int>(rng() % 40), rng() % 3 != 0});
  const BlockTrace t = trace_of(accesses);
  long long repeated = 0;
  std::vector<bool> seen(40, false);
  for (const BlockAccess& a : accesses) {
    repeated += a.lookup && seen[static_cast<std::size_t>(a.block)] ? 1 : 0;
    seen[static_cast<std::size_t>(a.block)] = true;
  }
  EXPECT_EQ(belady_hits(t, t.distinct_blocks), repeated);
  EXPECT_EQ(belady_hits(t, 1000), repeated);
  // More room never hurts.
  for (int c = 1; c <= t.distinct_blocks; ++c) EXPECT_LE(belady_hits(t, c - 1), belady_hits(t, c));
}

}  // namespace
}  // namespace kvc::ch06
