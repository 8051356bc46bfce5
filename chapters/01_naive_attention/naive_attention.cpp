#include "chapters/01_naive_attention/naive_attention.hpp"

#include "common/check.hpp"
#include "common/thread_pool.hpp"

#ifdef KVC_HAVE_CUDA
#include "chapters/01_naive_attention/naive_attention_cuda.hpp"
#endif

namespace kvc::ch01 {

void check_whole_history(const Batch& batch) {
  for (const SequenceSpan& span : sequence_spans(batch)) {
    for (int i = span.begin; i < span.end; ++i) {
      KVC_CHECK(batch.positions[i] == i - span.begin, "ch01 keeps no cache: sequence ", span.seq_id,
                " must be fed from position 0 with no gaps");
    }
  }
}

std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device) {
#ifdef KVC_HAVE_CUDA
  if (device.device == Device::kCuda)
    return std::make_unique<NaiveAttentionCuda>(config, *device.cuda);
#endif
  KVC_CHECK(device.device == Device::kCpu, "ch01: this build has no CUDA support");
  return std::make_unique<NaiveAttention>(config, device.pool);
}

NaiveAttention::NaiveAttention(const ModelConfig& config, ThreadPool* pool)
    : config_(config), pool_(pool) {}

void NaiveAttention::attend(int /*layer*/, const Batch& batch, const float* q, const float* k,
                            const float* v, float* out) {
  const int head_dim = config_.head_dim();
  const std::size_t dim = config_.dim, kv_dim = config_.kv_dim();
  for (const SequenceSpan& span : sequence_spans(batch)) {
    const int n_tokens = span.end - span.begin;
    const std::size_t first = span.begin;
    auto attend_heads = [&](std::int64_t head_begin, std::int64_t head_end) {
      for (std::int64_t h = head_begin; h < head_end; ++h) {
        const std::size_t kv_head = h / config_.kv_group_size();
        causal_attention_one_head(out + first * dim + h * head_dim, q + first * dim + h * head_dim,
                                  k + first * kv_dim + kv_head * head_dim,
                                  v + first * kv_dim + kv_head * head_dim, n_tokens, head_dim, dim,
                                  kv_dim);
      }
    };
    parallel_for(pool_, config_.n_heads, attend_heads);
  }
}

}  // namespace kvc::ch01
