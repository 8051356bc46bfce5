// Chapter 06: eviction policies — which unlocked leaf of the prefix cache goes
// first when the pool needs blocks back.
//
// Every policy is a key computed from what the cache remembers about a node
// (its NodeHistory and last access); the smallest key goes first. The cache
// only ever evicts unlocked leaves, so whatever the policy, a prefix never
// goes while a cached extension of it remains, and a locked (or pinned) block
// never goes at all.
//
//   lru       least recently used                   {last access}
//   lfu       fewest hits, then least recently used {hits, last access}
//   fifo      oldest insertion, whatever its use    {created, last access}
//   priority  lowest priority, LRU within a level   {priority, last access}
//   slru      segmented LRU: a node hit fewer than kSlruProtectedHits times
//             is probationary and goes before any protected one; LRU within
//             each segment                          {protected?, last access}
//
// With a time-to-live, entries unused for longer than it go before all others
// (the key's first field), under every policy.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvc::ch06 {

enum class EvictionPolicy { kLru, kLfu, kFifo, kPriority, kSlru };

inline constexpr std::array<EvictionPolicy, 5> kEvictionPolicies = {
    EvictionPolicy::kLru, EvictionPolicy::kLfu, EvictionPolicy::kFifo, EvictionPolicy::kPriority,
    EvictionPolicy::kSlru};

// "lru", "lfu", "fifo", "priority" or "slru"; throws kvc::Error naming the
// choices for any other name.
EvictionPolicy parse_eviction_policy(std::string_view name);
std::string_view eviction_policy_name(EvictionPolicy policy);
std::string eviction_policy_names();  // "lru, lfu, fifo, priority, slru"

// SLRU: the number of hits that moves a node to the protected segment.
inline constexpr std::int64_t kSlruProtectedHits = 2;

// Who used a node: one session (or namespace) id, nobody in particular
// (kNoOwner: only anonymous requests), or more than one (kShared).
inline constexpr int kNoOwner = 0;
inline constexpr int kShared = -1;

// What the cache remembers about a node, beside chapter 05's last_access.
// Every use of a node is a use of its parent too, so along a path: hits and
// priority never grow downwards, created never shrinks, and a node private to
// one session (or namespace) has only descendants private to it.
struct NodeHistory {
  std::uint64_t created = 0;  // clock of the insert that cached its blocks
  std::int64_t hits = 0;      // match_prefix calls that matched through it
  int priority = 0;           // the highest priority of a request that used it
  int session = kNoOwner;     // the session that used it, kNoOwner or kShared
  int tag = kNoOwner;         // the namespace (interned) that used it, likewise
};

// The owner after `user` uses a node owned by `owner`: a second user makes it
// shared.
inline int owner_after_use(int owner, int user) {
  return owner == user ? owner : kShared;
}

// Smallest first (the radix cache breaks ties by node id).
using EvictionKey = std::array<std::int64_t, 3>;
EvictionKey eviction_key(EvictionPolicy policy, const NodeHistory& history,
                         std::uint64_t last_access, bool expired);

}  // namespace kvc::ch06
