#include "chapters/04_paged_allocator/paged_kv_cache.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>

#include "common/checked_math.hpp"
#include "common/kv_memory.hpp"
#include "common/thread_pool.hpp"
#include "kernels/cpu/ops.hpp"

#ifdef KVC_HAVE_CUDA
#include "chapters/04_paged_allocator/paged_kv_cache_cuda.hpp"
#endif

namespace kvc::ch04 {

void PagedKVStrategy::reserve(const Batch& batch) {
  std::optional<Reservation> reservation = blocks_->try_reserve(batch);
  if (!reservation) {
    throw PoolExhausted("paged KV cache: the batch's " + std::to_string(batch.size()) +
                        " tokens need more blocks than the " +
                        std::to_string(blocks_->num_available()) + " of " +
                        std::to_string(layout_.num_blocks) + " available");
  }
  for (const BlockCopy& copy : reservation->copies) copy_block(copy);
  prepare(batch, std::move(reservation->slots));
}

PagedKVCache::PagedKVCache(const ModelConfig& config, int num_blocks, int block_size,
                           ThreadPool* pool, ch02::AttentionKernel kernel)
    : PagedKVCache(config, std::make_unique<BlockManager>(num_blocks, block_size), pool, kernel) {}

PagedKVCache::PagedKVCache(const ModelConfig& config, std::unique_ptr<BlockManager> blocks,
                           ThreadPool* pool, ch02::AttentionKernel kernel)
    : PagedKVStrategy(config, KvDtype{}, std::move(blocks)),
      config_(config),
      pool_(pool),
      kernel_(kernel),
      k_pages_(zeroed_kv_floats(checked_host_kv_floats(
          config, std::int64_t{layout_.num_blocks} * layout_.block_size, "ch04 paged KV pool",
          std::to_string(layout_.num_blocks) + " blocks x " + std::to_string(layout_.block_size) +
              " tokens"))),
      v_pages_(zeroed_kv_floats(k_pages_.size())) {}

void PagedKVCache::prepare(const Batch& /*batch*/, std::vector<std::int64_t> slots) {
  slots_ = std::move(slots);
}

void PagedKVCache::copy_block(const BlockCopy& copy) {
  for (int l = 0; l < layout_.n_layers; ++l) {
    for (auto* pages : {&k_pages_, &v_pages_}) {
      std::memcpy(&(*pages)[layout_.block_offset(l, copy.to)],
                  &(*pages)[layout_.block_offset(l, copy.from)],
                  layout_.values_per_block() * sizeof(float));
    }
  }
}

void PagedKVCache::attend(int layer, const Batch& batch, const float* q, const float* k,
                          const float* v, float* out) {
  const int n = batch.size();
  // Write every token's K, V first: a prefill chunk's token i attends to tokens < i of its chunk.
  const std::size_t kv_dim = layout_.kv_dim();
  float* layer_k = &k_pages_[layer * layout_.values_per_layer()];
  float* layer_v = &v_pages_[layer * layout_.values_per_layer()];
  for (int i = 0; i < n; ++i) {
    std::memcpy(layer_k + slots_[i] * kv_dim, k + i * kv_dim, kv_dim * sizeof(float));
    std::memcpy(layer_v + slots_[i] * kv_dim, v + i * kv_dim, kv_dim * sizeof(float));
  }

  const std::size_t dim = config_.dim;
  // The tuned kernels beside the chapter's loop, through the same block tables.
  const int variant =
      kernel_ == ch02::AttentionKernel::kFast ? 3 : 4;  // cpu::attention_decode_paged
  parallel_for(pool_, n, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scratch(
        kernel_ == ch02::AttentionKernel::kLoop
            ? paged_decode_scratch_floats(config_.seq_len, config_.n_heads)
            : cpu::attention_decode_paged_scratch_floats(variant, config_.seq_len, config_.n_heads,
                                                         config_.n_kv_heads));
    for (std::int64_t i = begin; i < end; ++i) {
      const BlockTable& table = *blocks_->table(batch.seq_ids[i]);
      if (kernel_ == ch02::AttentionKernel::kLoop) {
        paged_decode_attention(out + i * dim, q + i * dim, layout_, layer_k, layer_v, table,
                               batch.positions[i], config_.n_heads, scratch.data());
        continue;
      }
      // With one token in the batch the loop above runs inline, so the kernel
      // splits its own work across the pool; inside a batch job it runs on this thread.
      cpu::attention_decode_paged(variant, out + i * dim, q + i * dim, layer_k, layer_v,
                                  table.blocks.data(), batch.positions[i] + 1, layout_.block_size,
                                  config_.n_heads, config_.n_kv_heads, layout_.head_dim,
                                  scratch.data(), pool_);
    }
  });
}

BatchBlockTables batch_block_tables(const Batch& batch, const BlockManager& blocks) {
  BatchBlockTables t;
  std::map<int, int> row_of;  // sequence id -> its row
  t.rows.resize(batch.size());
  for (int i = 0; i < batch.size(); ++i) {
    t.rows[i] = row_of.try_emplace(batch.seq_ids[i], static_cast<int>(row_of.size())).first->second;
  }
  for (const auto& [seq, row] : row_of) {
    t.max_blocks = std::max(t.max_blocks, static_cast<int>(blocks.table(seq)->blocks.size()));
  }
  t.tables.assign(row_of.size() * t.max_blocks, 0);
  for (const auto& [seq, row] : row_of) {
    const std::vector<int>& held = blocks.table(seq)->blocks;
    std::copy(held.begin(), held.end(), t.tables.begin() + std::size_t(row) * t.max_blocks);
  }
  return t;
}

std::unique_ptr<PagedKVStrategy> make_paged_cache(const ModelConfig& config,
                                                  const DeviceContext& device, int num_blocks,
                                                  int block_size, ch02::AttentionKernel kernel) {
  return make_paged_cache(config, device, std::make_unique<BlockManager>(num_blocks, block_size),
                          kernel);
}

std::unique_ptr<PagedKVStrategy> make_paged_cache(const ModelConfig& config,
                                                  const DeviceContext& device,
                                                  std::unique_ptr<BlockManager> blocks,
                                                  ch02::AttentionKernel kernel) {
#ifdef KVC_HAVE_CUDA
  if (device.device == Device::kCuda) {
    KVC_CHECK(kernel == ch02::AttentionKernel::kLoop, "ch04: the ", ch02::to_string(kernel),
              " kernel runs on the CPU only");
    return std::make_unique<PagedKVCacheCuda>(config, std::move(blocks), *device.cuda);
  }
#endif
  KVC_CHECK(device.device == Device::kCpu, "ch04: this build has no CUDA support");
  return std::make_unique<PagedKVCache>(config, std::move(blocks), device.pool, kernel);
}

std::unique_ptr<KVStrategy> make_strategy(const ModelConfig& config, const DeviceContext& device,
                                          int block_size, int max_seqs,
                                          ch02::AttentionKernel kernel) {
  KVC_CHECK(block_size >= 1, "paged KV cache: block size must be positive, got ", block_size);
  const int num_blocks =
      checked_mul(max_seqs, blocks_needed(config.seq_len, block_size), "paged KV pool blocks");
  return make_paged_cache(config, device, num_blocks, block_size, kernel);
}

}  // namespace kvc::ch04
