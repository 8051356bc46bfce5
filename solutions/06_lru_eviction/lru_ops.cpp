// Solution: chapter 06, the block cache's lock, unlock and evict.
#include "chapters/06_lru_eviction/lru_block_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch06 {

void LruBlockCache::lock(std::uint64_t key) {
  const auto it = entries_.find(key);
  KVC_CHECK(it != entries_.end(), "block cache: lock of key ", key, ", which is not cached");
  Entry& entry = it->second;
  // A locked entry may not be evicted: it leaves the list until its last unlock.
  if (entry.ref_count++ == 0) lru_.erase(entry.in_lru);
}

void LruBlockCache::unlock(std::uint64_t key) {
  const auto it = entries_.find(key);
  KVC_CHECK(it != entries_.end(), "block cache: unlock of key ", key, ", which is not cached");
  Entry& entry = it->second;
  KVC_CHECK(entry.ref_count > 0, "block cache: unlock of key ", key, ", which is not locked");
  // The last reader just finished with it: it is the most recently used.
  if (--entry.ref_count == 0) entry.in_lru = lru_.insert(lru_.end(), key);
}

std::optional<int> LruBlockCache::evict() {
  if (lru_.empty()) return std::nullopt;
  const std::uint64_t key = lru_.front();
  lru_.pop_front();
  const auto it = entries_.find(key);
  const int block = it->second.block;
  entries_.erase(it);
  return block;
}

}  // namespace kvc::ch06
