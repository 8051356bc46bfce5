// Attention for one sequence on the CPU, rounded exactly as llama2.c's run.c:
// score = (q . k summed in order over head_dim) / sqrtf(head_dim), softmax,
// then out = sum over t, in order, of a_t * v_t.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"

namespace kvc::cpu {

namespace {

// Keys scored side by side. Each score is still one sum over head_dim in
// order (run.c's rounding), but eight independent sums let the CPU overlap
// their add latencies instead of waiting on one chain.
constexpr int kKeysAtOnce = 8;

float dot_in_order(const float* a, const float* b, int size) {
  float sum = 0.0f;
  for (int d = 0; d < size; ++d) sum += a[d] * b[d];
  return sum;
}

}  // namespace

void attend_one_query(float* out, const float* q, const float* keys, const float* values, int n_ctx,
                      int head_dim, std::size_t kv_stride, float* scores) {
  const float scale = sqrtf(float(head_dim));
  int t = 0;
  for (; t + kKeysAtOnce <= n_ctx; t += kKeysAtOnce) {
    const float* key_block = keys + std::size_t(t) * kv_stride;
    float sums[kKeysAtOnce] = {};
    for (int d = 0; d < head_dim; ++d) {
      for (int j = 0; j < kKeysAtOnce; ++j) sums[j] += q[d] * key_block[j * kv_stride + d];
    }
    for (int j = 0; j < kKeysAtOnce; ++j) scores[t + j] = sums[j] / scale;
  }
  for (; t < n_ctx; ++t) {
    scores[t] = dot_in_order(q, keys + std::size_t(t) * kv_stride, head_dim) / scale;
  }

  softmax(scores, n_ctx);

  for (int d = 0; d < head_dim; ++d) out[d] = 0.0f;
  for (int t = 0; t < n_ctx; ++t) {
    const float* value = values + std::size_t(t) * kv_stride;
    const float weight = scores[t];
    for (int d = 0; d < head_dim; ++d) out[d] += weight * value[d];
  }
}

void attention_decode(float* out, const float* q, const float* k_cache, const float* v_cache,
                      int n_ctx, int n_heads, int n_kv_heads, int head_dim, float* scores) {
  const int kv_mul = n_heads / n_kv_heads;  // query heads per KV head
  const std::size_t kv_stride = std::size_t(n_kv_heads) * head_dim;
  for (int h = 0; h < n_heads; ++h) {
    const std::size_t kv_offset = std::size_t(h / kv_mul) * head_dim;
    attend_one_query(out + std::size_t(h) * head_dim, q + std::size_t(h) * head_dim,
                     k_cache + kv_offset, v_cache + kv_offset, n_ctx, head_dim, kv_stride, scores);
  }
}

void attention_prefill_causal(float* out, const float* q, const float* k, const float* v, int n,
                              int n_heads, int n_kv_heads, int head_dim, ThreadPool* pool) {
  const int kv_mul = n_heads / n_kv_heads;
  const std::size_t q_stride = std::size_t(n_heads) * head_dim;
  const std::size_t kv_stride = std::size_t(n_kv_heads) * head_dim;
  // Heads are independent and equally expensive, so they split evenly across threads.
  const auto attend_heads = [&](std::int64_t head_begin, std::int64_t head_end) {
    std::vector<float> scores(n);
    for (std::int64_t h = head_begin; h < head_end; ++h) {
      const std::size_t kv_offset = std::size_t(h / kv_mul) * head_dim;
      for (int i = 0; i < n; ++i) {
        const std::size_t q_offset = i * q_stride + std::size_t(h) * head_dim;
        attend_one_query(out + q_offset, q + q_offset, k + kv_offset, v + kv_offset, i + 1,
                         head_dim, kv_stride, scores.data());
      }
    }
  };
  parallel_for(pool, n_heads, attend_heads);
}

}  // namespace kvc::cpu
