// Chapter 03: converting a checkpoint between MHA, GQA and MQA.
//
// A model with n_heads query heads may keep any number of KV heads that divides
// n_heads: query head h reads KV head h / (n_heads / n_kv_heads). Converting
// rewrites only the K and V projections, wk and wv ([n_kv_heads][head_dim][dim]
// per layer); wq, wo and every other tensor are copied unchanged.
//
//   - Fewer KV heads (MHA -> GQA -> MQA): each new head's rows are the mean of
//     the rows of the heads merged into it (mean_pool_kv_heads, this chapter's
//     exercise), the initialisation the GQA paper uptrains from (Ainslie et al.
//     2023, "GQA: Training Generalized Multi-Query Transformer Models from
//     Multi-Head Checkpoints"). The model now computes something else: its
//     quality drops until it is trained further.
//   - More KV heads (GQA -> MHA, "un-sharing"): each KV head is copied once per
//     new head that its query heads are spread over. The model computes
//     exactly what it did, with a bigger cache.
//   - Neither count divides the other (12 query heads, 4 -> 3 KV heads):
//     un-share to MHA, then mean-pool.
#pragma once

#include <vector>

#include "common/checkpoint.hpp"

namespace kvc::ch03 {

// The KV-head counts a model with `n_heads` query heads can have, largest
// (MHA) first, down to 1 (MQA).
std::vector<int> valid_kv_head_counts(int n_heads);

// `in` with `new_n_kv_heads` KV heads, by the rules above. new_n_kv_heads equal
// to the model's count copies it unchanged. Throws kvc::Error when
// new_n_kv_heads does not divide the number of query heads.
Model convert_kv_heads(const Model& in, int new_n_kv_heads);

}  // namespace kvc::ch03
