// Chapter 05: both prefix caches against a brute-force reference, over long
// random streams of match / insert / lock / unlock / evict.
//
// Requests are built to collide: a few long "system prompts" over a 4-token
// alphabet, cut at random lengths, followed by short suffixes over 3 tokens,
// and later turns that extend an earlier request. Every operation is checked
// against ReferencePrefixCache (blocks, lengths, sizes, the exact blocks and
// order evict() frees), and check_invariants() runs after each one. A small
// block-id pool stands in for the allocator and tracks who owns every id, so
// a block handed out twice or leaked fails the test.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "chapters/05_radix_cache/hash_block_cache.hpp"
#include "chapters/05_radix_cache/prefix_cache.hpp"
#include "tests/ch05/block_pool.hpp"
#include "tests/ch05/reference_prefix_cache.hpp"

namespace kvc::ch05 {
namespace {

using testing::BlockPool;
using Owner = BlockPool::Owner;

struct HeldLock {
  PrefixHandle handle;
  std::vector<int> tokens;  // the locked whole-block prefix
};

// "radix", "hash", or "hash_3bit": the hash cache keeping 3 bits of each hash,
// so nearly every lookup meets colliding entries and must compare tokens.
std::unique_ptr<PrefixCache> make_cache(const std::string& kind, int block_size) {
  if (kind == "hash_3bit") return std::make_unique<HashBlockCache>(block_size, 3);
  return make_prefix_cache(kind, block_size);
}

class RandomOps : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(RandomOps, MatchTheBruteForceReference) {
  const auto& [kind, block_size] = GetParam();
  // 100,000 per real cache over the four block sizes; fewer with collisions.
  const int operations = kind == "hash_3bit" ? 5000 : 25000;
  constexpr int kPoolBlocks = 1024;
  constexpr int kCacheCap = 96;  // evict down to this, so every check stays cheap
  constexpr int kMaxLocks = 6;
  const int b = block_size;

