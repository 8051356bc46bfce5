// Exercise: chapter 05, the radix tree's match_prefix and insert.
//
// Build with -DKVC_EXERCISES=ON and run `ctest -L ch05`; the randomized test
// there checks your tree against a brute-force reference after every one of
// 100,000+ operations, with block sizes 1, 2, 4 and 16.
//
// The state (radix_cache.hpp):
//   nodes_[id]  RadixNode: tokens (whole blocks), blocks, parent, children,
//               lock_ref, last_access; nodes_[kRoot] is the empty prefix
//   walk_root() the root every walk starts from: kRoot (chapter 06 gives each
//               tenant its own root, so start there, not at kRoot)
// Every cached prefix is the path from the root down to a node. Only whole
// blocks are ever cached: the first tokens.size() / block_size_ blocks.
//
// The helpers you need (already written, radix_cache.cpp):
//   find_child(at, block)         the child of `at` whose run starts with these
//                                 block_size_ tokens, or -1
//   matching_blocks(id, tokens)   how many leading whole blocks of node id's run
//                                 equal the first whole blocks of `tokens`
//   split(id, keep_blocks)        cuts node id after keep_blocks blocks and
//                                 returns the new upper node (0 < keep_blocks <
//                                 num_blocks(id))
//   add_leaf(at, tokens, blocks)  a new unlocked leaf under `at`; returns its id
//   touch(id)                     advances the clock, marks id and its ancestors used
//   node(id), num_blocks(id)      the node, its number of blocks
//   check_insert_arguments(tokens, blocks, block_size_), differing_blocks(...)
//                                 (prefix_cache.hpp)
#include "chapters/05_radix_cache/radix_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch05 {

// Contract: the longest cached prefix of `tokens` made of whole blocks.
//   - Walk down from walk_root() one child at a time: find the child for the
//     next block, count how many of its blocks match.
//   - When the match ends inside a child (fewer blocks match than it holds),
//     split the child there and stop at the upper part: the returned handle
//     must name exactly the matched prefix, so lock() protects no more.
//   - Returns the matched blocks in order, matched_tokens (a multiple of
//     block_size_) and the handle {node id}; {walk_root()} when nothing matched.
//   - Call touch() once, on the last node reached (the root when nothing
//     matched): the clock counts every match.
// Hint: tokens.subspan(pos, block_size_) is the block at pos; ignore a
// partial last block (tokens.size() / block_size_ * block_size_ tokens).
PrefixMatch RadixCache::match_prefix(std::span<const int> /*tokens*/) {
  throw NotImplemented("ch05: RadixCache::match_prefix");
}

// Contract: caches the whole blocks of `tokens`, blocks[i] holding block i.
//   - Call check_insert_arguments first: a bad call throws before any change.
//   - The same walk as match_prefix, but where the tokens diverge or end
//     inside a child, split it there and keep walking: the next block then
//     has no child, and one add_leaf() takes the rest of the whole blocks with
//     the caller's blocks for them.
//   - Fill the result: cached_blocks (the cache's blocks for the part that was
//     already cached, in order), cached_tokens (their tokens),
//     duplicate_blocks = differing_blocks(blocks, cached_blocks), and the
//     handle of the node that ends the whole-block prefix ({walk_root()} for fewer
//     than block_size_ tokens).
//   - touch() that node once. Inserting an already-cached sequence adds
//     nothing and reports all of it as cached.
InsertResult RadixCache::insert(std::span<const int> /*tokens*/, std::span<const int> /*blocks*/) {
  throw NotImplemented("ch05: RadixCache::insert");
}

}  // namespace kvc::ch05
