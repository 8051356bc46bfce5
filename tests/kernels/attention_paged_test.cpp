// Chapter 04's paged decode kernels: every variant must give attention_decode's
// bits exactly on the same rows (so chapter 04's tokens equal chapter 02's),
// whatever the block size and wherever the blocks sit in the pool.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/check.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"
#include "tests/kernels/test_helpers.hpp"

namespace kvc::cpu {
namespace {

using test::expect_bit_identical;
using test::random_floats;

struct PagedShape {
  int n_heads, n_kv_heads, head_dim, n_ctx, block_size;
};

// Block sizes 1, 7, 16 and 128; n_ctx 1, a partial last block and an exact
// multiple of the block size; g = 1, 2, 4 and all query heads (MQA).
std::vector<PagedShape> paged_shapes() {
  struct Heads {
    int n_heads, n_kv_heads;
  };
  const Heads heads[] = {{4, 4}, {4, 2}, {8, 2}, {6, 1}};
  std::vector<PagedShape> shapes;
  for (int block_size : {1, 7, 16, 128}) {
    for (int n_ctx : {1, 2 * block_size + block_size / 2 + 1, 3 * block_size}) {
      for (const Heads& h : heads) {
        for (int head_dim : {8, 48, 64, 128}) {
          shapes.push_back({h.n_heads, h.n_kv_heads, head_dim, n_ctx, block_size});
        }
      }
    }
  }
  // A pool big enough (> 256 KiB) for variant 3 to use its threads.
  shapes.push_back({32, 8, 64, 1000, 16});
  return shapes;
}

// A pool with spare blocks and its block table: the contiguous cache's
// logical blocks scattered to a random permutation of the pool's blocks.
// Every pool row no position maps to holds NaN, so reading one shows.
//   pages: [num_blocks][block_size][row_floats]
struct Pool {
  std::vector<float> k_pages, v_pages;
  std::vector<int> block_table;
};

Pool scatter_into_pages(const std::vector<float>& k_cache, const std::vector<float>& v_cache,
                        const PagedShape& s, unsigned seed) {
  const std::size_t row_floats = std::size_t(s.n_kv_heads) * s.head_dim;
  const int logical_blocks = (s.n_ctx + s.block_size - 1) / s.block_size;
  const int num_blocks = 2 * logical_blocks + 1;
  std::vector<int> physical(num_blocks);
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), std::mt19937(seed));

  const std::size_t pool_floats = std::size_t(num_blocks) * s.block_size * row_floats;
  Pool pool{std::vector<float>(pool_floats, std::numeric_limits<float>::quiet_NaN()),
            std::vector<float>(pool_floats, std::numeric_limits<float>::quiet_NaN()),
            std::vector<int>(physical.begin(), physical.begin() + logical_blocks)};
  for (int t = 0; t < s.n_ctx; ++t) {
    const int block = pool.block_table[t / s.block_size];
    const std::size_t to = (std::size_t(block) * s.block_size + t % s.block_size) * row_floats;
    const std::size_t from = std::size_t(t) * row_floats;
    std::copy_n(k_cache.begin() + from, row_floats, pool.k_pages.begin() + to);
    std::copy_n(v_cache.begin() + from, row_floats, pool.v_pages.begin() + to);
  }
  return pool;
}

