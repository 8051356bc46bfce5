// The inner loops of the grouped decode kernels, shared by chapter 03's
// contiguous cache (attention_grouped.cpp) and chapter 04's pages
// (attention_paged.cpp): a run of consecutive cache rows of one KV head, each
// read once for all the query heads of its group. Both kernels call the same
// compiled loops, so timing one against the other measures only how they find
// their rows.
//
// Rounding is attention_decode's (see attention.cpp): every score is one
// in-order sum over head_dim divided by sqrtf(head_dim), and outputs add rows
// in the order given. So a kernel that calls these over its rows in position
// order, with cpu::softmax between, gives attention_decode's bits.
#pragma once

#include <cstddef>

namespace kvc {
class ThreadPool;
}

namespace kvc::cpu::rows {

// Scores n_rows consecutive key rows (row t at keys + t * kv_stride) for each
// query head j of a group.
//   group_q: [group][head_dim]
//   scores:  head j's score of row t at scores[j * scores_stride + t]
void score_group(float* scores, std::size_t scores_stride, const float* group_q, int group,
                 const float* keys, int n_rows, int head_dim, std::size_t kv_stride, float scale);

// group_out[j][:] += weights[j * weights_stride + t] * value_t for the n_rows
// consecutive value rows (row t at values + t * kv_stride), in order of t.
// Each value row is read once and accumulated into every output of the group.
//   group_out: [group][head_dim]
void accumulate_group(float* group_out, const float* weights, std::size_t weights_stride, int group,
                      const float* values, int n_rows, int head_dim, std::size_t kv_stride);

}  // namespace kvc::cpu::rows

namespace kvc::cpu::fast {

// One layer's cache rows found through a block table: position t's K row is
// at k_rows + slot(t) * row_stride, slot(t) = block_table[t / block_size] *
// block_size + t % block_size (V likewise). A contiguous cache is one block of
// n_ctx rows at slot 0.
struct BlockRows {
  const float* k_rows;
  const float* v_rows;
  const int* block_table;
  int block_size;
  std::size_t row_stride;  // floats per row: n_kv_heads * head_dim

  // Offset of position t's row from k_rows (and from v_rows), in floats.
  std::size_t row_offset(int t) const {
    return (std::size_t(block_table[t / block_size]) * block_size + t % block_size) * row_stride;
  }
};

// Asks for part `part` of `parts` of n_rows rows to be brought into L2: the
// span_floats floats at first + r * row_stride for r in that part, in address
// order. The fast kernels fetch the next run of rows this way, one part per KV
// head they work on in the current run: walking one KV head through the rows
// reads 512 bytes out of every 4 KiB (Llama-3-8B), a pattern the hardware
// prefetchers do not follow across pages, while these requests stream.
inline void prefetch_rows_part(const float* first, int n_rows, std::size_t span_floats,
                               std::size_t row_stride, int part, int parts) {
  const int row_begin = n_rows * part / parts;
  const int row_end = n_rows * (part + 1) / parts;
  for (int r = row_begin; r < row_end; ++r) {
    const char* row = reinterpret_cast<const char*>(first + r * row_stride);
    for (std::size_t byte = 0; byte < span_floats * sizeof(float); byte += 64) {
      __builtin_prefetch(row + byte, 0, 2);
    }
  }
}

// attention_decode's contract and bits over `cache`, grouped, vectorized and
// split across `pool` by KV heads (see attention_fast.cpp).
//   scores: n_heads * n_ctx floats ([n_kv_heads][group][n_ctx])
void decode_grouped_blocks(float* out, const float* q, const BlockRows& cache, int n_ctx,
                           int n_heads, int n_kv_heads, int head_dim, float* scores,
                           ThreadPool* pool);

// attention_decode's contract over `cache`, flash-decoding style: the context
// split across `pool`, online softmax, slices merged (see attention_split.cpp).
// Rounds differently from attention_decode (FMA, a vector exp).
void decode_split_context(float* out, const float* q, const BlockRows& cache, int n_ctx,
                          int n_heads, int n_kv_heads, int head_dim, ThreadPool* pool);

}  // namespace kvc::cpu::fast
