// Chapter 05: the hash-chained block cache.
#include "chapters/05_radix_cache/hash_block_cache.hpp"

#include <algorithm>
#include <functional>
#include <iomanip>
#include <queue>
#include <sstream>
#include <unordered_set>
#include <utility>

#include "chapters/05_radix_cache/token_hash.hpp"
#include "common/check.hpp"

namespace kvc::ch05 {
namespace {

constexpr std::uint64_t kFirstBlockSeed = 0x6b76632d63683035ULL;  // the "parent hash" of block 0

}  // namespace

HashBlockCache::HashBlockCache(int block_size, int hash_bits)
    : block_size_(block_size),
      hash_mask_(hash_bits >= 64 ? ~0ULL : (1ULL << std::max(hash_bits, 0)) - 1) {
  KVC_CHECK(block_size >= 1, "hash block cache: block size must be at least 1, got ", block_size);
  KVC_CHECK(hash_bits >= 1 && hash_bits <= 64,
            "hash block cache: hash bits must be in [1, 64], got ", hash_bits);
}

std::span<const int> HashBlockCache::tokens_of(int id) const {
  const std::size_t b = static_cast<std::size_t>(block_size_);
  return std::span<const int>(tokens_).subspan(static_cast<std::size_t>(id) * b, b);
}

std::uint64_t HashBlockCache::chain_hash(int parent, std::span<const int> block) const {
  const std::uint64_t seed = parent < 0 ? kFirstBlockSeed : entry(parent).hash;
  return hash_tokens(seed, block) & hash_mask_;
}

int HashBlockCache::find(int parent, std::uint64_t hash, std::span<const int> block) const {
  const auto [first, last] = by_hash_.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    if (entry(it->second).parent == parent && std::ranges::equal(tokens_of(it->second), block)) {
      return it->second;
    }
  }
  return -1;
}

std::vector<int> HashBlockCache::cached_path(std::span<const int> tokens) const {
  const std::size_t b = static_cast<std::size_t>(block_size_);
  std::vector<int> path;
  int parent = -1;
  for (std::size_t pos = 0; pos + b <= tokens.size(); pos += b) {
    const std::span<const int> block = tokens.subspan(pos, b);
    const int id = find(parent, chain_hash(parent, block), block);
    if (id < 0) break;
    path.push_back(id);
    parent = id;
  }
  return path;
}

void HashBlockCache::touch(std::span<const int> path) {
  ++clock_;
  for (const int id : path) entry(id).last_access = clock_;
}

PrefixMatch HashBlockCache::match_prefix(std::span<const int> tokens) {
  const std::vector<int> path = cached_path(tokens);
  touch(path);
  PrefixMatch match;
  for (const int id : path) match.blocks.push_back(entry(id).block);
  match.matched_tokens = static_cast<int>(path.size()) * block_size_;
  match.handle = PrefixHandle{path.empty() ? 0 : path.back() + 1};
  return match;
}

int HashBlockCache::add_entry(int parent, std::uint64_t hash, std::span<const int> block,
                              int block_id) {
  int id = -1;
  if (!free_entries_.empty()) {
    id = free_entries_.back();
    free_entries_.pop_back();
    std::ranges::copy(block, tokens_.begin() + static_cast<std::ptrdiff_t>(id) * block_size_);
  } else {
    id = static_cast<int>(entries_.size());
    entries_.emplace_back();
    tokens_.insert(tokens_.end(), block.begin(), block.end());
  }
  entry(id) = HashBlockEntry{hash, parent, block_id, 0, 0, 0, true};
  if (parent >= 0) ++entry(parent).num_children;
  by_hash_.emplace(hash, id);
  ++evictable_blocks_;
  return id;
}

