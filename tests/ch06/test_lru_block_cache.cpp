// Chapter 06 exercise: the fixed-capacity, reference-counted LRU block cache
// (lock, unlock and evict are the learner's). Hand-built orders first, then a
// random stream checked call by call against a brute-force model.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>

#include "chapters/06_lru_eviction/lru_block_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch06 {
namespace {

// Keys 1, 2, 3 holding blocks 10, 11, 12, inserted in that order.
LruBlockCache three_entries() {
  LruBlockCache cache(3);
  for (std::uint64_t key = 1; key <= 3; ++key)
    EXPECT_EQ(cache.insert(key, 9 + int(key)), std::nullopt);
  return cache;
}

TEST(Ch06LruBlockCache, EvictsTheLeastRecentlyUsedEntry) {
  LruBlockCache cache = three_entries();
  EXPECT_EQ(cache.lookup(1), 10);  // key 1 is now the most recent: key 2 is the oldest
  EXPECT_EQ(cache.evict(), 11);
  EXPECT_EQ(cache.lookup(2), std::nullopt);
  EXPECT_EQ(cache.evict(), 12);
  EXPECT_EQ(cache.evict(), 10);
  EXPECT_EQ(cache.evict(), std::nullopt);
  EXPECT_EQ(cache.size(), 0);
  cache.check_invariants();
}

TEST(Ch06LruBlockCache, AFullCacheEvictsOnInsert) {
  LruBlockCache cache = three_entries();
  EXPECT_EQ(cache.insert(4, 13), 10);  // key 1 made room
  EXPECT_EQ(cache.size(), 3);
  EXPECT_EQ(cache.lookup(1), std::nullopt);
  cache.check_invariants();
}

TEST(Ch06LruBlockCache, LockedEntriesAreNeverEvicted) {
  LruBlockCache cache = three_entries();
  cache.lock(1);
  cache.lock(2);
  EXPECT_EQ(cache.evictable(), 1);
  EXPECT_EQ(cache.evict(), 12);
  EXPECT_EQ(cache.evict(), std::nullopt);  // both left are locked: nothing changes
  EXPECT_EQ(cache.size(), 2);
  EXPECT_EQ(cache.insert(3, 12), std::nullopt);  // room without evicting
  cache.lock(3);
  EXPECT_THROW(cache.insert(4, 13), Error);  // full, and every entry locked
  EXPECT_EQ(cache.size(), 3);
  cache.check_invariants();
}

TEST(Ch06LruBlockCache, TheLastUnlockMakesAnEntryTheMostRecentlyUsed) {
  LruBlockCache cache = three_entries();
  cache.lock(1);
  cache.lock(1);  // locks count
  cache.unlock(1);
  EXPECT_EQ(cache.evictable(), 2);  // still locked once
  cache.check_invariants();
  cache.unlock(1);
  EXPECT_EQ(cache.evict(), 11);
  EXPECT_EQ(cache.evict(), 12);
  EXPECT_EQ(cache.evict(), 10);  // key 1 went last: its unlock was its latest use
}

TEST(Ch06LruBlockCache, ALookupOfALockedEntryMovesNothing) {
  LruBlockCache cache = three_entries();
  cache.lock(2);
  EXPECT_EQ(cache.lookup(2), 11);
  EXPECT_EQ(cache.evictable(), 2);
  cache.check_invariants();
  EXPECT_EQ(cache.evict(), 10);
}

TEST(Ch06LruBlockCache, BadCallsThrowAndChangeNothing) {
  EXPECT_THROW(LruBlockCache(0), Error);
  LruBlockCache cache = three_entries();
  EXPECT_THROW(cache.lock(7), Error);
  EXPECT_THROW(cache.unlock(7), Error);
  EXPECT_THROW(cache.unlock(1), Error);  // cached but not locked
  EXPECT_THROW(cache.insert(1, 20), Error);
  EXPECT_EQ(cache.evict(), 10);
  EXPECT_THROW(cache.insert(8, -1), Error);
  EXPECT_EQ(cache.size(), 2);
  EXPECT_EQ(cache.evictable(), 2);
  cache.check_invariants();
}

// The model: every entry with a timestamp of its last use; evict takes the
// unlocked entry with the oldest. Obviously right, O(n) per call.
struct ModelEntry {
  int block = 0;
  int refs = 0;
  long last_use = 0;
};

TEST(Ch06LruBlockCache, RandomCallsMatchABruteForceModel) {
  constexpr int kCapacity = 8;
  constexpr int kOperations = 20000;
  LruBlockCache cache(kCapacity);
  std::map<std::uint64_t, ModelEntry> model;
  long now = 0;
  int next_block = 0;
  std::mt19937 rng(606);
  const auto uniform = [&rng](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  const auto model_evict = [&]() -> std::optional<int> {
    auto oldest = model.end();
    for (auto it = model.begin(); it != model.end(); ++it) {
      if (it->second.refs == 0 &&
          (oldest == model.end() || it->second.last_use < oldest->second.last_use)) {
        oldest = it;
      }
    }
    if (oldest == model.end()) return std::nullopt;
    const int block = oldest->second.block;
    model.erase(oldest);
    return block;
  };
  for (int op = 0; op < kOperations; ++op) {
    SCOPED_TRACE("operation " + std::to_string(op));
    const std::uint64_t key = static_cast<std::uint64_t>(uniform(0, 11));
    const auto it = model.find(key);
    const bool cached = it != model.end();
    switch (uniform(0, 4)) {
      case 0: {  // lookup
        const std::optional<int> got = cache.lookup(key);
        ASSERT_EQ(got, cached ? std::optional<int>(it->second.block) : std::nullopt);
        if (cached && it->second.refs == 0) it->second.last_use = ++now;
        break;
      }
      case 1: {  // insert
        if (cached) {
          ASSERT_THROW(cache.insert(key, next_block), Error);
          break;
        }
        const bool full = static_cast<int>(model.size()) == kCapacity;
        bool any_unlocked = false;
        for (const auto& [k, e] : model) any_unlocked |= e.refs == 0;
        if (full && !any_unlocked) {
          ASSERT_THROW(cache.insert(key, next_block), Error);
          break;
        }
        const std::optional<int> expected = full ? model_evict() : std::nullopt;
        ASSERT_EQ(cache.insert(key, next_block), expected);
        model[key] = ModelEntry{next_block++, 0, ++now};
        break;
      }
      case 2:  // lock
        if (!cached) {
          ASSERT_THROW(cache.lock(key), Error);
        } else {
          cache.lock(key);
          ++it->second.refs;
        }
        break;
      case 3:  // unlock
        if (!cached || it->second.refs == 0) {
          ASSERT_THROW(cache.unlock(key), Error);
        } else {
          cache.unlock(key);
          if (--it->second.refs == 0) it->second.last_use = ++now;
        }
        break;
      default:
        ASSERT_EQ(cache.evict(), model_evict());
    }
    ASSERT_EQ(cache.size(), static_cast<int>(model.size()));
    ASSERT_NO_THROW(cache.check_invariants());
  }
}

}  // namespace
}  // namespace kvc::ch06
