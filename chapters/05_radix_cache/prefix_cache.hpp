// Chapter 05: the prefix cache — the interface both caches implement.
//
// A prefix cache remembers which KV blocks hold which token prefixes, so a new
// request that starts with a cached prefix (a system prompt, few-shot examples,
// the previous turn of a chat) reuses those blocks and prefills only the rest.
// Two implementations stand behind this interface:
//   RadixCache      SGLang's RadixAttention: a radix tree over token runs.
//   HashBlockCache  vLLM / nano-vllm: one hash-table entry per full block,
//                   keyed by a hash of the parent block's hash and its tokens.
//
// The cache only bookkeeps block ids; it never touches K or V and never talks
// to the allocator. Ownership is the caller's contract:
//   - insert() takes over the caller's reference to each block it adds;
//   - evict() hands blocks back, and the caller frees them in its allocator;
//   - a block is "protected" while a lock() holds it, "evictable" otherwise.
// Only full blocks are cached: a partly filled last block is never shared, so
// every matched or cached length is a multiple of block_size.
//
// Time is a logical clock that counts matches and inserts, so "least recently
// used" is deterministic and tests can predict every eviction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvc::ch05 {

// Names one cached prefix, as returned by match_prefix() or insert(), for
// lock()/unlock(). id 0 is the empty prefix (locking it is a no-op).
// A locked handle stays valid until it is unlocked; an unlocked one only until
// the next evict() (which may remove or shorten its prefix).
struct PrefixHandle {
  std::int64_t id = 0;  // radix: tree node id; hash: block entry index + 1
  bool empty() const { return id == 0; }
  friend bool operator==(PrefixHandle, PrefixHandle) = default;
};

struct PrefixMatch {
  std::vector<int> blocks;  // the cached blocks of the longest cached prefix, in order
  int matched_tokens = 0;   // blocks.size() * block_size
  PrefixHandle handle;      // exactly that prefix
};

struct InsertResult {
  int cached_tokens = 0;              // full-block tokens that were cached before this call
  std::vector<int> cached_blocks;     // the cache's blocks for them (cached_tokens / block_size)
  std::vector<int> duplicate_blocks;  // the caller's blocks for that part that differ from
                                      // cached_blocks: the cache did not take them, the
                                      // caller frees them
  PrefixHandle handle;                // the whole full-block prefix of the tokens, now cached
};

// Cached blocks split by state. Report both: a cache full of evictable blocks
// is memory that is free for the asking, not "KV usage 100%".
struct SizeInfo {
  int evictable_blocks = 0;  // unlocked: evict() may take them
  int protected_blocks = 0;  // held by at least one lock
  int total_blocks() const { return evictable_blocks + protected_blocks; }
};

class PrefixCache {
 public:
  virtual ~PrefixCache() = default;

  virtual std::string_view name() const = 0;  // "radix" or "hash"
  virtual int block_size() const = 0;

  // The longest cached prefix of `tokens` made of full blocks, and its blocks.
  // Counts as a use of that prefix (last access = now). An engine passes the
  // prompt without its last token, so at least one token is prefilled and
  // produces the logits of the first sampled token.
  virtual PrefixMatch match_prefix(std::span<const int> tokens) = 0;

  // The tokens match_prefix would match, changing nothing (no split, no use):
  // what a scheduler asks of every waiting request to order them.
  virtual int peek_prefix(std::span<const int> tokens) const = 0;

  // Caches the full blocks of `tokens`; blocks[i] holds tokens
  // [i*block_size, (i+1)*block_size). `blocks` covers the full blocks and may
  // also name the caller's partial last block, which is ignored.
  // The part already cached keeps the cache's blocks (see InsertResult); the
  // rest is added with the caller's blocks. Counts as a use of the prefix.
  // Throws kvc::Error (changing nothing) for a wrong number of blocks or a
  // negative block id.
  virtual InsertResult insert(std::span<const int> tokens, std::span<const int> blocks) = 0;

  // lock: the prefix and every prefix of it are in use and may not be
  // evicted. Locks count: each lock() needs its own unlock(). Throws
  // kvc::Error for a handle that names no cached prefix, or an unlock
  // without a lock.
  virtual void lock(PrefixHandle handle) = 0;
  virtual void unlock(PrefixHandle handle) = 0;

  // Frees up to num_blocks unlocked blocks, least recently used first, always
  // from the end of a cached prefix (a block goes only after every cached
  // block that extends it), and returns their ids for the caller to free.
  // Fewer come back only when fewer are evictable.
  virtual std::vector<int> evict(int num_blocks) = 0;

  virtual SizeInfo size_info() const = 0;

  // Every block the cache holds, in no particular order (for the pool's invariants).
  virtual std::vector<int> held_blocks() const = 0;

  // Throws kvc::Error naming the first broken invariant. Tests call it after
  // every operation.
  virtual void check_invariants() const = 0;

  // A human-readable dump, for debugging and the lesson.
  virtual std::string debug_string() const = 0;

  // An estimate of the bookkeeping memory (nodes or entries, token copies,
  // hash-table buckets), not counting the KV blocks themselves.
  virtual std::size_t metadata_bytes() const = 0;
};

// "radix" or "hash"; throws kvc::Error for another name or block_size < 1.
std::unique_ptr<PrefixCache> make_prefix_cache(std::string_view kind, int block_size);

// Checks insert()'s arguments (shared by both caches): the number of blocks
// covers the full blocks of `tokens` (plus at most one partial block) and no
// block id is negative.
void check_insert_arguments(std::span<const int> tokens, std::span<const int> blocks,
                            int block_size);

// The duplicates of insert(): the caller's blocks[i], i < cached_blocks.size(),
// that differ from cached_blocks[i].
std::vector<int> differing_blocks(std::span<const int> caller_blocks,
                                  std::span<const int> cached_blocks);

}  // namespace kvc::ch05
