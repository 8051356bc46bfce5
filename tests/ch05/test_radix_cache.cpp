// Chapter 05: what is particular to the radix tree — where it splits, and the
// pictures it draws.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chapters/05_radix_cache/radix_cache.hpp"

namespace kvc::ch05 {
namespace {

using Blocks = std::vector<int>;
using Tokens = std::vector<int>;

TEST(Ch05RadixCache, SplitsOnlyWhereAPathForksOrEnds) {
  RadixCache tree(2);
  tree.insert(Tokens{1, 2, 3, 4, 5, 6, 7, 8}, Blocks{0, 1, 2, 3});
  EXPECT_EQ(tree.num_nodes(), 2);  // root + one run of 4 blocks
  tree.match_prefix(Tokens{1, 2, 3, 4, 5, 6, 7, 8, 9, 9});
  EXPECT_EQ(tree.num_nodes(), 2);  // a full match splits nothing
  tree.match_prefix(Tokens{1, 2, 3, 4});
  EXPECT_EQ(tree.num_nodes(), 3);  // root, [1 2 3 4], [5 6 7 8]
  tree.insert(Tokens{1, 2, 3, 4, 5, 6, 0, 0}, Blocks{0, 1, 2, 4});
  EXPECT_EQ(tree.num_nodes(), 5);  // [5 6] splits off, [7 8] and [0 0] below it
  tree.insert(Tokens{1, 2, 3, 4, 5, 6, 0, 0}, Blocks{0, 1, 2, 4});
  EXPECT_EQ(tree.num_nodes(), 5);  // nothing new
  EXPECT_NO_THROW(tree.check_invariants());
  EXPECT_EQ(tree.evict(2), (Blocks{3, 4}));  // both leaves; [5 6] is a leaf now
  EXPECT_EQ(tree.num_nodes(), 3);
  EXPECT_NO_THROW(tree.check_invariants());
}

TEST(Ch05RadixCache, APartialEvictionShortensTheLeaf) {
  RadixCache tree(1);
  const InsertResult inserted = tree.insert(Tokens{1, 2, 3, 4}, Blocks{0, 1, 2, 3});
  EXPECT_EQ(tree.evict(1), Blocks{3});
  EXPECT_EQ(tree.num_nodes(), 2);
  EXPECT_EQ(tree.match_prefix(Tokens{1, 2, 3, 4}).blocks, (Blocks{0, 1, 2}));
  EXPECT_EQ(tree.match_prefix(Tokens{1, 2, 3, 4}).handle, inserted.handle);
  EXPECT_NO_THROW(tree.check_invariants());
}

TEST(Ch05RadixCache, DrawsItselfAsTextAndGraphviz) {
  RadixCache tree(2);
  const InsertResult a = tree.insert(Tokens{1, 2, 3, 4, 5, 6}, Blocks{0, 1, 2});
  tree.insert(Tokens{1, 2, 9, 9}, Blocks{0, 7});
  tree.lock(a.handle);
  const std::string text = tree.debug_string();
  EXPECT_NE(text.find("4 blocks (evictable 1, protected 3), 4 nodes"), std::string::npos) << text;
  EXPECT_NE(text.find("[1 2] blocks [0] lock 1"), std::string::npos) << text;
  EXPECT_NE(text.find("[3 4 5 6] blocks [1 2] lock 1"), std::string::npos) << text;
  EXPECT_NE(text.find("[9 9] blocks [7] lock 0"), std::string::npos) << text;
  const std::string dot = tree.to_dot();
  EXPECT_EQ(dot.rfind("digraph radix_cache {", 0), 0u) << dot;
  EXPECT_NE(dot.find("[3 4 5 6]\\n2 blocks, lock 1"), std::string::npos) << dot;
  EXPECT_NE(dot.find("[9 9]\\n1 blocks, lock 0"), std::string::npos) << dot;
  EXPECT_EQ(dot.back(), '\n');
}

}  // namespace
}  // namespace kvc::ch05
