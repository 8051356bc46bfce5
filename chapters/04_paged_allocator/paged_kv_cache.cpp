#include "chapters/04_paged_allocator/paged_kv_cache.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/checked_math.hpp"
#include "common/kv_memory.hpp"
#include "common/thread_pool.hpp"

#ifdef KVC_HAVE_CUDA
#include "chapters/04_paged_allocator/paged_kv_cache_cuda.hpp"
#endif

namespace kvc::ch04 {

PagedKVCache::PagedKVCache(const ModelConfig& config, int num_blocks, int block_size,
                           ThreadPool* pool)
    : PagedKVStrategy(config, num_blocks, block_size),
      config_(config),
      pool_(pool),
      k_pages_(
          checked_host_kv_floats(
              config, std::int64_t{num_blocks} * block_size, "ch04 paged KV pool",
              std::to_string(num_blocks) + " blocks x " + std::to_string(block_size) + " tokens"),
          0.0f),
      v_pages_(k_pages_.size(), 0.0f) {}

void PagedKVCache::copy_block(const BlockCopy& copy) {
  for (int l = 0; l < layout_.n_layers; ++l) {
    for (auto* pages : {&k_pages_, &v_pages_}) {
      std::memcpy(&(*pages)[layout_.block_offset(l, copy.to)],
                  &(*pages)[layout_.block_offset(l, copy.from)],
                  layout_.floats_per_block() * sizeof(float));
    }
  }
}

void PagedKVCache::attend(int layer, const Batch& batch, const float* q, const float* k,
                          const float* v, float* out) {
  const int n = batch.size();
  if (layer == 0) {
    slots_.resize(n);
    for (int i = 0; i < n; ++i) {
      const Placement placement = blocks_.place(batch.seq_ids[i], batch.positions[i]);
      if (placement.copy) copy_block(*placement.copy);
      slots_[i] = placement.slot;
    }
  }

  // Write every token's K, V first: a prefill chunk's token i attends to tokens < i of its chunk.
  const std::size_t kv_dim = layout_.kv_dim();
  float* layer_k = &k_pages_[layer * layout_.floats_per_layer()];
  float* layer_v = &v_pages_[layer * layout_.floats_per_layer()];
  for (int i = 0; i < n; ++i) {
    std::memcpy(layer_k + slots_[i] * kv_dim, k + i * kv_dim, kv_dim * sizeof(float));
    std::memcpy(layer_v + slots_[i] * kv_dim, v + i * kv_dim, kv_dim * sizeof(float));
  }

  const std::size_t dim = config_.dim;
  parallel_for(pool_, n, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scratch(paged_decode_scratch_floats(config_.seq_len, config_.n_heads));
    for (std::int64_t i = begin; i < end; ++i) {
      paged_decode_attention(out + i * dim, q + i * dim, layout_, layer_k, layer_v,
                             *blocks_.table(batch.seq_ids[i]), batch.positions[i], config_.n_heads,
                             scratch.data());
    }
  });
}

std::unique_ptr<PagedKVStrategy> make_paged_cache(const ModelConfig& config,
                                                  const DeviceContext& device, int num_blocks,
                                                  int block_size) {
#ifdef KVC_HAVE_CUDA
  if (device.device == Device::kCuda) {
    return std::make_unique<PagedKVCacheCuda>(config, num_blocks, block_size, *device.cuda);
  }
#endif
  KVC_CHECK(device.device == Device::kCpu, "ch04: this build has no CUDA support");
  return std::make_unique<PagedKVCache>(config, num_blocks, block_size, device.pool);
}

std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          int block_size, int max_seqs) {
  KVC_CHECK(block_size >= 1, "paged KV cache: block size must be positive, got ", block_size);
  const int num_blocks =
      checked_mul(max_seqs, blocks_needed(config.seq_len, block_size), "paged KV pool blocks");
  return make_paged_cache(config, device, num_blocks, block_size);
}

}  // namespace kvc::ch04
