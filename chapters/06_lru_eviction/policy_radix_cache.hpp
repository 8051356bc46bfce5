// Chapter 06: the radix prefix cache, bounded — eviction policies, pinning and
// invalidation on top of chapter 05's tree.
//
// NEW (ch06): chapter 05's RadixCache evicts least recently used unlocked
// leaves. This class keeps its tree, its walks and its locks, and adds:
//   - an eviction policy (eviction_policy.hpp): LRU (chapter 05's order,
//     unchanged), LFU, FIFO, priority, SLRU;
//   - pinning: a pin is a lock the cache itself holds, so a pinned prefix
//     (a system prompt) is never evicted, under any policy, until unpinned;
//   - invalidation, each returning the freed blocks for the caller to free,
//     like evict(), and never touching a locked block:
//       expire()            entries unused for longer than the time-to-live
//       end_session(s)      the branch only session s used
//       clear_tag(t)        the entries only namespace t used
//       clear()             everything unlocked
//   - isolation: requests with different isolation keys (vLLM's cache_salt)
//     walk different trees, each under its own root, so two tenants never
//     share a block, and one cannot time the other's cached prompts;
//   - counters: hits, misses, evicted and dropped blocks.
//
// Requests describe themselves with RequestTags. The chapter 05 interface
// (what PrefixCachingBlockManager calls) uses the default tags: no session,
// no namespace, priority 0, the shared tenant.
//
// Time is chapter 05's logical clock: one tick per match or insert.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chapters/05_radix_cache/radix_cache.hpp"
#include "chapters/06_lru_eviction/eviction_policy.hpp"

namespace kvc::ch06 {

struct RequestTags {
  std::string
      isolation_key{};     // tenants with different keys never share a block; "" is the default
  std::string tag{};       // the namespace (codebase, document set); "" is none
  int session = kNoOwner;  // the chat session; kNoOwner (0) is none; never negative
  int priority = 0;        // higher stays longer under the priority policy
};

struct CacheCounters {
  long long hits = 0;            // match_prefix calls that matched at least one block
  long long misses = 0;          // match_prefix calls that matched none
  long long hit_tokens = 0;      // tokens those hits matched
  long long evicted_blocks = 0;  // blocks evict() handed back
  long long dropped_blocks = 0;  // blocks expire, end_session, clear_tag and clear handed back
};

class PolicyRadixCache final : public ch05::RadixCache {
 public:
  // ttl: entries unused for more than ttl clock ticks are expired (evicted
  // first, dropped by expire()); 0 means they never expire. Throws kvc::Error
  // when block_size < 1.
  explicit PolicyRadixCache(int block_size, EvictionPolicy policy = EvictionPolicy::kLru,
                            std::uint64_t ttl = 0);

  EvictionPolicy policy() const { return policy_; }
  std::uint64_t ttl() const { return ttl_; }
  std::uint64_t now() const { return clock(); }
  const CacheCounters& counters() const { return counters_; }

  // Chapter 05's interface, with the default tags.
  ch05::PrefixMatch match_prefix(std::span<const int> tokens) override;
  int peek_prefix(std::span<const int> tokens) const override;
  ch05::InsertResult insert(std::span<const int> tokens, std::span<const int> blocks) override;

  // The same, for a request with tags. The isolation key picks the tree; the
  // other tags are recorded on every node the call passes through.
  ch05::PrefixMatch match_prefix(std::span<const int> tokens, const RequestTags& tags);
  int peek_prefix(std::span<const int> tokens, const RequestTags& tags) const;
  ch05::InsertResult insert(std::span<const int> tokens, std::span<const int> blocks,
                            const RequestTags& tags);

  // Up to num_blocks blocks by the policy: expired entries first, then the
  // smallest key; only unlocked (so unpinned) leaves.
  std::vector<int> evict(int num_blocks) override;

  // Pins count like locks (each pin needs its own unpin). Throws kvc::Error
  // for a handle that names no cached prefix, or an unpin without a pin.
  void pin(ch05::PrefixHandle handle);
  void unpin(ch05::PrefixHandle handle);
  int num_pins() const;

  std::vector<int> expire();
  // Throws kvc::Error for session <= 0.
  std::vector<int> end_session(int session);
  // Throws kvc::Error for the empty tag.
  std::vector<int> clear_tag(std::string_view tag);
  std::vector<int> clear();

  // Chapter 05's invariants, the history's (see NodeHistory), and every pin
  // backed by a lock.
  void check_invariants() const override;
  std::string debug_string() const override;
  std::size_t metadata_bytes() const override;

  // What the cache remembers about the node a handle names (tests and the
  // lesson's examples).
  const NodeHistory& history(ch05::PrefixHandle handle) const;

 protected:
  int walk_root() const override { return current_root_; }
  void on_node_created(int id, int copied_from) override;
  void on_node_used(int id) override;

 private:
  // Points the next walk at the tenant's tree and records who is asking.
  // Returns false when the tenant has no tree and create_tree is false.
  bool begin_request(const RequestTags& tags, bool is_match, bool create_tree);
  int root_of(const std::string& isolation_key) const;  // -1 when it has none
  int tag_id(std::string_view tag);
  bool expired(int id) const;
  EvictionKey key_of(int id) const;
  // Drops every unlocked entry `drop` says yes to, leaves first, in the
  // policy's order.
  std::vector<int> drop_where(const std::function<bool(int id)>& drop);
  ch05::PrefixHandle public_handle(ch05::PrefixHandle handle) const;

  EvictionPolicy policy_;
  std::uint64_t ttl_;
  std::vector<NodeHistory> history_;              // [node id]
  std::map<std::string, int> roots_by_key_;       // isolation key -> its root node
  std::unordered_map<std::string, int> tag_ids_;  // namespace -> id (1, 2, ...)
  std::map<int, int> pins_;                       // node id -> pins held on it
  CacheCounters counters_;
  // The request being served: set by begin_request, read by the hooks.
  mutable int current_root_ = kRoot;
  int current_session_ = kNoOwner;
  int current_tag_ = kNoOwner;
  int current_priority_ = 0;
  bool current_is_match_ = false;
};

// A bounded prefix cache for chapter 05's PrefixCachingBlockManager: the
// radix tree evicting by `policy` (parse_eviction_policy's names), with an
// optional time-to-live. Throws kvc::Error for an unknown policy or
// block_size < 1.
std::unique_ptr<ch05::PrefixCache> make_evicting_cache(std::string_view policy, int block_size,
                                                       std::uint64_t ttl = 0);

}  // namespace kvc::ch06
