#include "tests/ch05/reference_prefix_cache.hpp"

#include <set>

#include "common/check.hpp"

namespace kvc::ch05::testing {

std::vector<std::vector<int>> ReferencePrefixCache::whole_block_prefixes(
    std::span<const int> tokens) const {
  std::vector<std::vector<int>> prefixes;
  const std::size_t b = static_cast<std::size_t>(block_size_);
  for (std::size_t end = b; end <= tokens.size(); end += b) {
    prefixes.emplace_back(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return prefixes;
}

std::vector<int> ReferencePrefixCache::match(std::span<const int> tokens) {
  ++clock_;
  std::vector<int> blocks;
  for (const auto& prefix : whole_block_prefixes(tokens)) {
    const auto it = prefixes_.find(prefix);
    if (it == prefixes_.end()) break;
    it->second.last_access = clock_;
    blocks.push_back(it->second.block);
  }
  return blocks;
}

std::vector<int> ReferencePrefixCache::insert(std::span<const int> tokens,
                                              std::span<const int> blocks) {
  ++clock_;
  std::vector<int> cached;
  const auto prefixes = whole_block_prefixes(tokens);
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    auto it = prefixes_.find(prefixes[i]);
    if (it != prefixes_.end()) {
      KVC_CHECK(cached.size() == i, "reference: a cached prefix below an uncached one");
      cached.push_back(it->second.block);
    } else {
      it = prefixes_.emplace(prefixes[i], Entry{blocks[i], 0, 0, 0}).first;
      if (i > 0) ++prefixes_.at(prefixes[i - 1]).children;
    }
    it->second.last_access = clock_;
  }
  return cached;
}

void ReferencePrefixCache::lock(std::span<const int> tokens, int delta) {
  for (const auto& prefix : whole_block_prefixes(tokens)) {
    Entry& entry = prefixes_.at(prefix);
    entry.locks += delta;
    KVC_CHECK(entry.locks >= 0, "reference: unlock without lock");
  }
}

std::vector<int> ReferencePrefixCache::evict(int num_blocks) {
  std::vector<int> freed;
  while (static_cast<int>(freed.size()) < num_blocks) {
    auto oldest = prefixes_.end();
    int ties = 0;
    for (auto it = prefixes_.begin(); it != prefixes_.end(); ++it) {
      if (it->second.locks > 0 || it->second.children > 0) continue;
      if (oldest == prefixes_.end() || it->second.last_access < oldest->second.last_access) {
        oldest = it;
        ties = 0;
      } else if (it->second.last_access == oldest->second.last_access) {
        ++ties;
      }
    }
    if (oldest == prefixes_.end()) break;
    // Two leaves used by the same operation would lie on one path, so the
    // LRU order is total; a tie means the reference itself is wrong.
    KVC_CHECK(ties == 0, "reference: two evictable leaves with the same last access");
    freed.push_back(oldest->second.block);
    const std::vector<int>& tokens = oldest->first;
    if (tokens.size() > static_cast<std::size_t>(block_size_)) {
      const std::vector<int> parent(tokens.begin(), tokens.end() - block_size_);
      --prefixes_.at(parent).children;
    }
    prefixes_.erase(oldest);
  }
  return freed;
}

int ReferencePrefixCache::evictable_blocks() const {
  int n = 0;
  for (const auto& [tokens, entry] : prefixes_) n += entry.locks == 0;
  return n;
}

int ReferencePrefixCache::protected_blocks() const {
  return static_cast<int>(prefixes_.size()) - evictable_blocks();
}

void ReferencePrefixCache::check() const {
  std::set<int> blocks;
  std::map<const Entry*, std::pair<int, int>> below;  // entry -> (children, child locks)
  for (const auto& [tokens, entry] : prefixes_) {
    KVC_CHECK(blocks.insert(entry.block).second, "reference: block ", entry.block, " twice");
    if (tokens.size() > static_cast<std::size_t>(block_size_)) {
      const auto parent =
          prefixes_.find(std::vector<int>(tokens.begin(), tokens.end() - block_size_));
      KVC_CHECK(parent != prefixes_.end(), "reference: not prefix-closed");
      auto& [children, child_locks] = below[&parent->second];
      ++children;
      child_locks += entry.locks;
    }
  }
  for (const auto& [tokens, entry] : prefixes_) {
    const auto [children, child_locks] = below[&entry];
    KVC_CHECK(entry.children == children, "reference: child count");
    KVC_CHECK(entry.locks >= child_locks, "reference: lock count below its children's");
  }
}

}  // namespace kvc::ch05::testing