InsertResult HashBlockCache::insert(std::span<const int> tokens, std::span<const int> blocks) {
  check_insert_arguments(tokens, blocks, block_size_);
  const std::size_t b = static_cast<std::size_t>(block_size_);
  std::vector<int> path = cached_path(tokens);
  InsertResult result;
  for (const int id : path) result.cached_blocks.push_back(entry(id).block);
  for (std::size_t pos = path.size() * b; pos + b <= tokens.size(); pos += b) {
    const int parent = path.empty() ? -1 : path.back();
    const std::span<const int> block = tokens.subspan(pos, b);
    path.push_back(add_entry(parent, chain_hash(parent, block), block, blocks[pos / b]));
  }
  touch(path);
  result.cached_tokens = static_cast<int>(result.cached_blocks.size() * b);
  result.duplicate_blocks = differing_blocks(blocks, result.cached_blocks);
  result.handle = PrefixHandle{path.empty() ? 0 : path.back() + 1};
  return result;
}

int HashBlockCache::handle_entry(PrefixHandle handle) const {
  KVC_CHECK(handle.id >= 0 && handle.id <= static_cast<std::int64_t>(entries_.size()) &&
                (handle.empty() || entry(static_cast<int>(handle.id - 1)).live),
            "hash block cache: handle ", handle.id, " names no cached prefix");
  return static_cast<int>(handle.id) - 1;
}

std::vector<int> HashBlockCache::held_blocks() const {
  std::vector<int> blocks;
  for (const HashBlockEntry& e : entries_) {
    if (e.live) blocks.push_back(e.block);
  }
  return blocks;
}

void HashBlockCache::lock(PrefixHandle handle) {
  for (int id = handle_entry(handle); id >= 0; id = entry(id).parent) {
    if (entry(id).lock_ref++ == 0) {
      --evictable_blocks_;
      ++protected_blocks_;
    }
  }
}

void HashBlockCache::unlock(PrefixHandle handle) {
  const int last = handle_entry(handle);
  // The last block's count bounds every count before it.
  KVC_CHECK(last < 0 || entry(last).lock_ref > 0, "hash block cache: unlock of handle ", handle.id,
            ", which is not locked");
  for (int id = last; id >= 0; id = entry(id).parent) {
    if (--entry(id).lock_ref == 0) {
      --protected_blocks_;
      ++evictable_blocks_;
    }
  }
}

void HashBlockCache::remove_leaf(int id) {
  const auto [first, last] = by_hash_.equal_range(entry(id).hash);
  for (auto it = first; it != last; ++it) {
    if (it->second == id) {
      by_hash_.erase(it);
      break;
    }
  }
  if (entry(id).parent >= 0) --entry(entry(id).parent).num_children;
  entry(id) = HashBlockEntry{};
  free_entries_.push_back(id);
  --evictable_blocks_;
}

// The simplest correct order, as in the radix tree: a min-heap by last access
// over the unlocked leaves; a parent left without children joins it.
std::vector<int> HashBlockCache::evict(int num_blocks) {
  KVC_CHECK(num_blocks >= 0, "hash block cache: evict of ", num_blocks, " blocks");
  using Candidate = std::pair<std::uint64_t, int>;  // (last access, entry id)
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> leaves;
  const auto is_evictable_leaf = [this](int id) {
    return entry(id).live && entry(id).num_children == 0 && entry(id).lock_ref == 0;
  };
  for (int id = 0; id < static_cast<int>(entries_.size()); ++id) {
    if (is_evictable_leaf(id)) leaves.emplace(entry(id).last_access, id);
  }
  std::vector<int> freed;
  while (static_cast<int>(freed.size()) < num_blocks && !leaves.empty()) {
    const int id = leaves.top().second;
    leaves.pop();
    const int parent = entry(id).parent;
    freed.push_back(entry(id).block);
    remove_leaf(id);
    if (parent >= 0 && is_evictable_leaf(parent)) leaves.emplace(entry(parent).last_access, parent);
  }
  return freed;
}

