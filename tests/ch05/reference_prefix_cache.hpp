// Chapter 05 tests: a brute-force prefix cache to check both real ones against.
//
// It keeps one map entry per cached whole-block prefix (the prefix's tokens ->
// its last block), and answers every question by the definition: the longest
// cached prefix, least recently used unlocked leaf first. Slow and obviously
// right.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

namespace kvc::ch05::testing {

class ReferencePrefixCache {
 public:
  explicit ReferencePrefixCache(int block_size) : block_size_(block_size) {}

  // The blocks of the longest cached whole-block prefix; a use of it.
  std::vector<int> match(std::span<const int> tokens);

  // Caches the whole blocks; returns the blocks that were already cached.
  std::vector<int> insert(std::span<const int> tokens, std::span<const int> blocks);

  // Locks count per prefix: every whole-block prefix of `tokens` gains one.
  void lock(std::span<const int> tokens, int delta);

  // Up to num_blocks blocks, least recently used unlocked leaf first.
  std::vector<int> evict(int num_blocks);

  int evictable_blocks() const;
  int protected_blocks() const;

  // Prefix-closed (every cached prefix's parent is cached), child counts and
  // lock counts consistent, no block twice. Throws kvc::Error.
  void check() const;

 private:
  struct Entry {
    int block = -1;
    std::uint64_t last_access = 0;
    int locks = 0;     // locks held on this prefix or an extension of it
    int children = 0;  // cached prefixes one block longer
  };
  std::vector<std::vector<int>> whole_block_prefixes(std::span<const int> tokens) const;

  int block_size_;
  std::map<std::vector<int>, Entry> prefixes_;
  std::uint64_t clock_ = 0;
};

}  // namespace kvc::ch05::testing
