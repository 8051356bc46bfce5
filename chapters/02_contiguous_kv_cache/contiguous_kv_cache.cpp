#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

#include "common/check.hpp"
#include "common/kv_memory.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"

#ifdef KVC_HAVE_CUDA
#include "chapters/02_contiguous_kv_cache/contiguous_kv_cache_cuda.hpp"
#endif

namespace kvc::ch02 {

SequenceLengths::SequenceLengths(int max_seqs) {
  KVC_CHECK(max_seqs > 0, "contiguous KV cache: max_seqs must be positive, got ", max_seqs);
  lengths_.assign(max_seqs, 0);
}

void SequenceLengths::check_slot(int seq_id) const {
  KVC_CHECK(seq_id >= 0 && seq_id < max_seqs(), "contiguous KV cache: sequence id ", seq_id,
            " outside the ", max_seqs(), " reserved slots");
}

void SequenceLengths::append(const Batch& batch) {
  std::vector<int> lengths = lengths_;  // committed only when the whole batch checks out
  for (int i = 0; i < batch.size(); ++i) {
    const int seq = batch.seq_ids[i], pos = batch.positions[i];
    check_slot(seq);
    KVC_CHECK(pos == lengths[seq], "contiguous KV cache: sequence ", seq, " position ", pos,
              " does not continue the ", lengths[seq], " positions cached");
    lengths[seq] = pos + 1;
  }
  lengths_ = std::move(lengths);
}

void SequenceLengths::truncate(int seq_id, int length) {
  check_slot(seq_id);
  KVC_CHECK(length >= 0 && length <= lengths_[seq_id], "contiguous KV cache: sequence ", seq_id,
            " holds ", lengths_[seq_id], " positions, cannot keep ", length);
  lengths_[seq_id] = length;
}

std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          int max_seqs, AttentionKernel kernel) {
#ifdef KVC_HAVE_CUDA
  if (device.device == Device::kCuda) {
    KVC_CHECK(kernel == AttentionKernel::kLoop, "ch02: the ", to_string(kernel),
              " kernel runs on the CPU only");
    return std::make_unique<ContiguousKVCacheCuda>(config, max_seqs, *device.cuda);
  }
#endif
  KVC_CHECK(device.device == Device::kCpu, "ch02: this build has no CUDA support");
  return std::make_unique<ContiguousKVCache>(config, max_seqs, device.pool, kernel);
}

ContiguousKVCache::ContiguousKVCache(const ModelConfig& config, int max_seqs, ThreadPool* pool,
                                     AttentionKernel kernel)
    : config_(config),
      layout_{config.n_layers, config.seq_len, config.n_kv_heads, config.head_dim()},
      pool_(pool),
      kernel_(kernel),
      lengths_(max_seqs) {
  const std::size_t floats = checked_host_kv_floats(
      config, std::int64_t{max_seqs} * config.seq_len, "ch02 contiguous KV cache",
      std::to_string(max_seqs) + " sequence(s) x seq_len " + std::to_string(config.seq_len));
  k_cache_ = zeroed_kv_floats(floats);
  v_cache_ = zeroed_kv_floats(floats);
}

void ContiguousKVCache::store(int layer, const Batch& batch, const float* k, const float* v) {
  const std::size_t kv_dim = config_.kv_dim();
  for (int i = 0; i < batch.size(); ++i) {
    const std::size_t slot = batch.seq_ids[i] * layout_.floats_per_slot();
    append_kv(layout_, &k_cache_[slot], &v_cache_[slot], layer, batch.positions[i], k + i * kv_dim,
              v + i * kv_dim);
  }
}

void ContiguousKVCache::attend(int layer, const Batch& batch, const float* q, const float* k,
                               const float* v, float* out) {
  // Append every token first: a prefill chunk's token i attends to tokens < i of the same chunk.
  store(layer, batch, k, v);
  const std::size_t dim = config_.dim;
  // The tuned kernels beside the chapter's loop, over the
  // same layer rows [pos + 1][n_kv_heads][head_dim].
  const int variant = kernel_ == AttentionKernel::kFast ? 4 : 5;  // cpu::attention_decode_variant
  const std::size_t layer_start = cache_offset(layout_, layer, 0);
  parallel_for(pool_, batch.size(), [&](std::int64_t begin, std::int64_t end) {
    const std::size_t scratch_floats =
        kernel_ == AttentionKernel::kLoop
            ? std::size_t(config_.seq_len)
            : cpu::attention_decode_scratch_floats(variant, config_.seq_len, config_.n_heads,
                                                   config_.n_kv_heads, layout_.head_dim);
    std::vector<float> scratch(scratch_floats);
    for (std::int64_t i = begin; i < end; ++i) {
      const int seq = batch.seq_ids[i], pos = batch.positions[i];
      if (kernel_ == AttentionKernel::kLoop) {
        decode_attention(out + i * dim, q + i * dim, layout_, k_slot(seq), v_slot(seq), layer, pos,
                         config_.n_heads, scratch.data());
        continue;
      }
      // With one token in the batch the loop above runs inline, so the kernel
      // splits its own work across the pool; inside a batch job it runs on this thread.
      cpu::attention_decode_variant(variant, out + i * dim, q + i * dim, k_slot(seq) + layer_start,
                                    v_slot(seq) + layer_start, pos + 1, config_.n_heads,
                                    config_.n_kv_heads, layout_.head_dim, scratch.data(), pool_);
    }
  });
}

std::size_t ContiguousKVCache::kv_bytes_reserved() const {
  return (k_cache_.size() + v_cache_.size()) * sizeof(float);
}

void ContiguousKVCache::release(int seq_id) {
  lengths_.release(seq_id);
}

}  // namespace kvc::ch02