void HashBlockCache::check_invariants() const {
  const auto broken = [](int id, const auto&... what) {
    KVC_FAIL("hash block cache invariant broken at entry ", id, ": ", what...);
  };
  std::vector<int> children(entries_.size(), 0), child_locks(entries_.size(), 0);
  std::unordered_set<int> blocks;
  int live = 0, evictable = 0, protected_ = 0;
  for (int id = 0; id < static_cast<int>(entries_.size()); ++id) {
    const HashBlockEntry& e = entry(id);
    if (!e.live) continue;
    ++live;
    if (e.parent >= 0) {
      if (e.parent >= static_cast<int>(entries_.size()) || !entry(e.parent).live) {
        broken(id, "its parent ", e.parent, " is not cached");
      }
      ++children[static_cast<std::size_t>(e.parent)];
      child_locks[static_cast<std::size_t>(e.parent)] += e.lock_ref;
      if (e.last_access > entry(e.parent).last_access) broken(id, "used after its parent");
    }
    if (e.hash != chain_hash(e.parent, tokens_of(id))) broken(id, "stale hash");
    if (find(e.parent, e.hash, tokens_of(id)) != id) {
      broken(id, "not found under its hash, or cached twice");
    }
    if (e.last_access > clock_) broken(id, "last access is later than the clock");
    if (e.block < 0) broken(id, "negative block id ", e.block);
    if (!blocks.insert(e.block).second) broken(id, "block ", e.block, " is held twice");
    if (e.lock_ref < 0) broken(id, "negative lock count");
    (e.lock_ref > 0 ? protected_ : evictable) += 1;
  }
  for (int id = 0; id < static_cast<int>(entries_.size()); ++id) {
    if (!entry(id).live) continue;
    const std::size_t i = static_cast<std::size_t>(id);
    if (entry(id).num_children != children[i]) {
      broken(id, "counts ", entry(id).num_children, " children, has ", children[i]);
    }
    if (entry(id).lock_ref < child_locks[i]) {
      broken(id, "lock count ", entry(id).lock_ref, " below its children's ", child_locks[i]);
    }
  }
  if (static_cast<int>(by_hash_.size()) != live) {
    broken(-1, by_hash_.size(), " hash-table rows for ", live, " entries");
  }
  if (evictable != evictable_blocks_ || protected_ != protected_blocks_) {
    broken(-1, "sizes say evictable ", evictable_blocks_, " protected ", protected_blocks_,
           ", the entries hold ", evictable, " and ", protected_);
  }
  for (const int id : free_entries_) {
    if (entry(id).live) broken(id, "a free slot is marked live");
  }
  if (static_cast<std::size_t>(live) + free_entries_.size() != entries_.size() ||
      tokens_.size() != entries_.size() * static_cast<std::size_t>(block_size_)) {
    broken(-1, entries_.size(), " slots, ", live, " live and ", free_entries_.size(), " free, ",
           tokens_.size(), " tokens: an entry leaked");
  }
}

std::string HashBlockCache::debug_string() const {
  std::ostringstream out;
  out << "hash block_size " << block_size_ << ": " << size_info().total_blocks()
      << " blocks (evictable " << evictable_blocks_ << ", protected " << protected_blocks_
      << "), clock " << clock_ << '\n';
  for (int id = 0; id < static_cast<int>(entries_.size()); ++id) {
    const HashBlockEntry& e = entry(id);
    if (!e.live) continue;
    out << '#' << id << " after " << e.parent << " [";
    for (std::size_t i = 0; i < tokens_of(id).size(); ++i)
      out << (i ? " " : "") << tokens_of(id)[i];
    out << "] block " << e.block << " lock " << e.lock_ref << " children " << e.num_children
        << " t " << e.last_access << " hash " << std::hex << std::setw(16) << std::setfill('0')
        << e.hash << std::dec << std::setfill(' ') << '\n';
  }
  return out.str();
}

// The entries, their tokens and the hash table (libstdc++: a bucket array of
// pointers plus one heap node per entry: next pointer and the key/value pair).
std::size_t HashBlockCache::metadata_bytes() const {
  using Row = std::pair<const std::uint64_t, int>;
  return entries_.capacity() * sizeof(HashBlockEntry) + tokens_.capacity() * sizeof(int) +
         free_entries_.capacity() * sizeof(int) + by_hash_.bucket_count() * sizeof(void*) +
         by_hash_.size() * (sizeof(void*) + sizeof(Row));
}

}  // namespace kvc::ch05
