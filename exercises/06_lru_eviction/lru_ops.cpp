// Exercise: chapter 06, the block cache's lock, unlock and evict.
//
// Build with -DKVC_EXERCISES=ON and run `ctest -L ch06`
// (scripts/check-exercises.sh 6); the LruBlockCache tests name the first
// call where your cache and a brute-force one disagree.
//
// The state (chapters/06_lru_eviction/lru_block_cache.hpp):
//   entries_  key -> Entry{block, ref_count, in_lru}
//   lru_      std::list of the keys of the UNLOCKED entries, least recently
//             used at the front; Entry::in_lru is the entry's place in it
//             (meaningful only while ref_count == 0)
// lookup() and insert() are written: read them first. insert() puts a new
// entry at the back of lru_ and calls evict() when the cache is full.
// Suggested tools: lru_.erase(it), lru_.insert(lru_.end(), key) (returns the
// new position), lru_.front(), lru_.pop_front(). Feel free to change the
// fields, as long as check_invariants() still describes them.
#include "chapters/06_lru_eviction/lru_block_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch06 {

// Contract: one more lock on the entry under `key`.
//   - Throw kvc::Error (KVC_CHECK) when `key` is not cached.
//   - Locks count: lock twice, unlock twice.
//   - The first lock (ref_count 0 -> 1) takes the entry out of lru_, so
//     evict() can never pick it.
void LruBlockCache::lock(std::uint64_t /*key*/) {
  throw NotImplemented("ch06: LruBlockCache::lock");
}

// Contract: one lock fewer on the entry under `key`.
//   - Throw kvc::Error when `key` is not cached or not locked (changing nothing).
//   - The last unlock (1 -> 0) puts the entry at the BACK of lru_: the
//     request that held it just used it, so it is the most recently used.
void LruBlockCache::unlock(std::uint64_t /*key*/) {
  throw NotImplemented("ch06: LruBlockCache::unlock");
}

// Contract: removes the least recently used unlocked entry (the front of
// lru_) from the cache and returns its block for the caller to free;
// nullopt, changing nothing, when every entry is locked or the cache is empty.
std::optional<int> LruBlockCache::evict() {
  throw NotImplemented("ch06: LruBlockCache::evict");
}

}  // namespace kvc::ch06
