#include "tests/ch06/reference_policy_cache.hpp"

#include <algorithm>
#include <limits>

#include "common/check.hpp"

namespace kvc::ch06::testing {

std::vector<ReferencePolicyCache::Key> ReferencePolicyCache::whole_block_prefixes(
    const std::string& isolation_key, std::span<const int> tokens) const {
  std::vector<Key> prefixes;
  const std::size_t b = static_cast<std::size_t>(block_size_);
  for (std::size_t end = b; end <= tokens.size(); end += b) {
    prefixes.emplace_back(isolation_key, std::vector<int>(tokens.begin(), tokens.begin() + end));
  }
  return prefixes;
}

int ReferencePolicyCache::tag_id(const std::string& tag) {
  if (tag.empty()) return kNoOwner;
  return tag_ids_.emplace(tag, static_cast<int>(tag_ids_.size()) + 1).first->second;
}

void ReferencePolicyCache::use(Entry& entry, const RequestTags& tags, bool is_match) {
  entry.last_access = clock_;
  if (is_match) ++entry.history.hits;
  entry.history.priority = std::max(entry.history.priority, tags.priority);
  entry.history.session = owner_after_use(entry.history.session, tags.session);
  entry.history.tag = owner_after_use(entry.history.tag, tag_id(tags.tag));
}

std::vector<int> ReferencePolicyCache::match(std::span<const int> tokens, const RequestTags& tags) {
  ++clock_;
  std::vector<int> blocks;
  for (const Key& prefix : whole_block_prefixes(tags.isolation_key, tokens)) {
    const auto it = prefixes_.find(prefix);
    if (it == prefixes_.end()) break;
    use(it->second, tags, /*is_match=*/true);
    blocks.push_back(it->second.block);
  }
  return blocks;
}

std::vector<int> ReferencePolicyCache::insert(std::span<const int> tokens,
                                              std::span<const int> blocks,
                                              const RequestTags& tags) {
  ++clock_;
  std::vector<int> cached;
  const std::vector<Key> prefixes = whole_block_prefixes(tags.isolation_key, tokens);
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    auto it = prefixes_.find(prefixes[i]);
    if (it != prefixes_.end()) {
      KVC_CHECK(cached.size() == i, "reference: a cached prefix below an uncached one");
      cached.push_back(it->second.block);
    } else {
      Entry fresh;
      fresh.block = blocks[i];
      fresh.history = NodeHistory{.created = clock_,
                                  .hits = 0,
                                  .priority = tags.priority,
                                  .session = tags.session,
                                  .tag = tag_id(tags.tag)};
      it = prefixes_.emplace(prefixes[i], fresh).first;
      if (i > 0) ++prefixes_.at(prefixes[i - 1]).children;
    }
    use(it->second, tags, /*is_match=*/false);
  }
  return cached;
}

void ReferencePolicyCache::lock(const std::string& isolation_key, std::span<const int> tokens,
                                int delta) {
  for (const Key& prefix : whole_block_prefixes(isolation_key, tokens)) {
    Entry& entry = prefixes_.at(prefix);
    entry.locks += delta;
    KVC_CHECK(entry.locks >= 0, "reference: unlock without lock");
  }
}

bool ReferencePolicyCache::expired(const Entry& entry) const {
  return ttl_ > 0 && clock_ - entry.last_access > ttl_;
}

std::vector<int> ReferencePolicyCache::take(int num_blocks,
                                            const std::function<bool(const Entry&)>& drop) {
  std::vector<int> freed;
  while (static_cast<int>(freed.size()) < num_blocks) {
    auto best = prefixes_.end();
    EvictionKey best_key{};
    bool tie = false;
    for (auto it = prefixes_.begin(); it != prefixes_.end(); ++it) {
      const Entry& e = it->second;
      if (e.locks > 0 || e.children > 0 || !drop(e)) continue;
      const EvictionKey key = eviction_key(policy_, e.history, e.last_access, expired(e));
      if (best == prefixes_.end() || key < best_key) {
        best = it;
        best_key = key;
        tie = false;
      } else if (key == best_key) {
        tie = true;
      }
    }
    if (best == prefixes_.end()) break;
    // Leaves of different paths were last used by different operations, and
    // every key ends in the last access: the order is total.
    KVC_CHECK(!tie, "reference: two evictable leaves with the same key");
    freed.push_back(best->second.block);
    const auto& [isolation_key, tokens] = best->first;
    if (tokens.size() > static_cast<std::size_t>(block_size_)) {
      const Key parent{isolation_key, std::vector<int>(tokens.begin(), tokens.end() - block_size_)};
      --prefixes_.at(parent).children;
    }
    prefixes_.erase(best);
  }
  return freed;
}

std::vector<int> ReferencePolicyCache::evict(int num_blocks) {
  return take(num_blocks, [](const Entry&) { return true; });
}

std::vector<int> ReferencePolicyCache::expire() {
  return take(std::numeric_limits<int>::max(), [this](const Entry& e) { return expired(e); });
}

std::vector<int> ReferencePolicyCache::end_session(int session) {
  return take(std::numeric_limits<int>::max(),
              [session](const Entry& e) { return e.history.session == session; });
}

std::vector<int> ReferencePolicyCache::clear_tag(const std::string& tag) {
  const auto it = tag_ids_.find(tag);
  if (it == tag_ids_.end()) return {};
  const int id = it->second;
  return take(std::numeric_limits<int>::max(),
              [id](const Entry& e) { return e.history.tag == id; });
}

std::vector<int> ReferencePolicyCache::clear() {
  return evict(std::numeric_limits<int>::max());
}

int ReferencePolicyCache::evictable_blocks() const {
  int n = 0;
  for (const auto& [key, entry] : prefixes_) n += entry.locks == 0;
  return n;
}

int ReferencePolicyCache::protected_blocks() const {
  return static_cast<int>(prefixes_.size()) - evictable_blocks();
}

}  // namespace kvc::ch06::testing
