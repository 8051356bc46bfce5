// Solution: chapter 02, the contiguous KV cache's operations.
#include <cstring>

#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::ch02 {

std::size_t cache_offset(const CacheLayout& layout, int layer, int pos) {
  // [n_layers][max_seq_len][kv_dim]: a layer is max_seq_len rows, a row is kv_dim floats.
  return (static_cast<std::size_t>(layer) * layout.max_seq_len + pos) * layout.kv_dim();
}

void append_kv(const CacheLayout& layout, float* k_slot, float* v_slot, int layer, int pos,
               const float* k, const float* v) {
  const std::size_t offset = cache_offset(layout, layer, pos);
  std::memcpy(k_slot + offset, k, layout.kv_dim() * sizeof(float));
  std::memcpy(v_slot + offset, v, layout.kv_dim() * sizeof(float));
}

void decode_attention(float* out, const float* q, const CacheLayout& layout, const float* k_slot,
                      const float* v_slot, int layer, int pos, int n_heads, float* scores) {
  // The layer's rows 0..pos are contiguous: [pos + 1][n_kv_heads][head_dim].
  const std::size_t layer_start = cache_offset(layout, layer, 0);
  cpu::attention_decode(out, q, k_slot + layer_start, v_slot + layer_start, pos + 1, n_heads,
                        layout.n_kv_heads, layout.head_dim, scores);
}

std::size_t kv_bytes_per_token(int n_layers, int n_kv_heads, int head_dim,
                               std::size_t bytes_per_element) {
  return 2 * static_cast<std::size_t>(n_layers) * n_kv_heads * head_dim * bytes_per_element;
}

}  // namespace kvc::ch02
