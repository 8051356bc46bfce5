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
