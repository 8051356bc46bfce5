// Chapter 06 tests: hand-built trees with readable block ids.
//
// Block size 1, and every token value appears at one place in the tree, so a
// token's block id can simply be 100 + token: evict() results read as the
// tokens they held, in order.
#pragma once

#include <cstdint>
#include <vector>

#include "chapters/06_lru_eviction/policy_radix_cache.hpp"

namespace kvc::ch06::testing {

inline constexpr int kBlockBase = 100;

struct TreeBuilder {
  explicit TreeBuilder(EvictionPolicy policy, std::uint64_t ttl = 0) : cache(1, policy, ttl) {}

  ch05::PrefixHandle insert(const std::vector<int>& tokens, const RequestTags& tags = {}) {
    std::vector<int> blocks;
    for (const int token : tokens) blocks.push_back(kBlockBase + token);
    return cache.insert(tokens, blocks, tags).handle;
  }
  ch05::PrefixHandle match(const std::vector<int>& tokens, const RequestTags& tags = {}) {
    return cache.match_prefix(tokens, tags).handle;
  }
  // The tokens whose blocks come back, in order.
  static std::vector<int> tokens_of(const std::vector<int>& blocks) {
    std::vector<int> tokens;
    for (const int block : blocks) tokens.push_back(block - kBlockBase);
    return tokens;
  }
  std::vector<int> evict(int n) { return tokens_of(cache.evict(n)); }

  PolicyRadixCache cache;
};

}  // namespace kvc::ch06::testing
