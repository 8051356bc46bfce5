// Chapter 05: the radix tree's bookkeeping. match_prefix and insert, the two
// walks a learner writes, live in exercises/05_radix_cache/radix_ops.cpp.
#include "chapters/05_radix_cache/radix_cache.hpp"

#include <algorithm>
#include <functional>
#include <queue>
#include <sstream>
#include <utility>

#include "chapters/05_radix_cache/token_hash.hpp"
#include "common/check.hpp"

namespace kvc::ch05 {
namespace {

std::uint64_t child_key(std::span<const int> first_block) {
  return hash_tokens(0, first_block);
}

// "[5 9 2 7 …]": the first few tokens of a run.
std::string token_preview(const std::vector<int>& tokens, std::size_t max_tokens) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < tokens.size() && i < max_tokens; ++i) {
    out << (i ? " " : "") << tokens[i];
  }
  if (tokens.size() > max_tokens) out << " …";
  out << ']';
  return out.str();
}

std::vector<int> sorted_children(const RadixNode& n) {
  std::vector<int> ids;
  for (const auto& [key, child] : n.children) ids.push_back(child);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

RadixCache::RadixCache(int block_size) : block_size_(block_size) {
  KVC_CHECK(block_size >= 1, "radix cache: block size must be at least 1, got ", block_size);
  nodes_.emplace_back();
  nodes_[kRoot].live = true;
}

std::span<const int> RadixCache::first_block(int id) const {
  return std::span<const int>(node(id).tokens).first(static_cast<std::size_t>(block_size_));
}

// Children are keyed by their whole first block, not their first token. With
// block_size 1 the two are the same. With block_size > 1 two children may
// start with the same token and differ later in their first block (prompts
// "A B | C D" and "A X | C D" with block_size 2): the split can only happen at
// a block boundary, before "A", so both children begin with token A. Keyed by
// A alone, the second insert would overwrite the first child (leaking its
// blocks) or the walk would follow the wrong one and miss a cached prefix.
int RadixCache::find_child(int parent, std::span<const int> block) const {
  const auto [first, last] = node(parent).children.equal_range(child_key(block));
  for (auto it = first; it != last; ++it) {
    if (std::ranges::equal(first_block(it->second), block)) return it->second;
  }
  return -1;
}

int RadixCache::matching_blocks(int id, std::span<const int> tokens) const {
  const std::vector<int>& run = node(id).tokens;
  const std::size_t b = static_cast<std::size_t>(block_size_);
  int same = 0;
  for (std::size_t start = 0; start + b <= run.size() && start + b <= tokens.size(); start += b) {
    if (!std::equal(run.begin() + static_cast<std::ptrdiff_t>(start),
                    run.begin() + static_cast<std::ptrdiff_t>(start + b),
                    tokens.begin() + static_cast<std::ptrdiff_t>(start))) {
      break;
    }
    ++same;
  }
  return same;
}

int RadixCache::peek_prefix(std::span<const int> tokens) const {
  const std::size_t b = static_cast<std::size_t>(block_size_);
  const std::size_t full = tokens.size() / b * b;
  int at = walk_root();
  std::size_t pos = 0;
  while (pos < full) {
    const int child = find_child(at, tokens.subspan(pos, b));
    if (child < 0) break;
    const int same = matching_blocks(child, tokens.subspan(pos, full - pos));
    pos += static_cast<std::size_t>(same) * b;
    if (same < num_blocks(child)) break;
    at = child;
  }
  return static_cast<int>(pos);
}

std::vector<int> RadixCache::held_blocks() const {
  std::vector<int> blocks;
  for (const RadixNode& n : nodes_) {
    if (n.live) blocks.insert(blocks.end(), n.blocks.begin(), n.blocks.end());
  }
  return blocks;
}

int RadixCache::new_node() {
  if (!free_nodes_.empty()) {
    const int id = free_nodes_.back();
    free_nodes_.pop_back();
    node(id).live = true;
    return id;
  }
  nodes_.emplace_back();
  nodes_.back().live = true;
  return static_cast<int>(nodes_.size()) - 1;
}

int RadixCache::add_root() {
  const int id = new_node();
  roots_.push_back(id);
  return id;
}

int RadixCache::split(int id, int keep_blocks) {
  KVC_CHECK(keep_blocks > 0 && keep_blocks < num_blocks(id), "radix cache: split of node ", id,
            " after ", keep_blocks, " of its ", num_blocks(id), " blocks");
  const std::uint64_t key = child_key(first_block(id));
  const int upper_id = new_node();  // may grow nodes_: take references after it
  RadixNode& lower = node(id);
  RadixNode& upper = node(upper_id);
  const auto cut = static_cast<std::ptrdiff_t>(keep_blocks) * block_size_;
  upper.tokens.assign(lower.tokens.begin(), lower.tokens.begin() + cut);
  upper.blocks.assign(lower.blocks.begin(), lower.blocks.begin() + keep_blocks);
  lower.tokens.erase(lower.tokens.begin(), lower.tokens.begin() + cut);
  lower.blocks.erase(lower.blocks.begin(), lower.blocks.begin() + keep_blocks);
  // Every lock through `id` also passes through the new upper part.
  upper.lock_ref = lower.lock_ref;
  upper.last_access = lower.last_access;
  upper.parent = lower.parent;
  lower.parent = upper_id;
  // The parent's key for the run is its first block, which the upper part now
  // starts with: the same key, a new child.
  const auto [first, last] = node(upper.parent).children.equal_range(key);
  for (auto it = first; it != last; ++it) {
    if (it->second == id) it->second = upper_id;
  }
  upper.children.emplace(child_key(first_block(id)), id);
  on_node_created(upper_id, id);
  return upper_id;
}

int RadixCache::add_leaf(int parent, std::span<const int> tokens, std::span<const int> blocks) {
  const int id = new_node();
  RadixNode& leaf = node(id);
  leaf.tokens.assign(tokens.begin(), tokens.end());
  leaf.blocks.assign(blocks.begin(), blocks.end());
  leaf.parent = parent;
  node(parent).children.emplace(child_key(first_block(id)), id);
  evictable_blocks_ += num_blocks(id);
  on_node_created(id, -1);
  return id;
}

void RadixCache::touch(int id) {
  ++clock_;
  for (int at = id; at != -1; at = node(at).parent) {
    node(at).last_access = clock_;
    on_node_used(at);
  }
}

void RadixCache::check_handle(PrefixHandle handle) const {
  KVC_CHECK(handle.id >= 0 && handle.id < static_cast<std::int64_t>(nodes_.size()) &&
                node(static_cast<int>(handle.id)).live,
            "radix cache: handle ", handle.id, " names no cached prefix");
}

void RadixCache::lock(PrefixHandle handle) {
  check_handle(handle);
  for (int at = static_cast<int>(handle.id); !is_root(at); at = node(at).parent) {
    if (node(at).lock_ref++ == 0) {
      evictable_blocks_ -= num_blocks(at);
      protected_blocks_ += num_blocks(at);
    }
  }
}

void RadixCache::unlock(PrefixHandle handle) {
  check_handle(handle);
  // The handle's own count bounds every count above it, so this one check
  // keeps every count on the path non-negative.
  KVC_CHECK(is_root(static_cast<int>(handle.id)) || node(static_cast<int>(handle.id)).lock_ref > 0,
            "radix cache: unlock of handle ", handle.id, ", which is not locked");
  for (int at = static_cast<int>(handle.id); !is_root(at); at = node(at).parent) {
    if (--node(at).lock_ref == 0) {
      protected_blocks_ -= num_blocks(at);
      evictable_blocks_ += num_blocks(at);
    }
  }
}

void RadixCache::remove_leaf(int id, std::uint64_t key) {
  RadixNode& leaf = node(id);
  RadixNode& parent = node(leaf.parent);
  const auto [first, last] = parent.children.equal_range(key);
  for (auto it = first; it != last; ++it) {
    if (it->second == id) {
      parent.children.erase(it);
      break;
    }
  }
  leaf = RadixNode{};
  free_nodes_.push_back(id);
}

std::vector<int> RadixCache::evict(int num_blocks_wanted) {
  return evict_leaves(num_blocks_wanted, [this](int id) {
    return EvictionKey{static_cast<std::int64_t>(node(id).last_access), 0, 0};
  });
}

// The simplest correct order: every unlocked leaf goes into a min-heap by its
// key (last access, for LRU); a leaf is trimmed from its end, block by block,
// and when it is gone its parent may become an unlocked leaf and joins the heap.
std::vector<int> RadixCache::evict_leaves(int num_blocks_wanted, const EvictionOrder& order) {
  KVC_CHECK(num_blocks_wanted >= 0, "radix cache: evict of ", num_blocks_wanted, " blocks");
  using Candidate = std::pair<EvictionKey, int>;  // (key, node id)
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> leaves;
  const auto push_if_evictable_leaf = [&](int id) {
    if (is_root(id) || !node(id).children.empty() || node(id).lock_ref != 0) return;
    if (const std::optional<EvictionKey> key = order(id)) leaves.emplace(*key, id);
  };
  for (int id = 0; id < static_cast<int>(nodes_.size()); ++id) {
    if (node(id).live) push_if_evictable_leaf(id);
  }
  std::vector<int> freed;
  while (static_cast<int>(freed.size()) < num_blocks_wanted && !leaves.empty()) {
    const int id = leaves.top().second;
    leaves.pop();
    RadixNode& leaf = node(id);
    const std::uint64_t key = child_key(first_block(id));
    const int take = std::min(num_blocks_wanted - static_cast<int>(freed.size()), num_blocks(id));
    for (int i = 0; i < take; ++i) {
      freed.push_back(leaf.blocks.back());
      leaf.blocks.pop_back();
    }
    leaf.tokens.resize(leaf.blocks.size() * static_cast<std::size_t>(block_size_));
    evictable_blocks_ -= take;
    if (leaf.blocks.empty()) {  // else a partial trim: enough blocks are freed
      const int parent = leaf.parent;
      remove_leaf(id, key);
      push_if_evictable_leaf(parent);
    }
  }
  return freed;
}

int RadixCache::num_nodes() const {
  return static_cast<int>(nodes_.size() - free_nodes_.size());
}

void RadixCache::check_invariants() const {
  const auto broken = [](int id, const auto&... what) {
    KVC_FAIL("radix cache invariant broken at node ", id, ": ", what...);
  };
  for (const int id : roots_) {
    const RadixNode& root = node(id);
    if (!root.live || root.parent != -1 || !root.blocks.empty() || !root.tokens.empty() ||
        root.lock_ref != 0) {
      broken(id, "a root must be live, parentless, empty and unlocked");
    }
  }
  const std::size_t b = static_cast<std::size_t>(block_size_);
  std::unordered_map<int, int> owner_of_block;  // block id -> node id
  int evictable = 0, protected_ = 0, reachable = 0;
  std::vector<int> stack = roots_;
  while (!stack.empty()) {
    const int id = stack.back();
    stack.pop_back();
    ++reachable;
    const RadixNode& n = node(id);
    if (!n.live) broken(id, "a reachable node is marked free");
    if (n.last_access > clock_) broken(id, "last access is later than the clock");
    int children_locks = 0;
    for (const auto& [key, child] : n.children) {
      if (child <= kRoot || child >= static_cast<int>(nodes_.size())) {
        broken(id, "child id ", child, " out of range");
      }
      const RadixNode& c = node(child);
      if (c.parent != id) broken(child, "its parent is ", c.parent, ", not ", id);
      if (c.blocks.empty()) broken(child, "a node below the root holds no block");
      if (c.tokens.size() != c.blocks.size() * b) {
        broken(child, c.tokens.size(), " tokens for ", c.blocks.size(), " blocks");
      }
      if (key != child_key(first_block(child))) broken(child, "keyed by the wrong first block");
      if (find_child(id, first_block(child)) != child) {
        broken(child, "a sibling starts with the same block");
      }
      if (c.last_access > n.last_access) broken(child, "used more recently than its parent");
      children_locks += c.lock_ref;
      stack.push_back(child);
    }
    if (n.lock_ref < 0) broken(id, "negative lock count");
    if (!is_root(id) && n.lock_ref < children_locks) {
      broken(id, "lock count ", n.lock_ref, " below its children's ", children_locks);
    }
    for (const int block : n.blocks) {
      if (block < 0) broken(id, "negative block id ", block);
      const auto [it, fresh] = owner_of_block.emplace(block, id);
      if (!fresh) broken(id, "block ", block, " is also held by node ", it->second);
    }
    (n.lock_ref > 0 ? protected_ : evictable) += static_cast<int>(n.blocks.size());
  }
  if (evictable != evictable_blocks_ || protected_ != protected_blocks_) {
    broken(kRoot, "sizes say evictable ", evictable_blocks_, " protected ", protected_blocks_,
           ", the tree holds ", evictable, " and ", protected_);
  }
  for (const int id : free_nodes_) {
    if (node(id).live) broken(id, "a free slot is marked live");
  }
  if (static_cast<std::size_t>(reachable) + free_nodes_.size() != nodes_.size()) {
    broken(kRoot, nodes_.size(), " slots, ", reachable, " reachable and ", free_nodes_.size(),
           " free: a node leaked");
  }
}

std::string RadixCache::debug_string() const {
  std::ostringstream out;
  out << "radix block_size " << block_size_ << ": " << size_info().total_blocks()
      << " blocks (evictable " << evictable_blocks_ << ", protected " << protected_blocks_ << "), "
      << num_nodes() << " nodes, clock " << clock_ << '\n';
  std::vector<std::pair<int, int>> stack;  // (node, depth)
  for (auto it = roots_.rbegin(); it != roots_.rend(); ++it) stack.emplace_back(*it, 0);
  while (!stack.empty()) {
    const auto [id, depth] = stack.back();
    stack.pop_back();
    const RadixNode& n = node(id);
    out << std::string(static_cast<std::size_t>(2 * depth), ' ') << '#' << id << ' '
        << token_preview(n.tokens, n.tokens.size()) << " blocks "
        << token_preview(n.blocks, n.blocks.size()) << " lock " << n.lock_ref << " t "
        << n.last_access << '\n';
    const std::vector<int> children = sorted_children(n);
    for (auto it = children.rbegin(); it != children.rend(); ++it)
      stack.emplace_back(*it, depth + 1);
  }
  return out.str();
}

std::string RadixCache::to_dot() const {
  std::ostringstream out;
  out << "digraph radix_cache {\n  node [shape=box, fontname=\"monospace\"];\n";
  for (int id = 0; id < static_cast<int>(nodes_.size()); ++id) {
    const RadixNode& n = node(id);
    if (!n.live) continue;
    out << "  n" << id << " [label=\"";
    if (is_root(id)) {
      out << "root";
    } else {
      out << token_preview(n.tokens, 4) << "\\n"
          << n.blocks.size() << " blocks, lock " << n.lock_ref;
    }
    out << "\"" << (n.lock_ref > 0 ? ", style=filled, fillcolor=lightgrey" : "") << "];\n";
    for (const int child : sorted_children(n)) out << "  n" << id << " -> n" << child << ";\n";
  }
  out << "}\n";
  return out.str();
}

// Per node: the node itself, its token and block vectors, its child table
// (libstdc++: a bucket array of pointers plus one heap node per child: next
// pointer and the key/value pair). Allocator headers are not counted.
std::size_t RadixCache::metadata_bytes() const {
  using ChildEntry = std::pair<const std::uint64_t, int>;
  std::size_t bytes = nodes_.capacity() * sizeof(RadixNode) + free_nodes_.capacity() * sizeof(int);
  for (const RadixNode& n : nodes_) {
    bytes += n.tokens.capacity() * sizeof(int) + n.blocks.capacity() * sizeof(int);
    if (!n.children.empty()) {
      bytes += n.children.bucket_count() * sizeof(void*) +
               n.children.size() * (sizeof(void*) + sizeof(ChildEntry));
    }
  }
  return bytes;
}

}  // namespace kvc::ch05
