// Chapter 05: what is particular to the hash-chained block cache — the chain
// makes a block's hash name its whole prefix, and collisions cost nothing but
// a comparison.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "chapters/05_radix_cache/hash_block_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch05 {
namespace {

using Blocks = std::vector<int>;
using Tokens = std::vector<int>;

TEST(Ch05HashBlockCache, EqualBlocksAfterDifferentPrefixesAreDifferentEntries) {
  HashBlockCache cache(2);
  cache.insert(Tokens{1, 1, 7, 7}, Blocks{0, 1});
  cache.insert(Tokens{2, 2, 7, 7}, Blocks{2, 3});
  EXPECT_EQ(cache.size_info().total_blocks(), 4);
  EXPECT_EQ(cache.match_prefix(Tokens{2, 2, 7, 7}).blocks, (Blocks{2, 3}));
  EXPECT_EQ(cache.match_prefix(Tokens{3, 3, 7, 7}).matched_tokens, 0);
  EXPECT_NO_THROW(cache.check_invariants());
}

TEST(Ch05HashBlockCache, EveryHashCollidingStillFindsTheRightBlocks) {
  HashBlockCache cache(1, 1);  // one bit: two hash values for everything
  std::vector<Tokens> prompts;
  for (int a = 0; a < 4; ++a) {
    for (int b = 0; b < 4; ++b) prompts.push_back(Tokens{a, b, a + b});
  }
  int next_block = 0;
  for (const Tokens& prompt : prompts) {
    const InsertResult result =
        cache.insert(prompt, Blocks{next_block, next_block + 1, next_block + 2});
    next_block += 3;
    // Prompts share a first block every 4th time: never a wrongly shared second.
    EXPECT_EQ(result.cached_tokens, prompt[1] == 0 ? 0 : 1);
  }
  EXPECT_NO_THROW(cache.check_invariants());
  // 4 first blocks, 16 second, 16 third.
  EXPECT_EQ(cache.size_info().total_blocks(), 4 + 16 + 16);
  for (const Tokens& prompt : prompts) {
    const PrefixMatch match = cache.match_prefix(prompt);
    ASSERT_EQ(match.matched_tokens, 3);
    // Every block's entry holds the tokens it was inserted with.
    const std::string dump = cache.debug_string();
    for (std::size_t i = 0; i < 3; ++i) {
      std::ostringstream row;
      row << '[' << prompt[i] << "] block " << match.blocks[i] << ' ';
      EXPECT_NE(dump.find(row.str()), std::string::npos) << row.str() << '\n' << dump;
    }
  }
  EXPECT_EQ(cache.match_prefix(Tokens{0, 0, 9}).matched_tokens, 2);
}

TEST(Ch05HashBlockCache, RejectsABadConfiguration) {
  EXPECT_THROW(HashBlockCache(0), Error);
  EXPECT_THROW(HashBlockCache(4, 0), Error);
  EXPECT_THROW(HashBlockCache(4, 65), Error);
}

}  // namespace
}  // namespace kvc::ch05
