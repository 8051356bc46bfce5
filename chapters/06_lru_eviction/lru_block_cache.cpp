// Chapter 06: the block cache's lookup and insert. lock, unlock and evict,
// the exercise, live in exercises/06_lru_eviction/lru_ops.cpp.
#include "chapters/06_lru_eviction/lru_block_cache.hpp"

#include "common/check.hpp"

namespace kvc::ch06 {

LruBlockCache::LruBlockCache(int capacity) : capacity_(capacity) {
  KVC_CHECK(capacity >= 1, "block cache: capacity must be at least 1, got ", capacity);
}

std::optional<int> LruBlockCache::lookup(std::uint64_t key) {
  const auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  Entry& entry = it->second;
  if (entry.ref_count == 0) lru_.splice(lru_.end(), lru_, entry.in_lru);
  return entry.block;
}

std::optional<int> LruBlockCache::insert(std::uint64_t key, int block) {
  KVC_CHECK(block >= 0, "block cache: negative block id ", block);
  KVC_CHECK(!entries_.contains(key), "block cache: key ", key, " is already cached");
  std::optional<int> evicted;
  if (size() == capacity_) {
    KVC_CHECK(evictable() > 0, "block cache: all ", capacity_, " entries are locked");
    evicted = evict();
  }
  lru_.push_back(key);
  entries_.emplace(key, Entry{block, 0, std::prev(lru_.end())});
  return evicted;
}

void LruBlockCache::check_invariants() const {
  KVC_CHECK(size() <= capacity_, "block cache: ", size(), " entries, capacity ", capacity_);
  int unlocked = 0;
  for (const auto& [key, entry] : entries_) {
    KVC_CHECK(entry.ref_count >= 0, "block cache: key ", key, " has a negative lock count");
    if (entry.ref_count > 0) continue;
    ++unlocked;
    KVC_CHECK(*entry.in_lru == key, "block cache: key ", key, " points at list entry ",
              *entry.in_lru);
  }
  KVC_CHECK(static_cast<std::size_t>(unlocked) == lru_.size(), "block cache: ", unlocked,
            " unlocked entries but ", lru_.size(), " in the list");
  for (const std::uint64_t key : lru_) {
    const auto it = entries_.find(key);
    KVC_CHECK(it != entries_.end() && it->second.ref_count == 0, "block cache: the list holds key ",
              key, ", which is not an unlocked entry");
  }
}

}  // namespace kvc::ch06
