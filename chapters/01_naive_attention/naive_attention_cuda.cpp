#include "chapters/01_naive_attention/naive_attention_cuda.hpp"

#include "kernels/cuda/attention.hpp"

namespace kvc::ch01 {

NaiveAttentionCuda::NaiveAttentionCuda(const ModelConfig& config, cuda::CudaContext& context)
    : config_(config), context_(context) {}

void NaiveAttentionCuda::attend(int /*layer*/, const Batch& batch, const float* q, const float* k,
                                const float* v, float* out) {
  const std::size_t dim = config_.dim, kv_dim = config_.kv_dim();
  for (const SequenceSpan& span : sequence_spans(batch)) {
    const std::size_t first = span.begin;
    cuda::attention_prefill_causal(cuda::kBestVariant, out + first * dim, q + first * dim,
                                   k + first * kv_dim, v + first * kv_dim, span.end - span.begin,
                                   config_.n_heads, config_.n_kv_heads, config_.head_dim(),
                                   context_.stream());
  }
}

}  // namespace kvc::ch01
