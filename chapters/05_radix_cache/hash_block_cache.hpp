// Chapter 05: the hash-chained block cache — vLLM's automatic prefix caching,
// as nano-vllm writes it.
//
// No tree: one table entry per cached whole block, found by a hash of the
// parent block's hash and the block's own tokens. Chaining the parent's hash
// in makes the hash name the whole prefix, so block 3 of "system prompt +
// question A" and block 3 of "other prompt + question A" are different
// entries even when their own tokens are equal. A match hashes the request
// block by block and looks each one up until the first miss.
//
// Collisions: a 64-bit hash almost never collides, but "almost" is not a
// guarantee about KV. Each entry stores its parent entry and its tokens, and a
// lookup compares them, so two prefixes that hash alike are simply two entries
// in one bucket: a collision costs a comparison, never a wrong block.
// (nano-vllm also compares tokens, and treats a mismatch as a miss; vLLM
// relies on the hash's strength, with SHA-256 as an option.) Tests force
// collisions by keeping only a few bits of the hash (hash_bits).
//
// Eviction takes least recently used unlocked entries with no cached child
// (leaves of the implicit tree), so a prefix never goes before its extensions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chapters/05_radix_cache/prefix_cache.hpp"

namespace kvc::ch05 {

struct HashBlockEntry {
  std::uint64_t hash = 0;         // hash(parent's hash, this block's tokens), see chain_hash
  int parent = -1;                // entry of the previous block; -1 for a first block
  int block = -1;                 // the KV block holding these tokens
  int lock_ref = 0;               // locks held on this block's prefix or an extension of it
  int num_children = 0;           // cached entries whose parent this is
  std::uint64_t last_access = 0;  // logical clock of the last match or insert through it
  bool live = false;              // false: a free slot in entries_
};

class HashBlockCache : public PrefixCache {
 public:
  // hash_bits < 64 keeps only the low bits of every hash: tests use it to
  // force collisions. Throws kvc::Error when block_size < 1 or hash_bits is
  // outside [1, 64].
  explicit HashBlockCache(int block_size, int hash_bits = 64);

  std::string_view name() const override { return "hash"; }
  int block_size() const override { return block_size_; }

  PrefixMatch match_prefix(std::span<const int> tokens) override;
  int peek_prefix(std::span<const int> tokens) const override {
    return static_cast<int>(cached_path(tokens).size()) * block_size_;
  }
  std::vector<int> held_blocks() const override;
  InsertResult insert(std::span<const int> tokens, std::span<const int> blocks) override;
  void lock(PrefixHandle handle) override;
  void unlock(PrefixHandle handle) override;
  std::vector<int> evict(int num_blocks) override;
  SizeInfo size_info() const override { return {evictable_blocks_, protected_blocks_}; }
  void check_invariants() const override;
  std::string debug_string() const override;
  std::size_t metadata_bytes() const override;

 private:
  const HashBlockEntry& entry(int id) const { return entries_[static_cast<std::size_t>(id)]; }
  HashBlockEntry& entry(int id) { return entries_[static_cast<std::size_t>(id)]; }
  std::span<const int> tokens_of(int id) const;

  // The hash of `block` after the entry `parent` (-1: at the start).
  std::uint64_t chain_hash(int parent, std::span<const int> block) const;

  // The live entry for `block` after `parent`, looked up under `hash`, or -1.
  int find(int parent, std::uint64_t hash, std::span<const int> block) const;

  // The entries of the longest cached whole-block prefix of `tokens`.
  std::vector<int> cached_path(std::span<const int> tokens) const;

  int add_entry(int parent, std::uint64_t hash, std::span<const int> block, int block_id);
  void remove_leaf(int id);
  void touch(std::span<const int> path);
  int handle_entry(PrefixHandle handle) const;  // -1 for the empty prefix

  int block_size_;
  std::uint64_t hash_mask_;
  std::vector<HashBlockEntry> entries_;  // [entry id]
  std::vector<int> tokens_;              // [entries_.size() * block_size] each entry's tokens
  std::vector<int> free_entries_;        // ids of free slots in entries_
  std::unordered_multimap<std::uint64_t, int> by_hash_;  // hash -> live entry id
  std::uint64_t clock_ = 0;                              // counts matches and inserts
  int evictable_blocks_ = 0;                             // live entries with lock_ref == 0
  int protected_blocks_ = 0;                             // live entries with lock_ref > 0
};

}  // namespace kvc::ch05
