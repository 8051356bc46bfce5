// Solution: chapter 04, decode attention through a block table.
#include <cmath>

#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::ch04 {

void paged_decode_attention(float* out, const float* q, const PagedLayout& layout,
                            const float* layer_k_pages, const float* layer_v_pages,
                            const BlockTable& table, int pos, int n_heads, float* scratch) {
  // Chapter 03's grouped loop; only where row t lives changed. The layer's
  // pages are rows [num_blocks * block_size][n_kv_heads][head_dim], and the
  // table says which row holds position t: one lookup per row, read once for
  // every query head.
  const int n_ctx = pos + 1, head_dim = layout.head_dim, kv_dim = layout.kv_dim();
  const int kv_mul = n_heads / layout.n_kv_heads;  // query heads per KV head
  const float scale = std::sqrt(static_cast<float>(head_dim));
  float* scores = scratch;  // [n_heads][n_ctx]
  for (int t = 0; t < n_ctx; ++t) {
    const float* k_row = layer_k_pages + slot_for(table, t, layout.block_size) * kv_dim;
    for (int h = 0; h < n_heads; ++h) {
      const float* q_head = q + h * head_dim;
      const float* k = k_row + (h / kv_mul) * head_dim;
      float dot = 0.0f;
      for (int d = 0; d < head_dim; ++d) dot += q_head[d] * k[d];
      scores[h * n_ctx + t] = dot / scale;
    }
  }
  for (int h = 0; h < n_heads; ++h) cpu::softmax(scores + h * n_ctx, n_ctx);

  for (int i = 0; i < n_heads * head_dim; ++i) out[i] = 0.0f;
  for (int t = 0; t < n_ctx; ++t) {
    const float* v_row = layer_v_pages + slot_for(table, t, layout.block_size) * kv_dim;
    for (int h = 0; h < n_heads; ++h) {
      const float* v = v_row + (h / kv_mul) * head_dim;
      const float p = scores[h * n_ctx + t];
      float* out_head = out + h * head_dim;
      for (int d = 0; d < head_dim; ++d) out_head[d] += p * v[d];
    }
  }
}

}  // namespace kvc::ch04
