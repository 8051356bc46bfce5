// Chapter 06: a fixed-capacity, reference-counted block cache that evicts the
// least recently used unlocked entry — the evictor of vLLM's block pool, in
// miniature, and this chapter's exercise.
//
// Entries map a key (a block's content hash, as in chapter 05's hash cache)
// to the KV block holding it. A running request locks the entries it reads
// (lock counts, like a reference count); only unlocked entries can be evicted.
// The unlocked ones wait in a list, least recently used first:
//
//   locked:    {h7: block 3, refs 2}  {h2: block 9, refs 1}      (not in the list)
//   lru_ list: h5 -> h1 -> h8                                    (h5 goes first)
//
// An entry joins the back of the list when it is inserted, when a lookup
// hits it while it is unlocked, and when its last lock is released (vLLM's
// free queue does the same: a freed block is the most recently used). So
// evict(), lock() and unlock() are O(1): no scan, no heap.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>

namespace kvc::ch06 {

class LruBlockCache {
 public:
  // Throws kvc::Error when capacity < 1.
  explicit LruBlockCache(int capacity);

  int capacity() const { return capacity_; }
  int size() const { return static_cast<int>(entries_.size()); }
  int evictable() const { return static_cast<int>(lru_.size()); }  // unlocked entries

  // The block cached under `key`, or nullopt. A hit on an unlocked entry makes
  // it the most recently used; a locked entry is not in the list, so nothing moves.
  std::optional<int> lookup(std::uint64_t key);

  // Caches `block` under `key`, unlocked and most recently used. When the
  // cache is full it first evicts the least recently used unlocked entry and
  // returns that entry's block, for the caller to free. Throws kvc::Error,
  // changing nothing, when `key` is already cached, the block id is negative,
  // or the cache is full and every entry is locked.
  std::optional<int> insert(std::uint64_t key, int block);

  // EXERCISE (exercises/06_lru_eviction/lru_ops.cpp)
  void lock(std::uint64_t key);
  void unlock(std::uint64_t key);
  std::optional<int> evict();

  // Throws kvc::Error naming the first broken invariant: the list holds
  // exactly the unlocked entries, once each, and each entry's position
  // points at its own key.
  void check_invariants() const;

 private:
  struct Entry {
    int block = -1;
    int ref_count = 0;                          // locks held; 0: the entry is in lru_
    std::list<std::uint64_t>::iterator in_lru;  // its place in lru_ (when unlocked)
  };

  int capacity_;
  std::unordered_map<std::uint64_t, Entry> entries_;  // key -> entry
  std::list<std::uint64_t> lru_;                      // unlocked keys, least recently used first
};

}  // namespace kvc::ch06
