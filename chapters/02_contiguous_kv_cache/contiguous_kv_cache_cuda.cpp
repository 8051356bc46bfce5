#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache_cuda.hpp"

#include "common/check.hpp"
#include "kernels/cuda/ops.hpp"

namespace kvc::ch02 {

ContiguousKVCacheCuda::ContiguousKVCacheCuda(const ModelConfig& config, int max_seqs,
                                             cuda::CudaContext& context, int decode_variant)
    : config_(config), context_(context), lengths_(max_seqs), decode_variant_(decode_variant) {
  decode_shape_ = {/*batch=*/1,       config.seq_len,    config.n_heads,
                   config.n_kv_heads, config.head_dim(), NumberFormat::fp32};
  const std::size_t floats_per_layer =
      static_cast<std::size_t>(max_seqs) * config.seq_len * config.kv_dim();
  for (int l = 0; l < config.n_layers; ++l) {
    k_cache_.emplace_back(floats_per_layer);
    v_cache_.emplace_back(floats_per_layer);
  }
  decode_workspace_ = cuda::DeviceBuffer<std::byte>(
      cuda::attention_decode_workspace_bytes(decode_variant_, decode_shape_));
}

void ContiguousKVCacheCuda::reserve(const Batch& batch) {
  const int n = batch.size();
  const cudaStream_t stream = context_.stream();
  lengths_.append(batch);
  std::vector<int> context_lengths(n);
  for (int i = 0; i < n; ++i) context_lengths[i] = batch.positions[i] + 1;
  if (slots_.size() < static_cast<std::size_t>(n)) {
    slots_ = cuda::DeviceBuffer<int>(n);
    positions_ = cuda::DeviceBuffer<int>(n);
    context_lengths_ = cuda::DeviceBuffer<int>(n);
  }
  cuda::copy_to_device(slots_.data(), batch.seq_ids.data(), n, stream);
  cuda::copy_to_device(positions_.data(), batch.positions.data(), n, stream);
  cuda::copy_to_device(context_lengths_.data(), context_lengths.data(), n, stream);
}

void ContiguousKVCacheCuda::attend(int layer, const Batch& batch, const float* q, const float* k,
                                   const float* v, float* out) {
  const int n = batch.size();
  const cudaStream_t stream = context_.stream();

  // Append every token first: a prefill chunk's token i attends to tokens < i of the same chunk.
  const int max_ctx = config_.seq_len;
  cuda::kv_cache_store(k_cache_[layer].data(), v_cache_[layer].data(), NumberFormat::fp32, k, v,
                       slots_.data(), positions_.data(), n, max_ctx, config_.n_kv_heads,
                       config_.head_dim(), stream);

  const std::size_t dim = config_.dim, kv_dim = config_.kv_dim();
  const std::size_t slot_floats = static_cast<std::size_t>(max_ctx) * kv_dim;
  for (const SequenceSpan& span : sequence_spans(batch)) {
    if (batch.positions[span.begin] == 0) {
      // Prefill from the start: the batch itself holds the whole history (reserve()
      // checked the positions), so the causal kernel runs on it directly
      // (compute-bound, like any GEMM-shaped work).
      const std::size_t first = span.begin;
      cuda::attention_prefill_causal(cuda::kBestVariant, out + first * dim, q + first * dim,
                                     k + first * kv_dim, v + first * kv_dim, span.end - span.begin,
                                     config_.n_heads, config_.n_kv_heads, config_.head_dim(),
                                     stream);
      continue;
    }
    // Decode (or a later chunk): each token attends over its slot's rows 0..pos.
    const std::size_t slot = static_cast<std::size_t>(span.seq_id) * slot_floats;
    for (int i = span.begin; i < span.end; ++i) {
      cuda::attention_decode(decode_variant_, out + i * dim, q + i * dim,
                             k_cache_[layer].data() + slot, v_cache_[layer].data() + slot,
                             context_lengths_.data() + i, decode_shape_, decode_workspace_.data(),
                             stream);
    }
  }
}

std::size_t ContiguousKVCacheCuda::kv_bytes_reserved() const {
  std::size_t bytes = 0;
  for (const auto& buffer : k_cache_) bytes += buffer.bytes();
  for (const auto& buffer : v_cache_) bytes += buffer.bytes();
  return bytes;
}

}  // namespace kvc::ch02