TEST(PagedDecode, EveryVariantMatchesAttentionDecodeBitForBit) {
  ThreadPool threads(2);
  unsigned seed = 1;
  for (const PagedShape& s : paged_shapes()) {
    SCOPED_TRACE(testing::Message() << s.n_heads << "/" << s.n_kv_heads << " heads x " << s.head_dim
                                    << ", n_ctx " << s.n_ctx << ", block size " << s.block_size);
    const auto [q_size, q, k_cache, v_cache] =
        test::random_decode_inputs(s.n_heads, s.n_kv_heads, s.head_dim, s.n_ctx, seed);
    const Pool pool = scatter_into_pages(k_cache, v_cache, s, seed++);

    std::vector<float> contiguous(q_size), scores(s.n_ctx);
    attention_decode(contiguous.data(), q.data(), k_cache.data(), v_cache.data(), s.n_ctx,
                     s.n_heads, s.n_kv_heads, s.head_dim, scores.data());

    for (int variant = 0; variant <= kPagedDecodeExactVariants; ++variant) {
      SCOPED_TRACE(testing::Message() << "variant " << variant);
      // Output starts as garbage so a kernel that skips an element is caught.
      auto paged = random_floats(q_size, seed++);
      std::vector<float> scratch(
          attention_decode_paged_scratch_floats(variant, s.n_ctx, s.n_heads, s.n_kv_heads));
      attention_decode_paged(variant, paged.data(), q.data(), pool.k_pages.data(),
                             pool.v_pages.data(), pool.block_table.data(), s.n_ctx, s.block_size,
                             s.n_heads, s.n_kv_heads, s.head_dim, scratch.data());
      expect_bit_identical(paged.data(), contiguous.data(), q_size);
      // The same on two threads (variants that run on the caller ignore the pool).
      paged = random_floats(q_size, seed++);
      attention_decode_paged(variant, paged.data(), q.data(), pool.k_pages.data(),
                             pool.v_pages.data(), pool.block_table.data(), s.n_ctx, s.block_size,
                             s.n_heads, s.n_kv_heads, s.head_dim, scratch.data(), &threads);
      expect_bit_identical(paged.data(), contiguous.data(), q_size);
    }
  }
}

// Variant 4 (split-context flash decoding) rounds its own way: within
// tolerance of the double-precision reference on the same rows. And it cuts
// the context into the same chunks over pages as over a contiguous cache (a
// chunk spans blocks), so it gives attention_decode_variant 5's bits exactly:
// chapter 04's split tokens are chapter 02's.
TEST(PagedDecode, SplitContextMatchesDoubleReferenceWithinTolerance) {
  ThreadPool threads(2);
  unsigned seed = 1;
  for (const PagedShape& s : paged_shapes()) {
    SCOPED_TRACE(testing::Message() << s.n_heads << "/" << s.n_kv_heads << " heads x " << s.head_dim
                                    << ", n_ctx " << s.n_ctx << ", block size " << s.block_size);
    const auto [q_size, q, k_cache, v_cache] =
        test::random_decode_inputs(s.n_heads, s.n_kv_heads, s.head_dim, s.n_ctx, seed);
    const Pool pool = scatter_into_pages(k_cache, v_cache, s, seed++);
    const auto expected = test::decode_attention_in_double(
        q.data(), k_cache.data(), v_cache.data(), s.n_ctx, s.n_heads, s.n_kv_heads, s.head_dim);
    for (ThreadPool* thread_pool : {static_cast<ThreadPool*>(nullptr), &threads}) {
      auto paged = random_floats(q_size, seed++);
      attention_decode_paged(4, paged.data(), q.data(), pool.k_pages.data(), pool.v_pages.data(),
                             pool.block_table.data(), s.n_ctx, s.block_size, s.n_heads,
                             s.n_kv_heads, s.head_dim, nullptr, thread_pool);
      test::expect_all_close(paged, expected, 2e-5, 2e-4);
      auto contiguous = random_floats(q_size, seed++);
      attention_decode_variant(5, contiguous.data(), q.data(), k_cache.data(), v_cache.data(),
                               s.n_ctx, s.n_heads, s.n_kv_heads, s.head_dim, nullptr, thread_pool);
      expect_bit_identical(paged.data(), contiguous.data(), q_size);
    }
  }
}

TEST(PagedDecode, RejectsUnknownVariantsAndEmptyBlocks) {
  const std::vector<float> q(8), pages(8);
  const std::vector<int> block_table{0};
  std::vector<float> out(8), scratch(8);
  const auto run = [&](int variant, int block_size) {
    attention_decode_paged(variant, out.data(), q.data(), pages.data(), pages.data(),
                           block_table.data(), 1, block_size, 1, 1, 8, scratch.data());
  };
  for (int variant : {-1, kPagedDecodeVariants + 1}) {
    EXPECT_THROW(run(variant, 1), Error);
    EXPECT_THROW(attention_decode_paged_scratch_floats(variant, 1, 1, 1), Error);
  }
  EXPECT_THROW(run(kBestPagedDecode, 0), Error);
  EXPECT_NO_THROW(run(kBestPagedDecode, 1));
}

}  // namespace
}  // namespace kvc::cpu
