// Solution: chapter 05, the radix tree's match_prefix and insert.
#include "chapters/05_radix_cache/radix_cache.hpp"

namespace kvc::ch05 {

PrefixMatch RadixCache::match_prefix(std::span<const int> tokens) {
  const std::size_t b = static_cast<std::size_t>(block_size_);
  const std::size_t full = tokens.size() / b * b;  // a partial last block is never shared
  PrefixMatch match;
  int at = walk_root();
  std::size_t pos = 0;
  while (pos < full) {
    const int child = find_child(at, tokens.subspan(pos, b));
    if (child < 0) break;
    const int same = matching_blocks(child, tokens.subspan(pos, full - pos));
    // The match ends inside the child: split it so a node ends exactly there
    // and the handle names the matched prefix, no more.
    at = same < num_blocks(child) ? split(child, same) : child;
    const std::vector<int>& blocks = node(at).blocks;
    match.blocks.insert(match.blocks.end(), blocks.begin(), blocks.end());
    pos += static_cast<std::size_t>(same) * b;
    if (at != child) break;
  }
  touch(at);
  match.matched_tokens = static_cast<int>(pos);
  match.handle = PrefixHandle{at};
  return match;
}

InsertResult RadixCache::insert(std::span<const int> tokens, std::span<const int> blocks) {
  check_insert_arguments(tokens, blocks, block_size_);
  const std::size_t b = static_cast<std::size_t>(block_size_);
  const std::size_t full = tokens.size() / b * b;
  InsertResult result;
  int at = walk_root();
  std::size_t pos = 0;
  while (pos < full) {
    const int child = find_child(at, tokens.subspan(pos, b));
    if (child < 0) {
      // Everything from here on is new: one leaf takes the caller's blocks.
      at = add_leaf(at, tokens.subspan(pos, full - pos), blocks.subspan(pos / b, (full - pos) / b));
      break;
    }
    const int same = matching_blocks(child, tokens.subspan(pos, full - pos));
    // The tokens diverge or end inside the child: split it there. The next
    // turn finds no child for the diverging block and adds the leaf.
    at = same < num_blocks(child) ? split(child, same) : child;
    const std::vector<int>& cached = node(at).blocks;
    result.cached_blocks.insert(result.cached_blocks.end(), cached.begin(), cached.end());
    pos += static_cast<std::size_t>(same) * b;
  }
  touch(at);
  result.cached_tokens = static_cast<int>(result.cached_blocks.size() * b);
  result.duplicate_blocks = differing_blocks(blocks, result.cached_blocks);
  result.handle = PrefixHandle{at};
  return result;
}

}  // namespace kvc::ch05
