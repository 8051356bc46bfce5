// Solution: chapter 03, the query-head -> KV-head mapping and mean-pooling.
#include "chapters/03_gqa/gqa_kv_cache.hpp"

namespace kvc::ch03 {

int kv_head_for(int query_head, int n_heads, int n_kv_heads) {
  const int group_size = n_heads / n_kv_heads;  // llama2.c's kv_mul
  return query_head / group_size;
}

void mean_pool_kv_heads(const float* w_in, float* w_out, int n_kv_heads_in, int n_kv_heads_out,
                        int head_dim, int dim) {
  const int merged = n_kv_heads_in / n_kv_heads_out;  // input heads per output head
  const std::size_t head_floats = static_cast<std::size_t>(head_dim) * dim;
  for (int out_head = 0; out_head < n_kv_heads_out; ++out_head) {
    float* out = w_out + out_head * head_floats;
    for (std::size_t i = 0; i < head_floats; ++i) {
      float sum = 0.0f;
      for (int m = 0; m < merged; ++m) sum += w_in[(out_head * merged + m) * head_floats + i];
      out[i] = sum / merged;
    }
  }
}

}  // namespace kvc::ch03
