// Decode attention over a paged KV pool (chapter 04): attention_decode's
// contract, but position t's K and V row lives in physical block
// block_table[t / block_size], at row t % block_size of that block.
//
// Variants (llm.c dev/cuda style: the simple one first, then the fast one):
//   1: llama2.c's loop through a block table: for each query head, for each
//      position t, look up t's row and score it; softmax; then the same lookup
//      again for the weighted sum of V. A KV head is read once per query head.
//   2: chapter 03's grouped kernel over pages: for each KV head, walk the
//      blocks; each block's rows are consecutive in memory, so they are scored
//      and summed as one run, read once for all g query heads of the group.
//   3: variant 2 vectorized (AVX2) and threaded (see attention_fast.cpp):
//      the fast one, still rounded like variant 1.
//   4: split-context flash decoding (attention_split.cpp): rounds differently,
//      tested by tolerance.
//
// Variants 1-3 round exactly like attention_decode (see attention.cpp): each score is
// one in-order sum over head_dim divided by sqrtf(head_dim), the softmax is
// cpu::softmax, and every output sums over t in order. So the paged cache
// gives the same tokens as chapter 02's contiguous one.
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "common/check.hpp"
#include "kernels/cpu/attention_rows.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::cpu {

namespace {

// Where the pool's rows of one layer sit: k_pages and v_pages seen as
// [num_blocks * block_size][n_kv_heads][head_dim].
struct PagedCache {
  const float* k_pages;
  const float* v_pages;
  const int* block_table;  // [logical block] -> physical block
  int block_size;
  std::size_t row_stride;  // floats per pool row: n_kv_heads * head_dim

  // Offset of position t's row in the pool (its slot times row_stride).
  std::size_t row_of(int t) const {
    const std::size_t slot = std::size_t(block_table[t / block_size]) * block_size + t % block_size;
    return slot * row_stride;
  }
};

void decode_per_position(float* out, const float* q, const PagedCache& cache, int n_ctx,
                         int n_heads, int n_kv_heads, int head_dim, float* scores) {
  const int group = n_heads / n_kv_heads;  // query heads per KV head
  const float scale = sqrtf(float(head_dim));
  for (int h = 0; h < n_heads; ++h) {
    const float* head_q = q + std::size_t(h) * head_dim;
    float* head_out = out + std::size_t(h) * head_dim;
    const std::size_t kv_offset = std::size_t(h / group) * head_dim;

    for (int t = 0; t < n_ctx; ++t) {
      const float* key = cache.k_pages + cache.row_of(t) + kv_offset;
      float score = 0.0f;
      for (int d = 0; d < head_dim; ++d) score += head_q[d] * key[d];
      scores[t] = score / scale;
    }

    softmax(scores, n_ctx);

    for (int d = 0; d < head_dim; ++d) head_out[d] = 0.0f;
    for (int t = 0; t < n_ctx; ++t) {
      const float* value = cache.v_pages + cache.row_of(t) + kv_offset;
      for (int d = 0; d < head_dim; ++d) head_out[d] += scores[t] * value[d];
    }
  }
}

void decode_grouped_by_block(float* out, const float* q, const PagedCache& cache, int n_ctx,
                             int n_heads, int n_kv_heads, int head_dim, float* scores) {
  const int group = n_heads / n_kv_heads;
  const float scale = sqrtf(float(head_dim));
  const int num_blocks = (n_ctx + cache.block_size - 1) / cache.block_size;
  // Positions of logical block b: first_position(b) .. + rows_in(b) - 1.
  const auto first_position = [&](int b) { return b * cache.block_size; };
  const auto rows_in = [&](int b) { return std::min(cache.block_size, n_ctx - first_position(b)); };

  for (int kv_head = 0; kv_head < n_kv_heads; ++kv_head) {
    // Query heads kv_head * group .. + group - 1 share this KV head; their rows are adjacent.
    //   group_q, group_out: [group][head_dim], scores: [group][n_ctx]
    const float* group_q = q + std::size_t(kv_head) * group * head_dim;
    float* group_out = out + std::size_t(kv_head) * group * head_dim;
    const std::size_t kv_offset = std::size_t(kv_head) * head_dim;

    for (int b = 0; b < num_blocks; ++b) {
      const float* keys = cache.k_pages + cache.row_of(first_position(b)) + kv_offset;
      rows::score_group(scores + first_position(b), n_ctx, group_q, group, keys, rows_in(b),
                        head_dim, cache.row_stride, scale);
    }

    for (int j = 0; j < group; ++j) softmax(scores + std::size_t(j) * n_ctx, n_ctx);

    for (std::size_t i = 0; i < std::size_t(group) * head_dim; ++i) group_out[i] = 0.0f;
    for (int b = 0; b < num_blocks; ++b) {
      const float* values = cache.v_pages + cache.row_of(first_position(b)) + kv_offset;
      rows::accumulate_group(group_out, scores + first_position(b), n_ctx, group, values,
                             rows_in(b), head_dim, cache.row_stride);
    }
  }
}

void check_variant(int variant) {
  KVC_CHECK(variant >= 0 && variant <= kPagedDecodeVariants,
            "cpu::attention_decode_paged: no variant ", variant, " (0 = best, 1..",
            kPagedDecodeVariants, ")");
}

}  // namespace

std::size_t attention_decode_paged_scratch_floats(int variant, int n_ctx, int n_heads,
                                                  int n_kv_heads) {
  check_variant(variant);
  if (variant == 1) return std::size_t(n_ctx);  // one query head's scores at a time
  if (variant == 2) return attention_decode_grouped_scratch_floats(n_ctx, n_heads, n_kv_heads);
  if (variant == 4) return 0;           // keeps its per-slice partials itself
  return std::size_t(n_heads) * n_ctx;  // every head's scores, so KV heads run in parallel
}

void attention_decode_paged(int variant, float* out, const float* q, const float* k_pages,
                            const float* v_pages, const int* block_table, int n_ctx, int block_size,
                            int n_heads, int n_kv_heads, int head_dim, float* scratch,
                            ThreadPool* pool) {
  check_variant(variant);
  KVC_CHECK(block_size >= 1, "cpu::attention_decode_paged: block size ", block_size,
            " (must be at least 1)");
  const PagedCache cache{k_pages, v_pages, block_table, block_size,
                         std::size_t(n_kv_heads) * head_dim};
  if (variant == 1) {
    decode_per_position(out, q, cache, n_ctx, n_heads, n_kv_heads, head_dim, scratch);
  } else if (variant == 2) {
    decode_grouped_by_block(out, q, cache, n_ctx, n_heads, n_kv_heads, head_dim, scratch);
  } else {
    const fast::BlockRows rows{k_pages, v_pages, block_table, block_size, cache.row_stride};
    if (variant == 4) {
      fast::decode_split_context(out, q, rows, n_ctx, n_heads, n_kv_heads, head_dim, pool);
    } else {
      fast::decode_grouped_blocks(out, q, rows, n_ctx, n_heads, n_kv_heads, head_dim, scratch,
                                  pool);
    }
  }
}

}  // namespace kvc::cpu
