// Chapter 05: the radix prefix cache — SGLang's RadixAttention tree.
//
// Every cached prefix is a path from the root. A node adds a run of whole
// blocks to its parent's prefix and holds their KV block ids; a path that
// forks gets a node per branch, so a shared system prompt is stored once no
// matter how many requests continue it:
//
//   root ── [system prompt: 8 blocks] ─┬─ [question A: 2 blocks]
//                                      └─ [question B: 1 block]
//
// A node is split (at a block boundary) whenever a match or insert ends or
// diverges inside its run, so every prefix a caller holds ends at a node.
// lock() counts along the path to the root (lock_ref), and only unlocked
// leaves are evicted, least recently used first: a prefix never goes while a
// cached extension of it remains.
//
// Chapter 06 derives its eviction policies and invalidation from this class
// through the protected part below: the order leaves are evicted in, a hook on
// every node created and used, and more than one root (one per tenant).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chapters/05_radix_cache/prefix_cache.hpp"

namespace kvc::ch05 {

struct RadixNode {
  std::vector<int> tokens;  // [num_blocks * block_size] the run this node adds to its parent's
  std::vector<int> blocks;  // [num_blocks] the KV block holding each block of the run
  int parent = -1;          // node id; -1 for the root and for free slots
  // child id by hash of the child's whole first block (not its first token:
  // see find_child). Two children may collide on the hash, so a lookup
  // compares the child's real tokens.
  std::unordered_multimap<std::uint64_t, int> children;
  int lock_ref = 0;               // locks held on this node or on a node below it
  std::uint64_t last_access = 0;  // logical clock of the last match or insert through it
  bool live = false;              // false: a free slot in nodes_
};

class RadixCache : public PrefixCache {
 public:
  // Throws kvc::Error when block_size < 1.
  explicit RadixCache(int block_size);

  std::string_view name() const override { return "radix"; }
  int block_size() const override { return block_size_; }

  // EXERCISE (exercises/05_radix_cache/radix_ops.cpp): walk down from the
  // root block by block; split the node where the match ends inside it.
  PrefixMatch match_prefix(std::span<const int> tokens) override;

  // EXERCISE: the same walk, splitting where the tokens diverge inside a
  // node, then one new leaf for the uncached rest.
  InsertResult insert(std::span<const int> tokens, std::span<const int> blocks) override;

  int peek_prefix(std::span<const int> tokens) const override;
  std::vector<int> held_blocks() const override;
  void lock(PrefixHandle handle) override;
  void unlock(PrefixHandle handle) override;
  std::vector<int> evict(int num_blocks) override;
  SizeInfo size_info() const override { return {evictable_blocks_, protected_blocks_}; }
  void check_invariants() const override;
  std::string debug_string() const override;
  std::size_t metadata_bytes() const override;

  // The tree as Graphviz DOT: one box per node with its first tokens, its
  // number of blocks and its lock count (`dot -Tpng tree.dot -o tree.png`).
  std::string to_dot() const;

  int num_nodes() const;  // live nodes, the roots included

 protected:
  static constexpr int kRoot = 0;

  const RadixNode& node(int id) const { return nodes_[static_cast<std::size_t>(id)]; }
  RadixNode& node(int id) { return nodes_[static_cast<std::size_t>(id)]; }
  int num_blocks(int id) const { return static_cast<int>(node(id).blocks.size()); }
  int num_slots() const { return static_cast<int>(nodes_.size()); }
  std::uint64_t clock() const { return clock_; }
  // A root is the empty prefix of a tree: kRoot, or one made by add_root().
  bool is_root(int id) const { return node(id).parent == -1; }

  // The root match_prefix, insert and peek_prefix start from: kRoot here;
  // chapter 06 gives every isolation key its own.
  virtual int walk_root() const { return kRoot; }
  // A new, empty root: a second tree in the same cache, sharing its clock.
  int add_root();

  // Called when node `id` is made: by insert's new leaf (copied_from -1) or
  // by a split, whose upper part `id` copies node `copied_from`'s history.
  virtual void on_node_created(int /*id*/, int /*copied_from*/) {}
  // Called for every node a match or insert passes through (touch()).
  virtual void on_node_used(int /*id*/) {}

  // Smallest first; the node id breaks ties. Plain LRU is {last_access, 0, 0}.
  using EvictionKey = std::array<std::int64_t, 3>;
  // A node's key, or nullopt when it may not be evicted (beyond being locked).
  using EvictionOrder = std::function<std::optional<EvictionKey>(int id)>;
  // evict()'s loop with any order: up to num_blocks blocks from unlocked leaves
  // with a key, smallest key first; a leaf's parent is considered once the
  // leaf is gone.
  std::vector<int> evict_leaves(int num_blocks, const EvictionOrder& order);

 private:
  std::span<const int> first_block(int id) const;

  // The child of `parent` whose run starts with `block` (block_size tokens),
  // or -1.
  int find_child(int parent, std::span<const int> block) const;

  // How many leading whole blocks of node `id`'s run equal the first whole
  // blocks of `tokens`.
  int matching_blocks(int id, std::span<const int> tokens) const;

  // Cuts node `id` after its first keep_blocks blocks (0 < keep_blocks <
  // num_blocks): a new node takes the first part and becomes `id`'s parent;
  // `id` keeps the rest, its children and its handles. Returns the new node.
  int split(int id, int keep_blocks);

  // A new unlocked leaf under `parent` holding `tokens` (whole blocks) in
  // `blocks`. Returns its id.
  int add_leaf(int parent, std::span<const int> tokens, std::span<const int> blocks);

  // Advances the clock and marks node `id` and every node above it as used now.
  void touch(int id);

  int new_node();
  // Unlinks an emptied leaf from its parent, found under `key` (the hash of
  // the first block the leaf had), and frees its slot.
  void remove_leaf(int id, std::uint64_t key);
  void check_handle(PrefixHandle handle) const;

  int block_size_;
  std::vector<RadixNode> nodes_;      // [node id]; nodes_[0] is the root (the empty prefix)
  std::vector<int> free_nodes_;       // ids of free slots in nodes_
  std::vector<int> roots_ = {kRoot};  // every root; kRoot first
  std::uint64_t clock_ = 0;           // counts matches and inserts
  int evictable_blocks_ = 0;          // blocks in nodes with lock_ref == 0
  int protected_blocks_ = 0;          // blocks in nodes with lock_ref > 0
};

}  // namespace kvc::ch05
