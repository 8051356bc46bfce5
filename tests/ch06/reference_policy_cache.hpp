// Chapter 06 tests: a brute-force bounded prefix cache to check
// PolicyRadixCache against.
//
// Like chapter 05's reference it keeps one map entry per cached whole-block
// prefix, here keyed by (isolation key, tokens), with the prefix's history,
// and answers by the definitions: a use updates every prefix it passes
// through; evict and every invalidation repeatedly take the unlocked leaf
// prefix with the smallest key (eviction_key, the policy under test). No
// tree, no splits: slow and obviously right.
#pragma once

#include <functional>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "chapters/06_lru_eviction/policy_radix_cache.hpp"

namespace kvc::ch06::testing {

class ReferencePolicyCache {
 public:
  ReferencePolicyCache(int block_size, EvictionPolicy policy, std::uint64_t ttl)
      : block_size_(block_size), policy_(policy), ttl_(ttl) {}

  // The blocks of the longest cached whole-block prefix; a hit on each.
  std::vector<int> match(std::span<const int> tokens, const RequestTags& tags);
  // Caches the whole blocks; returns the blocks that were already cached.
  std::vector<int> insert(std::span<const int> tokens, std::span<const int> blocks,
                          const RequestTags& tags);
  // Every whole-block prefix of `tokens` (in the key's tree) gains `delta` locks.
  void lock(const std::string& isolation_key, std::span<const int> tokens, int delta);

  std::vector<int> evict(int num_blocks);
  std::vector<int> expire();
  std::vector<int> end_session(int session);
  std::vector<int> clear_tag(const std::string& tag);
  std::vector<int> clear();

  int evictable_blocks() const;
  int protected_blocks() const;

 private:
  struct Entry {
    int block = -1;
    std::uint64_t last_access = 0;
    NodeHistory history;
    int locks = 0;     // locks held on this prefix or an extension of it
    int children = 0;  // cached prefixes one block longer
  };
  using Key = std::pair<std::string, std::vector<int>>;  // (isolation key, tokens)

  std::vector<Key> whole_block_prefixes(const std::string& isolation_key,
                                        std::span<const int> tokens) const;
  void use(Entry& entry, const RequestTags& tags, bool is_match);
  int tag_id(const std::string& tag);
  bool expired(const Entry& entry) const;
  // Up to num_blocks blocks of unlocked leaves that `drop` accepts, smallest key first.
  std::vector<int> take(int num_blocks, const std::function<bool(const Entry&)>& drop);

  int block_size_;
  EvictionPolicy policy_;
  std::uint64_t ttl_;
  std::map<Key, Entry> prefixes_;
  std::map<std::string, int> tag_ids_;
  std::uint64_t clock_ = 0;
};

}  // namespace kvc::ch06::testing
