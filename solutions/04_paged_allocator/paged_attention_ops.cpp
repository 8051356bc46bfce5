// Solution: chapter 04, decode attention through a block table.
#include <cmath>

#include "chapters/04_paged_allocator/paged_kv_cache.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::ch04 {

void paged_decode_attention(float* out, const float* q, const PagedLayout& layout,
                            const float* layer_k_pages, const float* layer_v_pages,
                            const BlockTable& table, int pos, int n_heads, float* scratch) {
  // Chapter 02's loop; only where row t lives changed. The layer's pages are
  // rows [num_blocks * block_size][n_kv_heads][head_dim], and the table says
  // which row holds position t.
  const int head_dim = layout.head_dim, kv_dim = layout.kv_dim();
  const int kv_mul = n_heads / layout.n_kv_heads;  // query heads per KV head
  const float scale = std::sqrt(static_cast<float>(head_dim));
  float* scores = scratch;  // [pos + 1]
  for (int h = 0; h < n_heads; ++h) {
    const float* q_head = q + h * head_dim;
    const int kv_head = (h / kv_mul) * head_dim;

    for (int t = 0; t <= pos; ++t) {
      const float* k = layer_k_pages + slot_for(table, t, layout.block_size) * kv_dim + kv_head;
      float dot = 0.0f;
      for (int d = 0; d < head_dim; ++d) dot += q_head[d] * k[d];
      scores[t] = dot / scale;
    }
    cpu::softmax(scores, pos + 1);

    float* out_head = out + h * head_dim;
    for (int d = 0; d < head_dim; ++d) out_head[d] = 0.0f;
    for (int t = 0; t <= pos; ++t) {
      const float* v = layer_v_pages + slot_for(table, t, layout.block_size) * kv_dim + kv_head;
      for (int d = 0; d < head_dim; ++d) out_head[d] += scores[t] * v[d];
    }
  }
}

}  // namespace kvc::ch04