  std::mt19937 rng(static_cast<unsigned>(2024 + block_size));
  const auto uniform = [&rng](int lo, int hi) {  // [lo, hi]
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  std::vector<std::vector<int>> stems(4);  // shared "system prompts", up to 6 blocks
  for (auto& stem : stems) {
    for (int i = 0; i < 6 * b; ++i) stem.push_back(uniform(0, 3));
  }
  std::vector<std::vector<int>> history;  // inserted requests, for later turns
  const auto make_request = [&] {
    std::vector<int> tokens;
    const int shape = uniform(0, 9);
    const auto& earlier =
        history.empty() ? stems[0] : history[std::size_t(uniform(0, int(history.size()) - 1))];
    if (shape < 3 && int(earlier.size()) <= 12 * b) {  // a later turn of an earlier request
      tokens = earlier;
    } else if (shape < 9) {  // a system prompt, cut anywhere (block edges included)
      const auto& stem = stems[static_cast<std::size_t>(uniform(0, 3))];
      tokens.assign(stem.begin(), stem.begin() + uniform(0, int(stem.size())));
    }
    const int suffix = uniform(0, 3 * b);
    for (int i = 0; i < suffix; ++i) tokens.push_back(uniform(0, 2));
    return tokens;
  };

  const auto cache = make_cache(kind, block_size);
  testing::ReferencePrefixCache reference(block_size);
  BlockPool pool(kPoolBlocks);
  std::vector<HeldLock> locks;

  const auto whole_prefix = [b](const std::vector<int>& tokens, int num_tokens) {
    return std::vector<int>(tokens.begin(), tokens.begin() + num_tokens / b * b);
  };
  const auto check_evict = [&](int n) {
    const std::vector<int> freed = cache->evict(n);
    ASSERT_EQ(freed, reference.evict(n)) << "evict(" << n << ")";
    for (const int id : freed) ASSERT_TRUE(pool.move(id, Owner::kCache, Owner::kFree)) << id;
    reference.check();
  };
  const auto check_match = [&](const std::vector<int>& tokens) {
    const PrefixMatch match = cache->match_prefix(tokens);
    const std::vector<int> expected = reference.match(tokens);
    EXPECT_EQ(match.blocks, expected);
    EXPECT_EQ(match.matched_tokens, static_cast<int>(expected.size()) * b);
    return match;
  };

  for (int op = 0; op < operations; ++op) {
    SCOPED_TRACE("operation " + std::to_string(op));
    const int what = uniform(0, 99);
    if (what < 30) {  // a request arrives: match, and hold its prefix while it runs
      const std::vector<int> tokens = make_request();
      const PrefixMatch match = check_match(tokens);
      if (uniform(0, 1) && static_cast<int>(locks.size()) < kMaxLocks) {
        cache->lock(match.handle);
        const auto prefix = whole_prefix(tokens, match.matched_tokens);
        reference.lock(prefix, +1);
        locks.push_back({match.handle, prefix});
      }
    } else if (what < 65) {  // a request finishes: insert its blocks
      const std::vector<int> tokens = make_request();
      if (pool.num_free() < int(tokens.size()) / b + 1) continue;
      std::vector<int> blocks;
      if (uniform(0, 1)) {  // it started on a matched prefix: those blocks are the cache's
        blocks = check_match(tokens).blocks;
      }
      while (blocks.size() < (tokens.size() + b - 1) / b) blocks.push_back(pool.allocate());
      const InsertResult result = cache->insert(tokens, blocks);
      const std::vector<int> expected_cached = reference.insert(tokens, blocks);
      ASSERT_EQ(result.cached_blocks, expected_cached);
      ASSERT_EQ(result.cached_tokens, static_cast<int>(expected_cached.size()) * b);
      ASSERT_EQ(result.duplicate_blocks, differing_blocks(blocks, expected_cached));
      ASSERT_EQ(pool.settle_insert(blocks, expected_cached, tokens.size() / b), -1);
      if (uniform(0, 3) == 0 && static_cast<int>(locks.size()) < kMaxLocks) {
        cache->lock(result.handle);  // the request keeps running on its cached prefix
        const auto prefix = whole_prefix(tokens, int(tokens.size()));
        reference.lock(prefix, +1);
        locks.push_back({result.handle, prefix});
      }
      history.push_back(tokens);
      if (history.size() > 64) history.erase(history.begin());
    } else if (what < 80) {  // a running request finishes: release its lock
      if (locks.empty()) continue;
      const auto victim = locks.begin() + uniform(0, int(locks.size()) - 1);
      cache->unlock(victim->handle);
      reference.lock(victim->tokens, -1);
      locks.erase(victim);
    } else if (what < 90) {
      check_evict(uniform(0, 2 * b));
    }
    if (cache->size_info().total_blocks() > kCacheCap) check_evict(uniform(1, 32));
    if (::testing::Test::HasFatalFailure()) return;

    const SizeInfo sizes = cache->size_info();
    ASSERT_EQ(sizes.evictable_blocks, reference.evictable_blocks());
    ASSERT_EQ(sizes.protected_blocks, reference.protected_blocks());
    ASSERT_EQ(pool.count(Owner::kCache), sizes.total_blocks());
    ASSERT_EQ(pool.count(Owner::kRequest), 0);
    ASSERT_NO_THROW(cache->check_invariants());
  }

  // The end of the run: nothing locked is freed, then everything is.
  const int protected_blocks = cache->size_info().protected_blocks;
  check_evict(kPoolBlocks);
  EXPECT_EQ(cache->size_info().total_blocks(), protected_blocks);
  for (const HeldLock& held : locks) cache->unlock(held.handle);
  EXPECT_EQ(cache->size_info().protected_blocks, 0);
  const std::vector<int> rest = cache->evict(kPoolBlocks);
  EXPECT_EQ(static_cast<int>(rest.size()), protected_blocks);
  for (const int id : rest) EXPECT_TRUE(pool.move(id, Owner::kCache, Owner::kFree)) << id;
  EXPECT_EQ(pool.num_free(), kPoolBlocks);
  EXPECT_NO_THROW(cache->check_invariants());
}

INSTANTIATE_TEST_SUITE_P(BothCaches, RandomOps,
                         ::testing::Combine(::testing::Values("radix", "hash", "hash_3bit"),
                                            ::testing::Values(1, 2, 4, 16)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_block" +
                                  std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace kvc::ch05
