// Chapter 05: a 64-bit hash of a run of token ids.
//
// Both caches hash one block's tokens: the radix tree to key a node's children
// by their first block, the hash cache to name a block by its whole prefix
// (seed = the parent block's hash). splitmix64's finalizer mixes each token in,
// so nearby ids (1, 2, 3 ...) land far apart. A hash only finds candidates:
// both caches compare the stored tokens before they trust a hit.
#pragma once

#include <cstdint>
#include <span>

namespace kvc::ch05 {

inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline std::uint64_t hash_tokens(std::uint64_t seed, std::span<const int> tokens) {
  std::uint64_t h = mix64(seed ^ tokens.size());
  for (const int token : tokens) h = mix64(h ^ static_cast<std::uint32_t>(token));
  return h;
}

}  // namespace kvc::ch05
