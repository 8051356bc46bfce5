// Exercise: chapter 03, the query-head -> KV-head mapping, grouped decode
// attention and mean-pooling.
//
// Build and test with scripts/check-exercises.sh 3 (see exercises/README.md);
// ch03_gqa --kernel grouped then decodes with your loop, and kvc_convert_gqa
// converts checkpoints with your mean-pooling.
#include "chapters/03_gqa/gqa_kv_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch03 {

// Contract: see gqa_kv_cache.hpp. With 8 query heads and 2 KV heads, query
// heads 0-3 read KV head 0 and 4-7 read KV head 1. MHA (n_kv_heads == n_heads)
// maps every head to itself; MQA (n_kv_heads == 1) maps all of them to 0.
// Expected time: 5 minutes.
int kv_head_for(int /*query_head*/, int /*n_heads*/, int /*n_kv_heads*/) {
  throw NotImplemented("ch03: kv_head_for");
}

// Contract: see gqa_kv_cache.hpp. Chapter 02's decode_attention, reordered so
// each cache row is read once: for each position t, read row t of k_rows
// ([n_kv_heads][head_dim], adjacent floats) and score it against every query
// head h, using the KV head kv_head_for(h, n_heads, n_kv_heads); then softmax
// each head's n_ctx scores; then for each t read row t of v_rows once and add
// p_h,t * v into every head's output. Hints:
//  1. scores is [n_heads][n_ctx]: head h's score of position t is
//     scores[h * n_ctx + t].
//  2. Round exactly as in chapter 02: each dot product a float sum over d in
//     order, divided by sqrtf(head_dim); cpu::softmax (kernels/cpu/ops.hpp)
//     is the softmax you wrote there; each output summed over t in order,
//     starting from 0. Then the bits, and the real model's text, are
//     chapter 02's.
// Expected time: 30 minutes.
void grouped_decode_attention(float* /*out*/, const float* /*q*/, const float* /*k_rows*/,
                              const float* /*v_rows*/, int /*n_ctx*/, int /*n_heads*/,
                              int /*n_kv_heads*/, int /*head_dim*/, float* /*scores*/) {
  throw NotImplemented("ch03: grouped_decode_attention");
}

// Contract: see gqa_kv_cache.hpp. Hints: one head of the projection is
// head_dim consecutive rows of `dim` floats; sum the merged heads' rows in
// increasing input-head order, in a float, then divide by the number merged.
// Expected time: 20 minutes.
void mean_pool_kv_heads(const float* /*w_in*/, float* /*w_out*/, int /*n_kv_heads_in*/,
                        int /*n_kv_heads_out*/, int /*head_dim*/, int /*dim*/) {
  throw NotImplemented("ch03: mean_pool_kv_heads");
}

}  // namespace kvc::ch03
