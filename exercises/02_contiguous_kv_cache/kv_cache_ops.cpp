// Exercise: chapter 02, the contiguous KV cache's operations.
//
// Build with -DKVC_EXERCISES=ON and run `ctest -L ch02`; the chapter's demo
// (build/bin/ch02_contiguous_kv_cache) then runs on your cache.
#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "common/check.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::ch02 {

// Contract: index in floats of (layer, pos, kv_head 0, dim 0) in one slot laid
// out [n_layers][max_seq_len][n_kv_heads][head_dim]. No bounds checks needed.
// Hint: how many floats is one position? One layer?
std::size_t cache_offset(const CacheLayout& /*layout*/, int /*layer*/, int /*pos*/) {
  throw NotImplemented("ch02: cache_offset");
}

// Contract: copy the kv_dim floats of k to k_slot and of v to v_slot at
// (layer, pos). Use cache_offset.
void append_kv(const CacheLayout& /*layout*/, float* /*k_slot*/, float* /*v_slot*/, int /*layer*/,
               int /*pos*/, const float* /*k*/, const float* /*v*/) {
  throw NotImplemented("ch02: append_kv");
}

// Contract: attention of the token at `pos` over cached positions 0..pos of
// `layer`, all heads. Hint: positions 0..pos of one layer are contiguous, so
// this is one call to cpu::attention_decode (kernels/cpu/ops.hpp) with the
// right base pointers and n_ctx = pos + 1; it maps query heads to KV heads.
void decode_attention(float* /*out*/, const float* /*q*/, const CacheLayout& /*layout*/,
                      const float* /*k_slot*/, const float* /*v_slot*/, int /*layer*/, int /*pos*/,
                      int /*n_heads*/, float* /*scores*/) {
  throw NotImplemented("ch02: decode_attention");
}

// Contract: bytes of K and V one token occupies across all layers.
// Llama-2-7B in fp16 (32 layers, 32 KV heads, head_dim 128) -> 524288.
std::size_t kv_bytes_per_token(int /*n_layers*/, int /*n_kv_heads*/, int /*head_dim*/,
                               std::size_t /*bytes_per_element*/) {
  throw NotImplemented("ch02: kv_bytes_per_token");
}

}  // namespace kvc::ch02
