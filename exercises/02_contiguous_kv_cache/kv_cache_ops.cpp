// Exercise: chapter 02, the contiguous KV cache's operations.
//
// Build and test with scripts/check-exercises.sh 2 (see exercises/README.md);
// the chapter's demo (build-ex/bin/ch02_contiguous_kv_cache) then runs on your
// cache.
#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "common/check.hpp"

namespace kvc::ch02 {

// Contract: index in floats of (layer, pos, kv_head 0, dim 0) in one slot laid
// out [n_layers][max_seq_len][n_kv_heads][head_dim]. No bounds checks needed.
// Hint: how many floats is one position? One layer?
// Expected time: 10 minutes.
std::size_t cache_offset(const CacheLayout& /*layout*/, int /*layer*/, int /*pos*/) {
  throw NotImplemented("ch02: cache_offset");
}

// Contract: copy the kv_dim floats of k to k_slot and of v to v_slot at
// (layer, pos). Use cache_offset.
// Expected time: 5 minutes.
void append_kv(const CacheLayout& /*layout*/, float* /*k_slot*/, float* /*v_slot*/, int /*layer*/,
               int /*pos*/, const float* /*k*/, const float* /*v*/) {
  throw NotImplemented("ch02: append_kv");
}

// Contract: attention of the token at `pos` over cached positions 0..pos of
// `layer`, all heads (its own K, V are already appended). For each query head h:
//   score_t = (q_h . k_t) / sqrtf(head_dim)        for t = 0..pos
//   p = softmax(score)                              (subtract the max, exp, sum, divide)
//   out_h = sum over t = 0..pos of p_t * v_t
// where k_t, v_t are the rows of KV head h / (n_heads / n_kv_heads) at (layer, t).
//   q, out: [n_heads][head_dim]; scores: scratch of at least pos + 1 floats.
// The output must be bit-identical to llama2.c's (and cpu::attention_decode's),
// which the unit tests check. Hints:
//  1. Find row t with cache_offset(layout, layer, t), then add the KV head's
//     offset (kv_head * head_dim).
//  2. Accumulate each dot product in a float, d = 0..head_dim-1 in order, and
//     divide by sqrtf(head_dim) (multiplying by its inverse rounds differently).
//  3. Sum the weighted values for t = 0..pos in order, into out_h set to 0 first.
//  4. Read positions 0..pos only: the rows after pos hold garbage (the tests
//     fill them with NaN).
// Expected time: 30-45 minutes.
void decode_attention(float* /*out*/, const float* /*q*/, const CacheLayout& /*layout*/,
                      const float* /*k_slot*/, const float* /*v_slot*/, int /*layer*/, int /*pos*/,
                      int /*n_heads*/, float* /*scores*/) {
  throw NotImplemented("ch02: decode_attention");
}

// Contract: bytes of K and V one token occupies across all layers.
// Llama-2-7B in fp16 (32 layers, 32 KV heads, head_dim 128) -> 524288.
// Expected time: 5 minutes.
std::size_t kv_bytes_per_token(int /*n_layers*/, int /*n_kv_heads*/, int /*head_dim*/,
                               std::size_t /*bytes_per_element*/) {
  throw NotImplemented("ch02: kv_bytes_per_token");
}

}  // namespace kvc::ch02
